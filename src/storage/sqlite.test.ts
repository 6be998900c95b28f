import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import Database from 'better-sqlite3';
import fc from 'fast-check';
import { Domain } from '../crypto/domains.ts';
import { sign } from '../crypto/ed25519.ts';
import type { ValidatorId } from '../encoding/brand.ts';
import { blockHash, LedgerState, txId } from '../ledger/index.ts';
import type { Transaction } from '../ledger/types.ts';
import { storeCompliance } from './compliance.ts';
import { MemoryStore } from './memory.ts';
import { SqliteStore } from './sqlite.ts';
import { StorageError, type Store } from './store.ts';
import { randomTx, scenarioChain, TestChain } from './testchain.ts';

const dir = mkdtempSync(join(tmpdir(), 'configchain-sqlite-'));
after(() => rmSync(dir, { recursive: true, force: true }));

const rebuiltRoot = (store: Store) =>
  LedgerState.fromEntries(store.allStateEntries().map((s) => s.entry)).root;

let files = 0;
function freshPath(): string {
  files += 1;
  return join(dir, `node-${files}.sqlite`);
}

storeCompliance('SqliteStore', {
  create: (genesis) => SqliteStore.open(freshPath(), { genesis }),
  reopen: (store: Store) => {
    assert.ok(store instanceof SqliteStore);
    store.close();
    return SqliteStore.open(store.path, { genesis: store.genesis });
  },
});

/** A closed database file holding the scenario chain (heights 0..5), its WAL folded into the file. */
function chainOnDisk(seed: string): { path: string; chain: TestChain } {
  const path = freshPath();
  const chain = new TestChain({ seed });
  const store = SqliteStore.open(path, { genesis: chain.genesis });
  for (const input of scenarioChain(chain)) store.appendBlock(input);
  store.checkpoint();
  store.close();
  return { path, chain };
}

/** Changes one character of the only occurrence of `needle` in the file, at `offsetInNeedle`. */
function flipByte(path: string, needle: string, offsetInNeedle: number): void {
  const bytes = readFileSync(path);
  const at = bytes.indexOf(needle);
  assert.ok(at >= 0, `"${needle}" is in the database file`);
  assert.equal(bytes.indexOf(needle, at + 1), -1, `"${needle}" occurs once in the database file`);
  const position = at + offsetInNeedle;
  const old = bytes[position]!;
  // Another character of the same class, so the JSON stays well-formed and only the value changes.
  bytes[position] =
    old === 0x30 ? 0x31 : old === 0x61 ? 0x62 : old === 0x63 ? 0x64 : old === 0x66 ? 0x65 : old ^ 0x01;
  writeFileSync(path, bytes);
}

