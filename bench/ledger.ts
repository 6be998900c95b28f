/**
 * `npm run bench -- ledger [--quick] [--dir DIR]`: the foundation's figures on this machine.
 *   - Ed25519 signs/s and verifies/s (node:crypto, KeyObjects reused), raw and as the ledger signs
 *     (domain tag + canonical JSON of a transaction body);
 *   - the RFC 9162 Merkle root of 10,000 leaves;
 *   - blocks/s appending blocks of 100 signed transactions durably to the SQLite store (a real file
 *     in a temp dir, WAL, synchronous=FULL: one fsync per block), and to the memory store;
 *   - the cost of a state-root update for 1 changed entry in a state of 100,000 entries, next to a
 *     recomputation from scratch.
 * --quick shortens every timed loop (for a smoke run); the figures are then rougher.
 * --dir puts the database files under DIR (default: the OS temp dir), to measure a node's own disk.
 */
import { sign as nodeSign, verify as nodeVerify, randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { Domain } from '../src/crypto/domains.ts';
import { generateKeyPair, sign, verify } from '../src/crypto/ed25519.ts';
import { sha256Hex } from '../src/crypto/hash.ts';
import type { DeviceId, Hash32Hex, Height, PublicKeyHex, TargetName, TxId } from '../src/encoding/brand.ts';
import { LedgerState, stateRootFromScratch } from '../src/ledger/index.ts';
import type { StateChange, StateEntry, StateKey, Transaction } from '../src/ledger/types.ts';
import { merkleRootOfData } from '../src/merkle/index.ts';
import { MemoryStore } from '../src/storage/memory.ts';
import { SqliteStore } from '../src/storage/sqlite.ts';
import type { AppendInput } from '../src/storage/store.ts';
import { TestChain } from '../src/storage/testchain.ts';

interface Row {
  readonly what: string;
  readonly value: string;
  readonly detail: string;
}

const rows: Row[] = [];

function report(what: string, value: string, detail: string): void {
  rows.push({ what, value, detail });
  console.log(`  ${what.padEnd(52)} ${value.padStart(16)}   ${detail}`);
}

function rate(count: number, ms: number): string {
  return `${Math.round((count * 1000) / ms).toLocaleString('en-US')}/s`;
}

function time(ms: number): string {
  if (ms >= 1) return `${ms.toFixed(2)} ms`;
  return `${(ms * 1000).toFixed(1)} µs`;
}

/** Calls fn in batches until `minMs` have passed (after a warm-up); returns calls and elapsed ms. */
function loop(fn: () => void, minMs: number): { calls: number; ms: number } {
  for (let i = 0; i < 50; i++) fn();
  let calls = 0;
  const start = performance.now();
  let elapsed = 0;
  while (elapsed < minMs) {
    for (let i = 0; i < 100; i++) fn();
    calls += 100;
    elapsed = performance.now() - start;
  }
  return { calls, ms: elapsed };
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)] ?? Number.NaN;
}

function benchEd25519(secondsEach: number): void {
  const keys = generateKeyPair();
  const message = randomBytes(200);
  const signature = nodeSign(null, message, keys.privateKey);
  const signs = loop(() => nodeSign(null, message, keys.privateKey), secondsEach * 1000);
  report(
    'Ed25519 sign, 200-byte message (node:crypto)',
    rate(signs.calls, signs.ms),
    `${signs.calls} signatures`,
  );
  const verifies = loop(() => nodeVerify(null, message, keys.publicKey, signature), secondsEach * 1000);
  report(
    'Ed25519 verify, 200-byte message (node:crypto)',
    rate(verifies.calls, verifies.ms),
    `${verifies.calls} verifications`,
  );
  // The ledger's path adds the domain tag and RFC 8785 canonicalization of the body.
  const body = {
    type: 'device-report',
    chainId: 'bench',
    deviceId: 'device-0001',
    seq: 17,
    target: 'default',
    version: 5,
    sha256: sha256Hex('5'),
    status: 'applied',
    detail: 'applied default v5',
  };
  const sig = sign(Domain.transaction, body, keys.privateKey);
  const txSigns = loop(() => sign(Domain.transaction, body, keys.privateKey), (secondsEach * 1000) / 2);
  report(
    'sign a report body (domain tag + canonical JSON)',
    rate(txSigns.calls, txSigns.ms),
    `${txSigns.calls} signatures`,
  );
  const txVerifies = loop(
    () => verify(Domain.transaction, body, sig, keys.publicKey),
    (secondsEach * 1000) / 2,
  );
  report(
    'verify a report body (domain tag + canonical JSON)',
    rate(txVerifies.calls, txVerifies.ms),
    `${txVerifies.calls} verifications`,
  );
}

