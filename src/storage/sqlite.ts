/**
 * SqliteStore: one better-sqlite3 database per validator, in WAL mode with synchronous=FULL.
 *
 * Why FULL for everything: every write here is one a validator must not lose. A block append
 * follows a commit the node may already have answered, and a consensus record must be on disk
 * before the message that depends on it leaves (persist before send). In WAL mode FULL costs one
 * fsync of the WAL per commit; bench/ledger.ts measures it.
 *
 * Headers, transactions, certificates and state entries are TEXT holding canonical JSON: the bytes
 * in the file are the bytes that were hashed, so verifyChain() can re-derive every hash from them.
 */
import Database from 'better-sqlite3';
import { canonicalString } from '../encoding/canonical.ts';
import { genesisHash, parseGenesis } from '../ledger/genesis.ts';
import type { Genesis } from '../ledger/types.ts';
import { type ConsensusRow, RowStore, type TimedTxRow } from './base.ts';
import type { BlockRow, PreparedAppend, StateRow, TxRow } from './rows.ts';
import { parseJson } from './rows.ts';
import { StorageError } from './store.ts';

/** Bumped whenever the tables change shape; a database of another version is refused. */
export const schemaVersion = 1;

const SCHEMA = `
CREATE TABLE IF NOT EXISTS meta (
  key TEXT PRIMARY KEY,
  value TEXT NOT NULL
) STRICT;
CREATE TABLE IF NOT EXISTS blocks (
  height INTEGER PRIMARY KEY,
  hash TEXT NOT NULL UNIQUE,
  header TEXT NOT NULL,
  timestamp_ms INTEGER NOT NULL,
  tx_count INTEGER NOT NULL
) STRICT;
CREATE TABLE IF NOT EXISTS txs (
  height INTEGER NOT NULL REFERENCES blocks (height),
  idx INTEGER NOT NULL,
  tx_id TEXT NOT NULL,
  type TEXT NOT NULL,
  target TEXT,
  device_id TEXT,
  body TEXT NOT NULL,
  PRIMARY KEY (height, idx)
) STRICT;
CREATE INDEX IF NOT EXISTS txs_by_id ON txs (tx_id, height, idx);
CREATE INDEX IF NOT EXISTS txs_by_target ON txs (target, type, height, idx);
CREATE INDEX IF NOT EXISTS txs_by_device ON txs (device_id, type, height, idx);
CREATE INDEX IF NOT EXISTS txs_by_type ON txs (type, height, idx);
CREATE TABLE IF NOT EXISTS certificates (
  height INTEGER PRIMARY KEY REFERENCES blocks (height),
  body TEXT NOT NULL
) STRICT;
CREATE TABLE IF NOT EXISTS state (
  key TEXT PRIMARY KEY,
  entry TEXT NOT NULL,
  height INTEGER NOT NULL
) STRICT;
CREATE TABLE IF NOT EXISTS content (
  sha256 TEXT PRIMARY KEY,
  bytes BLOB NOT NULL
) STRICT;
CREATE TABLE IF NOT EXISTS consensus_log (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  seq INTEGER NOT NULL,
  kind TEXT NOT NULL,
  data TEXT NOT NULL
) STRICT;
CREATE INDEX IF NOT EXISTS consensus_log_by_seq ON consensus_log (seq);
`;

const BLOCK_COLUMNS = 'height, hash, header, timestamp_ms AS timestampMs, tx_count AS txCount';
const TX_COLUMNS =
  'txs.tx_id AS txId, txs.height, txs.idx AS "index", txs.type, txs.target, txs.device_id AS deviceId, txs.body';

export interface SqliteStoreOptions {
  /**
   * The chain this database must belong to. Required to create a new database; for an existing
   * one it is checked against the stored genesis, and when omitted the stored genesis is used.
   */
  readonly genesis?: Genesis;
  /**
   * Benchmarks only: synchronous=NORMAL, which skips the fsync per commit, so a power loss may
   * lose the last commits. bench/ledger.ts uses it to show what durability costs; a node never does.
   */
  readonly unsafeSkipFsync?: boolean;
}

