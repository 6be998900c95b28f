/**
 * Issue 6 acceptance: a chain of 1,000 certified blocks is exported and verify-chain passes;
 * changing any single byte of the export makes verify-chain fail and name the height of the line
 * where the byte is (tested at seeded random positions, some of which land in JSON syntax). The
 * chain is built in-process with real signatures (src/storage/testchain.ts) and held in a real
 * MemoryStore; the export is written by the same exportChain the command uses, reading the store
 * as it would read a validator.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import fc from 'fast-check';
import Value from 'typebox/value';
import { sha256Hex } from '../../src/crypto/hash.ts';
import { createTestNetwork } from '../../src/ledger/testing.ts';
import type { Transaction } from '../../src/ledger/types.ts';
import { type BlockSource, ChainReader } from '../../src/ops/chain-reader.ts';
import { exportChain, verifyExportFile } from '../../src/ops/export-file.ts';
import { VerifyChainOutputSchema } from '../../src/ops/schemas.ts';
import { MemoryStore } from '../../src/storage/memory.ts';
import { scenarioChain, TestChain } from '../../src/storage/testchain.ts';
import { repoRoot } from '../system/harness.ts';

const BLOCKS = 1000;

/** A store read the way a validator's GET /v1/blocks serves it. */
function storeSource(store: MemoryStore): BlockSource {
  return {
    name: 'the test store',
    async page(from, limit) {
      const blocks = store
        .blocks(from, limit)
        .map((b) => ({ hash: b.hash, block: b.block, certificate: b.certificate }));
      return { tipHeight: store.tip().height, blocks };
    },
  };
}

/** Blocks with every kind of transaction: releases, attests, enrollments, reports, a revoke, and empty blocks. */
function buildChain(chain: TestChain, store: MemoryStore): void {
  const releases = new Map<string, { version: number; sha256: string }>();
  let devices = 0;
  for (let h = 1; h <= BLOCKS; h++) {
    const txs: Transaction[] = [];
    if (h % 10 === 1) {
      const tx = chain.release(`t${h % 3}`);
      if (tx.body.type === 'release')
        releases.set(tx.body.target, { version: tx.body.version, sha256: tx.body.sha256 });
      txs.push(tx);
    } else if (h % 10 === 5) {
      txs.push(chain.enroll(`dev-${devices++}`, 't1'));
    } else if (h % 10 === 7 && devices > 0) {
      const r = releases.get('t1');
      if (r !== undefined) txs.push(chain.report(`dev-${devices - 1}`, 't1', r.version, r.sha256));
    } else if (h % 10 === 3) {
      txs.push(chain.attest(`a${h % 4}`));
    }
    if (h === 500) txs.push(chain.revoke('dev-0'));
    store.appendBlock(chain.next(txs, Math.floor(h / 300)));
  }
}

/** 1-based line of the byte at `offset`. */
function lineOf(bytes: Buffer, offset: number): number {
  let line = 1;
  for (let i = 0; i < offset; i++) if (bytes[i] === 10) line++;
  return line;
}

/** Offset of the first byte of the 1-based line `line`. */
function nthLineStart(bytes: Buffer, line: number): number {
  let offset = 0;
  for (let l = 1; l < line; l++) offset = bytes.indexOf(10, offset) + 1;
  return offset;
}

/** A small deterministic generator (mulberry32), so a failing position can be reproduced. */
function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function cli(args: string[]) {
  return spawnSync(process.execPath, ['--import', 'tsx', join(repoRoot, 'src/cli/main.ts'), ...args], {
    cwd: repoRoot,
    encoding: 'utf8',
    timeout: 60_000,
  });
}