describe('SqliteStore on disk', () => {
  it('runs in WAL mode with synchronous=FULL', () => {
    const chain = new TestChain({ seed: 'pragmas' });
    const store = SqliteStore.open(freshPath(), { genesis: chain.genesis });
    assert.deepEqual(store.settings(), { journalMode: 'wal', synchronous: 2 });
    store.close();
  });

  it('still verifies, after reopening, a chain recorded with legacy signed attests before unsigned ones', () => {
    const chain = new TestChain({ seed: 'legacy-attests' });
    const path = freshPath();
    const store = SqliteStore.open(path, { genesis: chain.genesis });
    // The form attests had before they became unsigned: a submitter and its signature.
    const key = chain.network.validatorKeys[2]?.privateKey ?? assert.fail('validator 2 exists');
    const legacy = (target: string): Transaction => {
      const { body } = chain.attest(target);
      const signed = { ...body, submitter: 2 as ValidatorId };
      return {
        body: signed,
        signatures: [{ signer: '2', signature: sign(Domain.transaction, signed, key) }],
      };
    };
    store.appendBlock(chain.next([legacy('default'), legacy('cams')]));
    store.appendBlock(chain.next([chain.attest('default'), chain.release('cams')]));
    store.close();
    const reopened = SqliteStore.open(path);
    assert.deepEqual(reopened.verifyChain(), { ok: true, height: 2 });
    assert.equal(reopened.targetHistory('default').length, 2);
    reopened.close();
  });

  it('keeps headers and transactions as canonical JSON text in the file', () => {
    const { path, chain } = chainOnDisk('text');
    const bytes = readFileSync(path);
    assert.ok(bytes.includes(`"chainId":"${chain.chainId}","height":3,`));
    assert.ok(bytes.includes('"target":"cams","type":"release","version":1'));
  });

  it('refuses a database of another chain, and needs a genesis only to create one', () => {
    const { path, chain } = chainOnDisk('chain-a');
    const other = new TestChain({ seed: 'chain-b' });
    assert.throws(
      () => SqliteStore.open(path, { genesis: other.genesis }),
      (error: unknown) =>
        error instanceof StorageError && error.code === 'WRONG_CHAIN' && /chain-a/.test(error.message),
    );
    const reopened = SqliteStore.open(path);
    assert.equal(reopened.genesisHash, SqliteStore.open(path, { genesis: chain.genesis }).genesisHash);
    assert.equal(reopened.tip().height, 5);
    reopened.close();
    assert.throws(
      () => SqliteStore.open(freshPath()),
      (error: unknown) => error instanceof StorageError && error.code === 'NO_GENESIS',
    );
  });

  it('says which file it cannot open: a missing directory, or a file that is not a database', () => {
    const chain = new TestChain({ seed: 'open-failed' });
    const isOpenFailed = (error: unknown) =>
      error instanceof StorageError && error.code === 'OPEN_FAILED' && error.message.includes(dir);
    assert.throws(
      () => SqliteStore.open(join(dir, 'no-such-dir', 'node.sqlite'), { genesis: chain.genesis }),
      isOpenFailed,
    );
    const notADatabase = freshPath();
    writeFileSync(notADatabase, Buffer.alloc(8192, 'not a database '));
    assert.throws(() => SqliteStore.open(notADatabase, { genesis: chain.genesis }), isOpenFailed);
  });

  it('rolls a block back whole when SQLite itself fails the state write', () => {
    const path = freshPath();
    const chain = new TestChain({ seed: 'trigger' });
    const store = SqliteStore.open(path, { genesis: chain.genesis });
    const [b1, b2] = scenarioChain(chain);
    store.appendBlock(b1!);
    const raw = new Database(path);
    raw.exec(
      "CREATE TRIGGER fail_state BEFORE INSERT ON state WHEN NEW.key = 'target/cams' " +
        "BEGIN SELECT RAISE(ABORT, 'injected state write failure'); END",
    );
    assert.throws(() => store.appendBlock(b2!), /injected state write failure/);
    const count = (sql: string) => (raw.prepare(sql).get() as { n: number }).n;
    assert.equal(count('SELECT count(*) AS n FROM blocks WHERE height = 2'), 0);
    assert.equal(count('SELECT count(*) AS n FROM txs WHERE height = 2'), 0);
    assert.equal(count('SELECT count(*) AS n FROM certificates WHERE height = 2'), 0);
    assert.equal(count('SELECT count(*) AS n FROM state WHERE height = 2'), 0);
    assert.equal(store.tip().height, 1);
    raw.exec('DROP TRIGGER fail_state');
    raw.close();
    store.appendBlock(b2!);
    assert.deepEqual(store.verifyChain(), { ok: true, height: 2 });
    store.close();
  });

  it('gives the same state as the memory store for the same blocks', () => {
    const chain = new TestChain({ seed: 'same' });
    const sqlite = SqliteStore.open(freshPath(), { genesis: chain.genesis });
    const memory = MemoryStore.create(chain.genesis);
    const appends = scenarioChain(chain);
    appends.push(chain.next([chain.release('cams'), chain.attest('default'), chain.enroll('dev-3')]));
    for (const input of appends) {
      sqlite.appendBlock(input);
      memory.appendBlock(input);
    }
    assert.deepEqual(sqlite.allStateEntries(), memory.allStateEntries());
    assert.equal(rebuiltRoot(sqlite), rebuiltRoot(memory));
    assert.equal(rebuiltRoot(sqlite), chain.state.root);
    assert.deepEqual(sqlite.tip(), memory.tip());
    assert.deepEqual(sqlite.targetHistory('default'), memory.targetHistory('default'));
    assert.deepEqual(sqlite.deviceReports(null), memory.deviceReports(null));
    assert.deepEqual(sqlite.devices(), memory.devices());
    sqlite.close();
  });

  it('property: random valid chains give the same state, root and tip in both stores', () => {
    fc.assert(
      fc.property(
        fc.array(fc.array(fc.integer({ min: 0, max: 5 }), { maxLength: 5 }), { minLength: 1, maxLength: 5 }),
        (plan) => {
          const chain = new TestChain({ seed: 'same-random' });
          const sqlite = SqliteStore.open(freshPath(), { genesis: chain.genesis });
          const memory = MemoryStore.create(chain.genesis);
          const enrolled: string[] = [];
          for (const kinds of plan) {
            const input = chain.next(kinds.map((kind) => randomTx(chain, kind, enrolled)));
            sqlite.appendBlock(input);
            memory.appendBlock(input);
          }
          assert.deepEqual(sqlite.allStateEntries(), memory.allStateEntries());
          assert.equal(rebuiltRoot(sqlite), rebuiltRoot(memory));
          assert.equal(rebuiltRoot(sqlite), chain.state.root);
          assert.deepEqual(sqlite.tip(), memory.tip());
          sqlite.close();
        },
      ),
      { numRuns: 10 },
    );
  });
});