export class SqliteStore extends RowStore {
  readonly path: string;
  readonly #db: Database.Database;
  readonly #s: ReturnType<typeof prepareStatements>;
  readonly #append: (prepared: PreparedAppend) => void;
  readonly #appendConsensus: (rows: readonly ConsensusRow[]) => void;

  private constructor(path: string, db: Database.Database, genesis: Genesis) {
    super(genesis);
    this.path = path;
    this.#db = db;
    this.#s = prepareStatements(db);
    const s = this.#s;
    this.#append = db.transaction((prepared: PreparedAppend) => {
      const b = prepared.block;
      s.insertBlock.run(b.height, b.hash, b.header, b.timestampMs, b.txCount);
      for (const tx of prepared.txs) {
        s.insertTx.run(tx.height, tx.index, tx.txId, tx.type, tx.target, tx.deviceId, tx.body);
      }
      if (prepared.certificate !== null) s.insertCertificate.run(b.height, prepared.certificate);
      for (const row of prepared.state) s.upsertState.run(row.key, row.entry, row.height);
    });
    this.#appendConsensus = db.transaction((rows: readonly ConsensusRow[]) => {
      for (const row of rows) s.insertConsensus.run(row.seq, row.kind, row.data);
    });
  }

  /**
   * Opens (creating if needed) the database at `path`. A new database stores the genesis and
   * block 0; an existing one must belong to the same chain (StorageError WRONG_CHAIN otherwise).
   */
  static open(path: string, options: SqliteStoreOptions = {}): SqliteStore {
    let db: Database.Database;
    try {
      db = new Database(path);
    } catch (error) {
      throw openFailed(path, error);
    }
    try {
      db.pragma('journal_mode = WAL');
      db.pragma(options.unsafeSkipFsync === true ? 'synchronous = NORMAL' : 'synchronous = FULL');
      db.pragma('foreign_keys = ON');
      db.pragma('busy_timeout = 5000');
      const genesis = initSchema(db, path, options.genesis);
      const store = new SqliteStore(path, db, genesis);
      store.initChain();
      return store;
    } catch (error) {
      db.close();
      throw error instanceof Database.SqliteError ? openFailed(path, error) : error;
    }
  }

  /** Moves the WAL into the main database file (before copying the file, and in tamper tests). */
  checkpoint(): void {
    this.#db.pragma('wal_checkpoint(TRUNCATE)');
  }

  /** The durability settings in force on this connection (for tests and `configchain doctor`-style checks). */
  settings(): { journalMode: string; synchronous: number } {
    return {
      journalMode: this.#db.pragma('journal_mode', { simple: true }) as string,
      synchronous: this.#db.pragma('synchronous', { simple: true }) as number,
    };
  }

  protected closeRows(): void {
    if (!this.#db.open) return;
    this.#db.pragma('wal_checkpoint(TRUNCATE)');
    this.#db.close();
  }

  protected writeAppend(prepared: PreparedAppend): void {
    this.#append(prepared);
  }

  protected readTipRow(): BlockRow | null {
    return this.#s.tip.get() ?? null;
  }

  blockRow(height: number): BlockRow | null {
    return this.#s.blockByHeight.get(height) ?? null;
  }

  protected blockRowByHash(hash: string): BlockRow | null {
    return this.#s.blockByHash.get(hash) ?? null;
  }

  protected blockRowsFrom(fromHeight: number, limit: number): BlockRow[] {
    return this.#s.blocksFrom.all(fromHeight, limit);
  }

  txRows(height: number): TxRow[] {
    return this.#s.txsOfBlock.all(height);
  }

  protected txRowById(txId: string): TxRow | null {
    return this.#s.txById.get(txId) ?? null;
  }

  certificateRow(height: number): string | null {
    return this.#s.certificate.get(height)?.body ?? null;
  }

  protected targetRows(target: string, fromHeight: number, limit: number): TimedTxRow[] {
    return this.#s.targetRows.all(target, fromHeight, limit);
  }

  protected reportRows(deviceId: string | null, limit: number): TimedTxRow[] {
    return deviceId === null ? this.#s.allReports.all(limit) : this.#s.deviceReports.all(deviceId, limit);
  }

  protected reportRowsForTarget(target: string, limit: number): TimedTxRow[] {
    return this.#s.targetReports.all(target, limit);
  }

  protected stateRowByKey(key: string): StateRow | null {
    return this.#s.stateByKey.get(key) ?? null;
  }

  stateRows(): StateRow[] {
    return this.#s.allState.all();
  }

  protected deviceRows(afterDeviceId: string, limit: number): StateRow[] {
    return this.#s.devices.all(`device/${afterDeviceId}`, limit);
  }

  protected writeContent(sha256: string, bytes: Uint8Array): void {
    this.#s.insertContent.run(sha256, Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength));
  }

  protected readContent(sha256: string): Uint8Array | null {
    return this.#s.content.get(sha256)?.bytes ?? null;
  }

  protected writeConsensusRows(rows: readonly ConsensusRow[]): void {
    this.#appendConsensus(rows);
  }

  protected readConsensusRows(): ConsensusRow[] {
    return this.#s.consensusAll.all();
  }

  protected deleteConsensusRowsBelow(seq: number): number {
    return this.#s.consensusPrune.run(seq).changes;
  }
}

