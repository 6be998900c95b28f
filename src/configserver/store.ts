/**
 * A config server's artifact store: content-addressed files plus a SQLite index of
 * (target, version) -> (sha256, size, mediaType).
 *
 * Layout under the artifacts directory (DIR/config-servers/<id>/artifacts):
 *   blobs/<sha256[0..2]>/<sha256>   the content, written atomically (temp file, fsync, rename, fsync dir)
 *   index.sqlite                    the index (WAL, synchronous=FULL)
 *   tmp/                            uploads in progress; emptied when the store opens
 *
 * The blob is durable before its index row is committed, so a crash can leave an unreferenced
 * blob (harmless, reused by the next upload of the same content) but never a row without content.
 * A (target, version) is immutable: the same content again is a no-op, other content a conflict.
 */
import { createHash } from 'node:crypto';
import {
  closeSync,
  createWriteStream,
  existsSync,
  fsyncSync,
  mkdirSync,
  openSync,
  readdirSync,
  renameSync,
  rmSync,
  statSync,
  writeSync,
} from 'node:fs';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import Database from 'better-sqlite3';
import {
  artifactBytesMax,
  artifactIndexEntriesMax,
  artifactVersionsPageMax,
  targetNameLengthMax,
  versionMax,
} from '../constants.ts';
import { sha256Hex } from '../crypto/hash.ts';
import { type Hash32Hex, isHash32Hex } from '../encoding/brand.ts';
import { assert, ConfigChainError } from '../errors.ts';

export interface ArtifactMeta {
  readonly target: string;
  readonly version: number;
  readonly sha256: Hash32Hex;
  readonly size: number;
  readonly mediaType: string;
  readonly createdAtMs: number;
}

export type StoreErrorCode =
  | 'ARTIFACT_CONFLICT'
  | 'ARTIFACT_TOO_LARGE'
  | 'ARTIFACT_INVALID'
  | 'ARTIFACT_HASH_MISMATCH'
  | 'ARTIFACT_INDEX_FULL';

export class ArtifactStoreError extends ConfigChainError<StoreErrorCode> {
  constructor(code: StoreErrorCode, message: string, data: object = {}) {
    super(code, message, data);
    this.name = 'ArtifactStoreError';
  }
}

export interface PutResult {
  /** created: newly stored; exists: the same (target, version, content) was already there. */
  readonly status: 'created' | 'exists';
  readonly meta: ArtifactMeta;
}

export interface VersionQuery {
  /** Only versions greater than this. */
  readonly afterVersion?: number;
  readonly limit?: number;
  /** Only the versions with this content hash. */
  readonly sha256?: string;
}

export interface StoreOptions {
  /** Upload size cap; defaults to src/constants.ts artifactBytesMax. */
  readonly artifactBytesMax?: number;
  /**
   * False skips the fsyncs: only for seeding a store that nothing serves yet (benchmarks), where
   * a crash just means seeding again.
   */
  readonly durable?: boolean;
  readonly now?: () => number;
}