describe('chain export and verify-chain on 1,000 blocks', { timeout: 240_000 }, () => {
  let dir: string;
  let file: string;
  let chain: TestChain;
  let good: Buffer;

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'configchain-export-'));
    file = join(dir, 'chain.jsonl');
    chain = new TestChain({ seed: 'export-test' });
    const store = MemoryStore.create(chain.genesis);
    buildChain(chain, store);
    const summary = await exportChain(new ChainReader(chain.genesis, storeSource(store)), file);
    assert.equal(summary.tipHeight, BLOCKS);
    good = readFileSync(file);
    writeFileSync(join(dir, 'genesis.json'), JSON.stringify(chain.genesis));
  });
  after(() => {
    rmSync(dir, { recursive: true, force: true });
  });

  it('verifies the export it wrote, with and without the genesis the operator holds', async () => {
    const result = await verifyExportFile(file);
    assert.equal(result.ok, true, JSON.stringify(result));
    assert.ok(result.ok && result.tipHeight === BLOCKS && result.transactions > 300);
    const pinned = await verifyExportFile(file, { genesis: chain.genesis });
    assert.equal(pinned.ok, true);
    const other = await verifyExportFile(file, {
      genesis: createTestNetwork({ seed: 'another network' }).genesis,
    });
    assert.equal(other.ok, false);
    assert.ok(
      !other.ok && other.line === 2 && /not the genesis you hold/.test(other.reason),
      JSON.stringify(other),
    );
  });

  it('fails on a single changed byte at seeded random positions and names the height of its line', async () => {
    const random = rng(0x5eed);
    const damaged = join(dir, 'damaged.jsonl');
    const positions = Array.from({ length: 14 }, () => Math.floor(random() * good.length));
    // Two positions in the first two lines (header and genesis) and one on a line break, every run.
    positions.push(Math.floor(random() * good.indexOf(10)), good.indexOf(10, good.indexOf(10) + 1) + 5);
    positions.push(good.indexOf(10, good.length - 5000));
    // JSON syntax for certain: the opening brace of block 500's line, and the quote before its "certificate".
    const line500 = nthLineStart(good, 503);
    positions.push(line500, good.indexOf('"certificate"', line500));
    for (const offset of positions) {
      const bytes = Buffer.from(good);
      const original = bytes[offset] ?? 0;
      bytes[offset] = (original + 1 + Math.floor(random() * 255)) % 256;
      assert.notEqual(bytes[offset], original);
      writeFileSync(damaged, bytes);
      const result = await verifyExportFile(damaged);
      const line = lineOf(good, offset);
      const what = `byte ${offset} (line ${line}) changed from ${original} to ${bytes[offset]}`;
      assert.equal(result.ok, false, `${what} was not detected`);
      if (result.ok) continue;
      if (line >= 3) {
        assert.equal(result.height, line - 3, `${what}: ${result.reason}`);
        assert.match(result.reason, new RegExp(`block ${line - 3}\\b`), what);
      } else {
        assert.ok(result.line <= 3 || result.height !== null, `${what}: ${JSON.stringify(result)}`);
      }
    }
  });

  it('names the cut in a truncated file, and refuses a file that is not an export', async () => {
    const cut = join(dir, 'cut.jsonl');
    writeFileSync(cut, good.subarray(0, Math.floor(good.length / 2)));
    const half = await verifyExportFile(cut);
    assert.equal(half.ok, false);
    assert.ok(!half.ok && half.height !== null && /truncated/.test(half.reason), JSON.stringify(half));
    // Cut exactly after a line: every line is whole JSON, but blocks are missing.
    const atLine = good.subarray(0, good.indexOf(10, Math.floor(good.length / 2)) + 1);
    writeFileSync(cut, atLine);
    const whole = await verifyExportFile(cut);
    assert.ok(
      !whole.ok && /truncated/.test(whole.reason) && whole.height === lineOf(good, atLine.length) - 3,
    );
    writeFileSync(cut, 'hello, this is not JSON\n');
    const text = await verifyExportFile(cut);
    assert.ok(!text.ok && text.line === 1 && /not JSON/.test(text.reason));
    writeFileSync(cut, '');
    const empty = await verifyExportFile(cut);
    assert.ok(!empty.ok && /empty or truncated/.test(empty.reason));
  });

  it('runs as `configchain verify-chain`: exit 0 only when everything checks out, the bad height named otherwise', () => {
    const ok = cli(['verify-chain', file, '--genesis', join(dir, 'genesis.json'), '--json']);
    assert.equal(ok.status, 0, ok.stderr);
    const okJson = JSON.parse(ok.stdout) as unknown;
    assert.ok(
      Value.Check(VerifyChainOutputSchema, okJson),
      JSON.stringify([...Value.Errors(VerifyChainOutputSchema, okJson)]),
    );
    assert.deepEqual((okJson as { ok: boolean; tipHeight: number }).tipHeight, BLOCKS);

    // Change one signature character of block 700's certificate.
    const lines = good.toString('utf8').split('\n');
    const line = lines[700 + 2] ?? '';
    const at = line.indexOf('"signature":"') + 14;
    lines[700 + 2] = line.slice(0, at) + (line[at] === '0' ? '1' : '0') + line.slice(at + 1);
    const damaged = join(dir, 'cert.jsonl');
    writeFileSync(damaged, lines.join('\n'));
    const bad = cli(['verify-chain', damaged, '--json']);
    assert.equal(bad.status, 1);
    assert.match(bad.stderr, /FAILED at block 700 \(line 703\): .*certificate/);
    const parsed = JSON.parse(bad.stdout) as { ok: boolean; failure: { height: number; line: number } };
    assert.ok(Value.Check(VerifyChainOutputSchema, parsed));
    assert.equal(parsed.ok, false);
    assert.deepEqual([parsed.failure.height, parsed.failure.line], [700, 703]);

    const usage = cli(['verify-chain']);
    assert.equal(usage.status, 2, 'a usage error is not a verification failure');
    assert.match(usage.stderr, /missing required argument 'file'/);

    const missing = cli(['verify-chain', join(dir, 'nope.jsonl')]);
    assert.equal(missing.status, 2);
    assert.match(missing.stderr, /cannot read .*nope\.jsonl/);
    assert.doesNotMatch(missing.stderr, /\n\s+at /, 'no stack trace');
    assert.equal(sha256Hex(readFileSync(file)), sha256Hex(good), 'the good export was never touched');
  });
});