/** Opens (or creates) a node's SQLite store; see SqliteStore.open. */
export function openSqliteStore(path: string, options: SqliteStoreOptions = {}): SqliteStore {
  return SqliteStore.open(path, options);
}

/** SQLite could not open or read the file: say which file and what to check. */
function openFailed(path: string, error: unknown): StorageError {
  return new StorageError(
    'OPEN_FAILED',
    `cannot open the node database ${path}: ${(error as Error).message}. Check that its directory ` +
      'exists and is writable and that the file is a ConfigChain database (not another file)',
    { path },
  );
}

/** Creates the tables and settles which chain this database belongs to. */
function initSchema(db: Database.Database, path: string, given: Genesis | undefined): Genesis {
  const version = db.pragma('user_version', { simple: true }) as number;
  if (version !== 0 && version !== schemaVersion) {
    throw new StorageError(
      'SCHEMA_VERSION',
      `${path} has storage schema version ${version}; this build reads version ${schemaVersion}. ` +
        'Use the matching build, or re-sync the node into a new database',
      { path, version, expected: schemaVersion },
    );
  }
  return db.transaction((): Genesis => {
    db.exec(SCHEMA);
    db.pragma(`user_version = ${schemaVersion}`);
    const stored = db.prepare<[], { value: string }>("SELECT value FROM meta WHERE key = 'genesis'").get();
    if (stored === undefined) {
      if (given === undefined) {
        throw new StorageError(
          'NO_GENESIS',
          `${path} holds no chain yet; open it with the network's genesis document to create it`,
          { path },
        );
      }
      const insert = db.prepare<[string, string]>('INSERT INTO meta (key, value) VALUES (?, ?)');
      insert.run('genesis', canonicalString(given));
      insert.run('genesisHash', genesisHash(given));
      return given;
    }
    const storedGenesis = parseGenesis(parseJson<unknown>(stored.value, 'genesis document'));
    const storedHash = genesisHash(storedGenesis);
    if (given !== undefined && genesisHash(given) !== storedHash) {
      throw new StorageError(
        'WRONG_CHAIN',
        `${path} belongs to chain "${storedGenesis.chainId}" (genesis ${storedHash}), not to chain ` +
          `"${given.chainId}" (genesis ${genesisHash(given)}); point the node at its own data directory`,
        { path, storedGenesisHash: storedHash, givenGenesisHash: genesisHash(given) },
      );
    }
    return storedGenesis;
  })();
}