const MEDIA_TYPE = /^[A-Za-z0-9!#$&^_.+-]+\/[A-Za-z0-9!#$&^_.+-]+(?:\s*;[^\r\n]{0,200})?$/;

interface Row {
  target: string;
  version: number;
  sha256: string;
  size: number;
  media_type: string;
  created_at_ms: number;
}

function toMeta(row: Row): ArtifactMeta {
  return {
    target: row.target,
    version: row.version,
    sha256: row.sha256 as Hash32Hex,
    size: row.size,
    mediaType: row.media_type,
    createdAtMs: row.created_at_ms,
  };
}

/** Checks a target name and version as a config server accepts them; returns a reason or null. */
export function checkTargetVersion(target: string, version: number): string | null {
  if (target.length === 0 || target.length > targetNameLengthMax) {
    return `a target name has 1 to ${targetNameLengthMax} characters`;
  }
  if (!Number.isSafeInteger(version) || version < 1 || version > versionMax) {
    return `a version is an integer from 1 to ${versionMax}, got ${version}`;
  }
  return null;
}

export class ArtifactStore {
  readonly dir: string;
  readonly bytesMax: number;
  private readonly db: Database.Database;
  private readonly durable: boolean;
  private readonly now: () => number;
  private tmpCounter = 0;
  private entries: number;
  private readonly stmts: {
    get: Database.Statement<[string, number], Row>;
    latest: Database.Statement<[string], Row>;
    byHash: Database.Statement<[string], Row>;
    list: Database.Statement<[string, number, number], Row>;
    listByHash: Database.Statement<[string, string, number, number], Row>;
    insert: Database.Statement<[string, number, string, number, string, number]>;
    count: Database.Statement<[], { n: number }>;
    targets: Database.Statement<[], { target: string }>;
  };

  private constructor(dir: string, options: StoreOptions) {
    this.dir = dir;
    this.bytesMax = Math.min(options.artifactBytesMax ?? artifactBytesMax, artifactBytesMax);
    this.durable = options.durable ?? true;
    this.now = options.now ?? Date.now;
    mkdirSync(join(dir, 'blobs'), { recursive: true });
    rmSync(join(dir, 'tmp'), { recursive: true, force: true });
    mkdirSync(join(dir, 'tmp'), { recursive: true });
    this.db = new Database(join(dir, 'index.sqlite'));
    this.db.pragma('journal_mode = WAL');
    this.db.pragma(`synchronous = ${this.durable ? 'FULL' : 'OFF'}`);
    this.db.pragma('busy_timeout = 5000');
    this.db.exec(`CREATE TABLE IF NOT EXISTS artifacts (
      target TEXT NOT NULL,
      version INTEGER NOT NULL,
      sha256 TEXT NOT NULL,
      size INTEGER NOT NULL,
      media_type TEXT NOT NULL,
      created_at_ms INTEGER NOT NULL,
      PRIMARY KEY (target, version)
    ) WITHOUT ROWID;
    CREATE INDEX IF NOT EXISTS artifacts_sha256 ON artifacts (sha256);`);
    const cols = 'target, version, sha256, size, media_type, created_at_ms';
    this.stmts = {
      get: this.db.prepare(`SELECT ${cols} FROM artifacts WHERE target = ? AND version = ?`),
      latest: this.db.prepare(`SELECT ${cols} FROM artifacts WHERE target = ? ORDER BY version DESC LIMIT 1`),
      byHash: this.db.prepare(
        `SELECT ${cols} FROM artifacts WHERE sha256 = ? ORDER BY target, version LIMIT 1`,
      ),
      list: this.db.prepare(
        `SELECT ${cols} FROM artifacts WHERE target = ? AND version > ? ORDER BY version LIMIT ?`,
      ),
      listByHash: this.db.prepare(
        `SELECT ${cols} FROM artifacts WHERE target = ? AND sha256 = ? AND version > ? ORDER BY version LIMIT ?`,
      ),
      insert: this.db.prepare(
        'INSERT INTO artifacts (target, version, sha256, size, media_type, created_at_ms) VALUES (?, ?, ?, ?, ?, ?)',
      ),
      count: this.db.prepare('SELECT COUNT(*) AS n FROM artifacts'),
      targets: this.db.prepare('SELECT DISTINCT target FROM artifacts ORDER BY target LIMIT 1000'),
    };
    this.entries = this.stmts.count.get()?.n ?? 0;
  }

  /** Opens (creating if needed) the store in an artifacts directory. */
  static open(dir: string, options: StoreOptions = {}): ArtifactStore {
    return new ArtifactStore(dir, options);
  }

  close(): void {
    this.db.close();
  }

  get(target: string, version: number): ArtifactMeta | undefined {
    const row = this.stmts.get.get(target, version);
    return row === undefined ? undefined : toMeta(row);
  }

  latest(target: string): ArtifactMeta | undefined {
    const row = this.stmts.latest.get(target);
    return row === undefined ? undefined : toMeta(row);
  }

  /** Some (target, version) holding this content, for its media type; undefined if none. */
  byHash(sha256: string): ArtifactMeta | undefined {
    if (!isHash32Hex(sha256)) return undefined;
    const row = this.stmts.byHash.get(sha256);
    if (row === undefined || !existsSync(this.blobPath(row.sha256 as Hash32Hex))) return undefined;
    return toMeta(row);
  }

  /** The target's versions in increasing order, one bounded page at a time. */
  versions(target: string, query: VersionQuery = {}): ArtifactMeta[] {
    const after = query.afterVersion ?? 0;
    const limit = Math.min(query.limit ?? artifactVersionsPageMax, artifactVersionsPageMax);
    assert(limit >= 1, 'a version page holds at least one entry');
    const rows =
      query.sha256 === undefined
        ? this.stmts.list.all(target, after, limit)
        : this.stmts.listByHash.all(target, query.sha256, after, limit);
    return rows.map(toMeta);
  }

  targets(): string[] {
    return this.stmts.targets.all().map((r) => r.target);
  }

  blobPath(sha256: Hash32Hex): string {
    assert(isHash32Hex(sha256), 'blob paths are built from checked hashes only');
    return join(this.dir, 'blobs', sha256.slice(0, 2), sha256);
  }

  /** Stores content held in memory (seeding, tests, small configs). */
  put(target: string, version: number, content: Uint8Array, mediaType: string): PutResult {
    this.checkPut(target, version, mediaType, content.byteLength);
    const sha256 = sha256Hex(content);
    const existing = this.precheck(target, version, sha256);
    if (existing !== undefined) return { status: 'exists', meta: existing };
    if (!existsSync(this.blobPath(sha256))) {
      const tmp = this.tmpPath();
      const fd = openSync(tmp, 'wx', 0o644);
      try {
        let offset = 0;
        while (offset < content.byteLength) offset += writeSync(fd, content, offset);
        if (this.durable) fsyncSync(fd);
      } finally {
        closeSync(fd);
      }
      this.install(tmp, sha256);
    }
    return this.index(target, version, sha256, content.byteLength, mediaType);
  }

  /**
   * Stores content from a stream (uploads), hashing as it is written and refusing more than the
   * size cap without keeping anything. When `expectedSha256` is given, other content is refused.
   */
  async putStream(
    target: string,
    version: number,
    mediaType: string,
    body: Readable,
    expectedSha256?: string,
  ): Promise<PutResult> {
    this.checkPut(target, version, mediaType, 0);
    if (expectedSha256 !== undefined) {
      const existing = this.precheck(target, version, expectedSha256);
      if (existing !== undefined) {
        body.resume();
        return { status: 'exists', meta: existing };
      }
    }
    const tmp = this.tmpPath();
    const hasher = createHash('sha256');
    let size = 0;
    const out = createWriteStream(tmp, { flags: 'wx', mode: 0o644 });
    try {
      // Settle on 'close', not on 'finish' or the first error: the file is opened
      // asynchronously, so a refusal that came before the open would otherwise let the
      // `finally` below remove the temp file before it exists, and leave it behind.
      await new Promise<void>((resolve, reject) => {
        let failure: Error | undefined;
        const fail = (err: Error) => {
          if (failure !== undefined) return;
          failure = err;
          body.unpipe(out);
          body.resume();
          out.destroy();
        };
        out.on('close', () => {
          if (failure !== undefined) reject(failure);
          else if (!out.writableFinished) reject(new Error('the upload stream closed before it finished'));
          else resolve();
        });
        body.on('data', (chunk: Buffer) => {
          size += chunk.byteLength;
          if (size > this.bytesMax) {
            fail(
              new ArtifactStoreError(
                'ARTIFACT_TOO_LARGE',
                `the artifact is larger than this config server's limit of ${this.bytesMax} bytes`,
                { bytesMax: this.bytesMax },
              ),
            );
            return;
          }
          hasher.update(chunk);
        });
        body.on('error', fail);
        out.on('error', fail);
        body.pipe(out);
      });
      const sha256 = hasher.digest('hex') as Hash32Hex;
      if (expectedSha256 !== undefined && sha256 !== expectedSha256) {
        throw new ArtifactStoreError(
          'ARTIFACT_HASH_MISMATCH',
          `the uploaded body hashes to ${sha256}, not to the signed sha256 ${expectedSha256}; sign the bytes you send`,
        );
      }
      const existing = this.precheck(target, version, sha256);
      if (existing !== undefined) return { status: 'exists', meta: existing };
      if (this.durable) {
        const fd = openSync(tmp, 'r');
        try {
          fsyncSync(fd);
        } finally {
          closeSync(fd);
        }
      }
      if (existsSync(this.blobPath(sha256))) rmSync(tmp, { force: true });
      else this.install(tmp, sha256);
      return this.index(target, version, sha256, size, mediaType);
    } finally {
      rmSync(tmp, { force: true });
    }
  }

  private checkPut(target: string, version: number, mediaType: string, size: number): void {
    const bad = checkTargetVersion(target, version);
    if (bad !== null) throw new ArtifactStoreError('ARTIFACT_INVALID', bad);
    if (!MEDIA_TYPE.test(mediaType)) {
      throw new ArtifactStoreError(
        'ARTIFACT_INVALID',
        `"${mediaType.slice(0, 80)}" is not a media type; send one such as text/plain or application/octet-stream`,
      );
    }
    if (size > this.bytesMax) {
      throw new ArtifactStoreError(
        'ARTIFACT_TOO_LARGE',
        `the artifact has ${size} bytes, more than this config server's limit of ${this.bytesMax}`,
        { bytesMax: this.bytesMax },
      );
    }
  }

  /** The stored entry if this exact content is already there; throws if other content is. */
  private precheck(target: string, version: number, sha256: string): ArtifactMeta | undefined {
    const existing = this.get(target, version);
    if (existing === undefined) return undefined;
    if (existing.sha256 === sha256) return existing;
    throw new ArtifactStoreError(
      'ARTIFACT_CONFLICT',
      `${target} version ${version} already holds other content (sha256 ${existing.sha256}); versions are immutable, publish a new version instead`,
      { existing },
    );
  }

  private index(
    target: string,
    version: number,
    sha256: Hash32Hex,
    size: number,
    mediaType: string,
  ): PutResult {
    const existing = this.precheck(target, version, sha256);
    if (existing !== undefined) return { status: 'exists', meta: existing };
    // Counted at open and kept in memory: COUNT(*) per upload would scan the whole index.
    if (this.entries >= artifactIndexEntriesMax) {
      throw new ArtifactStoreError(
        'ARTIFACT_INDEX_FULL',
        `this config server already indexes ${artifactIndexEntriesMax} artifacts; use another store`,
      );
    }
    const createdAtMs = this.now();
    this.stmts.insert.run(target, version, sha256, size, mediaType, createdAtMs);
    this.entries++;
    const meta: ArtifactMeta = { target, version, sha256, size, mediaType, createdAtMs };
    return { status: 'created', meta };
  }

  private tmpPath(): string {
    this.tmpCounter++;
    return join(this.dir, 'tmp', `${process.pid}-${this.tmpCounter}-${this.now()}`);
  }

  /** Moves a fully written, synced temp file to its content address, durably. */
  private install(tmp: string, sha256: Hash32Hex): void {
    const finalPath = this.blobPath(sha256);
    const parent = join(this.dir, 'blobs', sha256.slice(0, 2));
    mkdirSync(parent, { recursive: true });
    renameSync(tmp, finalPath);
    if (this.durable) {
      const fd = openSync(parent, 'r');
      try {
        fsyncSync(fd);
      } finally {
        closeSync(fd);
      }
    }
    assert(statSync(finalPath).isFile(), 'an installed blob is a file');
  }
}

/** The artifacts directory of a config server directory (DIR/config-servers/<id>). */
export function artifactsDir(serverDir: string): string {
  return join(serverDir, 'artifacts');
}

/**
 * Stores one artifact in a config server's directory, for `configchain init --demo` and tests.
 * The server need not be running (SQLite arbitrates if it is).
 */
export async function seedArtifact(
  serverDir: string,
  target: string,
  version: number,
  content: Uint8Array,
  mediaType = 'text/plain',
): Promise<ArtifactMeta> {
  const store = ArtifactStore.open(artifactsDir(serverDir));
  try {
    return store.put(target, version, content, mediaType).meta;
  } finally {
    store.close();
  }
}

/** Lists the entries of a directory, or nothing if it does not exist (tests, diagnostics). */
export function listBlobs(dir: string): string[] {
  const root = join(dir, 'blobs');
  if (!existsSync(root)) return [];
  return readdirSync(root).flatMap((sub) => readdirSync(join(root, sub)));
}