function benchMerkle(runs: number): void {
  const leaves = Array.from({ length: 10_000 }, () => randomBytes(300));
  merkleRootOfData(leaves);
  const times: number[] = [];
  for (let i = 0; i < runs; i++) {
    const start = performance.now();
    merkleRootOfData(leaves);
    times.push(performance.now() - start);
  }
  report(
    'Merkle root of 10,000 leaves (RFC 9162, 300 B each)',
    time(median(times)),
    `median of ${runs} runs`,
  );
}

/**
 * Blocks of 100 attest transactions (each validator-signed, so the blocks are real ones that
 * applyBlock and verifyChain accept), built and certified before the timer starts.
 */
function buildBlocks(count: number, txsPerBlock: number): { chain: TestChain; appends: AppendInput[] } {
  const chain = new TestChain({ seed: 'bench' });
  const appends: AppendInput[] = [];
  for (let b = 0; b < count; b++) {
    const txs: Transaction[] = [];
    for (let t = 0; t < txsPerBlock; t++) txs.push(chain.attest(`target-${t}`));
    appends.push(chain.next(txs));
  }
  return { chain, appends };
}

function benchAppend(blockCount: number, parentDir: string): void {
  const txsPerBlock = 100;
  const buildStart = performance.now();
  const { chain, appends } = buildBlocks(blockCount, txsPerBlock);
  const buildMs = performance.now() - buildStart;
  report(
    'build + certify blocks of 100 txs (buildBlock)',
    rate(blockCount, buildMs),
    `${blockCount} blocks, signatures verified (not part of the append figure)`,
  );

  const dir = mkdtempSync(join(parentDir, 'configchain-bench-'));
  try {
    const path = join(dir, 'node.sqlite');
    const store = SqliteStore.open(path, { genesis: chain.genesis });
    const perBlock: number[] = [];
    const start = performance.now();
    for (const input of appends) {
      const t0 = performance.now();
      store.appendBlock(input);
      perBlock.push(performance.now() - t0);
    }
    const ms = performance.now() - start;
    const settings = store.settings();
    report(
      'SQLite append, blocks of 100 txs, durable',
      rate(blockCount, ms),
      `${rate(blockCount * txsPerBlock, ms)} txs; median ${time(median(perBlock))}/block; ` +
        `journal=${settings.journalMode} synchronous=${settings.synchronous === 2 ? 'FULL' : settings.synchronous}`,
    );
    const verifyStart = performance.now();
    const verified = store.verifyChain();
    const verifyMs = performance.now() - verifyStart;
    if (!verified.ok) throw new Error(`the benchmark chain does not verify: ${verified.reason}`);
    report(
      'verifyChain (re-apply, roots, certificates)',
      rate(blockCount, verifyMs),
      `${blockCount} blocks in ${time(verifyMs)}`,
    );
    store.close();
    report(
      'SQLite file size after the run',
      `${(statSync(path).size / 1024 / 1024).toFixed(1)} MiB`,
      `${blockCount * txsPerBlock} txs`,
    );
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }

  // The same appends without the fsync per commit, to show what durability costs (never used by a node).
  const fastDir = mkdtempSync(join(parentDir, 'configchain-bench-'));
  try {
    const store = SqliteStore.open(join(fastDir, 'node.sqlite'), {
      genesis: chain.genesis,
      unsafeSkipFsync: true,
    });
    const start = performance.now();
    for (const input of appends) store.appendBlock(input);
    const ms = performance.now() - start;
    report(
      'SQLite append, same blocks, synchronous=NORMAL',
      rate(blockCount, ms),
      `${rate(blockCount * txsPerBlock, ms)} txs; for comparison only, not durable`,
    );
    store.close();
  } finally {
    rmSync(fastDir, { recursive: true, force: true });
  }

  const memory = MemoryStore.create(chain.genesis);
  const start = performance.now();
  for (const input of appends) memory.appendBlock(input);
  const ms = performance.now() - start;
  report(
    'memory store append, blocks of 100 txs',
    rate(blockCount, ms),
    `${rate(blockCount * txsPerBlock, ms)} txs`,
  );
}