function prepareStatements(db: Database.Database) {
  const timed = `${TX_COLUMNS}, blocks.timestamp_ms AS timestampMs`;
  const joined = 'FROM txs JOIN blocks ON blocks.height = txs.height';
  return {
    insertBlock: db.prepare<[number, string, string, number, number]>(
      'INSERT INTO blocks (height, hash, header, timestamp_ms, tx_count) VALUES (?, ?, ?, ?, ?)',
    ),
    insertTx: db.prepare<[number, number, string, string, string | null, string | null, string]>(
      'INSERT INTO txs (height, idx, tx_id, type, target, device_id, body) VALUES (?, ?, ?, ?, ?, ?, ?)',
    ),
    insertCertificate: db.prepare<[number, string]>('INSERT INTO certificates (height, body) VALUES (?, ?)'),
    upsertState: db.prepare<[string, string, number]>(
      'INSERT INTO state (key, entry, height) VALUES (?, ?, ?) ' +
        'ON CONFLICT (key) DO UPDATE SET entry = excluded.entry, height = excluded.height',
    ),
    tip: db.prepare<[], BlockRow>(`SELECT ${BLOCK_COLUMNS} FROM blocks ORDER BY height DESC LIMIT 1`),
    blockByHeight: db.prepare<[number], BlockRow>(`SELECT ${BLOCK_COLUMNS} FROM blocks WHERE height = ?`),
    blockByHash: db.prepare<[string], BlockRow>(`SELECT ${BLOCK_COLUMNS} FROM blocks WHERE hash = ?`),
    blocksFrom: db.prepare<[number, number], BlockRow>(
      `SELECT ${BLOCK_COLUMNS} FROM blocks WHERE height >= ? ORDER BY height LIMIT ?`,
    ),
    txsOfBlock: db.prepare<[number], TxRow>(`SELECT ${TX_COLUMNS} FROM txs WHERE height = ? ORDER BY idx`),
    txById: db.prepare<[string], TxRow>(
      `SELECT ${TX_COLUMNS} FROM txs WHERE tx_id = ? ORDER BY height, idx LIMIT 1`,
    ),
    certificate: db.prepare<[number], { body: string }>('SELECT body FROM certificates WHERE height = ?'),
    targetRows: db.prepare<[string, number, number], TimedTxRow>(
      `SELECT ${timed} ${joined} WHERE txs.target = ? AND txs.type IN ('release', 'attest') ` +
        'AND txs.height >= ? ORDER BY txs.height, txs.idx LIMIT ?',
    ),
    deviceReports: db.prepare<[string, number], TimedTxRow>(
      `SELECT ${timed} ${joined} WHERE txs.device_id = ? AND txs.type = 'device-report' ` +
        'ORDER BY txs.height DESC, txs.idx DESC LIMIT ?',
    ),
    allReports: db.prepare<[number], TimedTxRow>(
      `SELECT ${timed} ${joined} WHERE txs.type = 'device-report' ORDER BY txs.height DESC, txs.idx DESC LIMIT ?`,
    ),
    targetReports: db.prepare<[string, number], TimedTxRow>(
      `SELECT ${timed} ${joined} WHERE txs.target = ? AND txs.type = 'device-report' ` +
        'ORDER BY txs.height DESC, txs.idx DESC LIMIT ?',
    ),
    stateByKey: db.prepare<[string], StateRow>('SELECT key, entry, height FROM state WHERE key = ?'),
    allState: db.prepare<[], StateRow>('SELECT key, entry, height FROM state ORDER BY key'),
    devices: db.prepare<[string, number], StateRow>(
      "SELECT key, entry, height FROM state WHERE key > ? AND key < 'device0' ORDER BY key LIMIT ?",
    ),
    insertContent: db.prepare<[string, Buffer]>(
      'INSERT OR IGNORE INTO content (sha256, bytes) VALUES (?, ?)',
    ),
    content: db.prepare<[string], { bytes: Buffer }>('SELECT bytes FROM content WHERE sha256 = ?'),
    insertConsensus: db.prepare<[number, string, string]>(
      'INSERT INTO consensus_log (seq, kind, data) VALUES (?, ?, ?)',
    ),
    consensusAll: db.prepare<[], ConsensusRow>('SELECT seq, kind, data FROM consensus_log ORDER BY id'),
    consensusPrune: db.prepare<[number]>('DELETE FROM consensus_log WHERE seq < ?'),
  };
}