describe('verifyChain on a damaged file', () => {
  it('names the height of a block whose stored header had one byte changed', () => {
    const { path } = chainOnDisk('tamper-header');
    const store = SqliteStore.open(path);
    const header = store.blockByHeight(3)!.block.header;
    assert.deepEqual(store.verifyChain(), { ok: true, height: 5 });
    store.close();
    const needle = `"stateRoot":"${header.stateRoot}"`;
    flipByte(path, needle, needle.length - 2);
    const damaged = SqliteStore.open(path);
    const result = damaged.verifyChain();
    assert.equal(result.ok, false);
    assert.equal(result.height, 3);
    damaged.close();
  });

  it('names the height of a block whose stored transaction had one byte changed', () => {
    const { path } = chainOnDisk('tamper-tx');
    const store = SqliteStore.open(path);
    const tx = store.blockByHeight(4)!.block.txs[1]!;
    const signature = tx.signatures[0]!.signature;
    assert.ok(store.txById(txId(tx)) !== null);
    store.close();
    flipByte(path, `"signature":"${signature}"`, 20);
    const damaged = SqliteStore.open(path);
    const result = damaged.verifyChain();
    assert.equal(result.ok, false);
    assert.equal(result.height, 4);
    damaged.close();
  });

  it('names the height that last wrote a state entry that had one byte changed', () => {
    const { path } = chainOnDisk('tamper-state');
    // target/cams was written by block 2 and never again; its entry names its source and target.
    const needle = '"source":"release","target":"cams"';
    flipByte(path, needle, needle.length - 3);
    const damaged = SqliteStore.open(path);
    const result = damaged.verifyChain();
    assert.equal(result.ok, false);
    assert.equal(result.height, 2);
    assert.match(!result.ok ? result.reason : '', /target\/cams/);
    damaged.close();
  });

  it('reports the first bad height when a later block still links to the original', () => {
    const { path } = chainOnDisk('tamper-link');
    const store = SqliteStore.open(path);
    const hash1 = blockHash(store.blockByHeight(1)!.block.header);
    store.close();
    // Block 2's prevHash names block 1; damage it and block 2 (not 1) is the first bad height.
    flipByte(path, `"prevHash":"${hash1}"`, 15);
    const damaged = SqliteStore.open(path);
    const result = damaged.verifyChain();
    assert.equal(result.ok, false);
    assert.equal(result.height, 2);
    damaged.close();
  });
});