describe('any single changed byte of a small export', { timeout: 120_000 }, () => {
  it('fails verification and names the height of its line (fast-check over every position and value)', async () => {
    const chain = new TestChain({ seed: 'export-property' });
    const store = MemoryStore.create(chain.genesis);
    for (const append of scenarioChain(chain)) store.appendBlock(append);
    const dir = mkdtempSync(join(tmpdir(), 'configchain-export-prop-'));
    try {
      const file = join(dir, 'small.jsonl');
      await exportChain(new ChainReader(chain.genesis, storeSource(store)), file);
      const good = readFileSync(file);
      const damaged = join(dir, 'damaged.jsonl');
      await fc.assert(
        fc.asyncProperty(
          fc.integer({ min: 0, max: good.length - 1 }),
          fc.integer({ min: 1, max: 255 }),
          async (offset, xor) => {
            const bytes = Buffer.from(good);
            bytes[offset] = (bytes[offset] ?? 0) ^ xor;
            writeFileSync(damaged, bytes);
            const result = await verifyExportFile(damaged, { genesis: chain.genesis });
            const line = lineOf(good, offset);
            assert.equal(result.ok, false, `byte ${offset} ^ ${xor} (line ${line}) went unnoticed`);
            if (!result.ok && line >= 3) assert.equal(result.height, line - 3, result.reason);
            // A changed tipHeight in the header (line 1) shows where blocks and header disagree, further down.
            if (!result.ok && line === 2) assert.equal(result.line, 2, result.reason);
          },
        ),
        { numRuns: 300 },
      );
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