function targetEntry(i: number, version: number): StateEntry {
  return {
    kind: 'target',
    target: `target-${i}` as TargetName,
    source: 'release',
    version,
    sha256: sha256Hex(`${i}/${version}`) as Hash32Hex,
    size: 100,
    mediaType: 'text/plain',
    height: 1 as Height,
    txId: sha256Hex(`tx/${i}/${version}`) as string as TxId,
  };
}

function benchStateRoot(entries: number, updates: number): void {
  const all: StateEntry[] = [];
  for (let i = 0; i < entries; i++) {
    if (i % 10 === 0) {
      all.push({
        kind: 'device',
        deviceId: `device-${i}` as DeviceId,
        publicKey: sha256Hex(`pk/${i}`) as string as PublicKeyHex,
        group: 'bench',
        target: 'default' as TargetName,
        status: 'enrolled',
        enrolledAt: 1 as Height,
        lastSeq: 0,
        lastReport: null,
      });
    } else {
      all.push(targetEntry(i, 1));
    }
  }
  const buildStart = performance.now();
  const state = LedgerState.fromEntries(all);
  const buildMs = performance.now() - buildStart;
  report(
    `build a state of ${entries.toLocaleString('en-US')} entries`,
    time(buildMs),
    'LedgerState.fromEntries, once at start',
  );

  const changes: StateChange[] = [];
  for (let u = 0; u < updates; u++) {
    const i = ((u * 7919) % entries) | 1;
    const entry = targetEntry(i, 2 + u);
    changes.push({ key: `target/target-${i}` as StateKey, entry });
  }
  let sink = '';
  const start = performance.now();
  for (const change of changes) sink = state.with([change]).root;
  const ms = performance.now() - start;
  report(
    `state-root update, 1 changed entry of ${entries.toLocaleString('en-US')}`,
    time(ms / updates),
    `mean of ${updates} updates (incremental sparse Merkle tree)`,
  );

  const changed = state.with([changes[0]!]);
  const changedEntries = Array.from(changed.entries(), ([, entry]) => entry);
  const scratchStart = performance.now();
  const scratch = stateRootFromScratch(changedEntries);
  const scratchMs = performance.now() - scratchStart;
  if (scratch !== changed.root) throw new Error('incremental and from-scratch roots differ');
  report(
    `state root from scratch, ${entries.toLocaleString('en-US')} entries`,
    time(scratchMs),
    'for comparison',
  );
  if (sink.length !== 64) throw new Error('unexpected root');
}

export async function run(args: string[]): Promise<void> {
  const quick = args.includes('--quick');
  const cpu = cpus();
  console.log(
    `ConfigChain ledger benchmark (node ${process.version}, ${process.platform}/${process.arch}, ` +
      `${cpu.length} x ${cpu[0]?.model ?? 'unknown cpu'}, load average ${loadavg()[0]?.toFixed(1)})` +
      `${quick ? ', --quick' : ''}`,
  );
  console.log(
    '  (a load average above the core count means other work shares the CPU: figures are then low)',
  );
  console.log(`  ${'measure'.padEnd(52)} ${'result'.padStart(16)}   detail`);
  benchEd25519(quick ? 0.3 : 2.5);
  benchMerkle(quick ? 5 : 30);
  const dirAt = args.indexOf('--dir');
  const parentDir = dirAt >= 0 ? args[dirAt + 1] : tmpdir();
  if (parentDir === undefined) throw new Error('usage: npm run bench -- ledger [--quick] [--dir DIR]');
  console.log(`  (database files under ${parentDir})`);
  benchAppend(quick ? 20 : 200, parentDir);
  benchStateRoot(100_000, quick ? 200 : 2000);
  console.log(`  ${rows.length} figures.`);
}
