/**
 * `npm run bench -- state [entries]`: the cost of the ledger's state root.
 *
 * 1. Builds a state of N entries (default 100,000: half targets, half devices), then times many
 *    single-entry updates (LedgerState.with([change]), which hashes the entry and rehashes one
 *    path of the sparse Merkle tree) and prints microseconds per update. For contrast it times
 *    one from-scratch recomputation of the same state's root.
 * 2. applyBlock throughput for blocks of 100 release transactions on top of that state, with
 *    Ed25519 verification in applyBlock and with the node's pre-verified hint.
 */
import { performance } from 'node:perf_hooks';
import { sha256Hex } from '../src/crypto/hash.ts';
import type {
  DeviceId,
  Height,
  PublicKeyHex,
  TargetName,
  TxId,
  ValidatorId,
  View,
} from '../src/encoding/brand.ts';
import {
  applyBlock,
  type Block,
  type BlockHeader,
  buildBlock,
  type DeviceEntry,
  genesisBlock,
  LedgerState,
  type StateEntry,
  signRelease,
  stateRootFromScratch,
  type TargetEntry,
  type Transaction,
  targetKey,
} from '../src/ledger/index.ts';
import { createTestNetwork } from '../src/ledger/testing.ts';

function targetEntry(i: number, version: number): TargetEntry {
  return {
    kind: 'target',
    target: `bench-target-${i}` as TargetName,
    source: 'release',
    version,
    sha256: sha256Hex(`t${i}v${version}`),
    size: 1000 + i,
    mediaType: 'application/json',
    height: 1 as Height,
    txId: sha256Hex(`tx${i}`) as string as TxId,
  };
}

function deviceEntry(i: number): DeviceEntry {
  return {
    kind: 'device',
    deviceId: `bench-device-${i}` as DeviceId,
    publicKey: sha256Hex(`k${i}`) as string as PublicKeyHex,
    group: 'bench',
    target: 'default' as TargetName,
    status: 'enrolled',
    enrolledAt: 1 as Height,
    lastSeq: 0,
    lastReport: null,
  };
}

function format(n: number, digits = 1): string {
  return n.toLocaleString('en-US', { maximumFractionDigits: digits, minimumFractionDigits: digits });
}

export async function run(args: string[]): Promise<void> {
  const entries = Number.parseInt(args[0] ?? '100000', 10);
  console.log(`state bench: ${entries.toLocaleString('en-US')} entries`);

  let t = performance.now();
  const all: StateEntry[] = [];
  for (let i = 0; i < entries; i++) all.push(i % 2 === 0 ? targetEntry(i, 1) : deviceEntry(i));
  const state = LedgerState.fromEntries(all);
  console.log(
    `  load state (bulk build)       ${format(performance.now() - t, 0)} ms (${state.size} entries)`,
  );

  t = performance.now();
  const scratchRoot = stateRootFromScratch(all);
  console.log(`  root from scratch             ${format(performance.now() - t, 0)} ms`);
  if (scratchRoot !== state.root) throw new Error('the incremental and from-scratch roots differ');

  const updates = 20_000;
  const changes = Array.from({ length: updates }, (_, u) => {
    const entry = targetEntry(((u * 7919) % (entries / 2)) * 2, 2 + u);
    return { key: targetKey(entry.target), entry };
  });
  // Warm up the JIT on a throwaway chain of states.
  let warm = state;
  for (const change of changes.slice(0, 2000)) warm = warm.with([change]);
  t = performance.now();
  const cpu = process.cpuUsage();
  let current = state;
  for (const change of changes) current = current.with([change]);
  const perUpdate = ((performance.now() - t) * 1000) / updates;
  const used = process.cpuUsage(cpu);
  const cpuPerUpdate = (used.user + used.system) / updates;
  console.log(
    `  1-entry state-root update     ${format(perUpdate, 2)} µs wall, ${format(cpuPerUpdate, 2)} µs CPU per update (${updates.toLocaleString('en-US')} updates, entry hash + one tree path, proof depth ${state.proof(changes[0]!.key).siblings.length})`,
  );
  if (current.root !== stateRootFromScratch([...current.entries()].map(([, entry]) => entry))) {
    throw new Error('the incrementally updated root differs from the from-scratch root');
  }
  // Updates from a fixed base (the shape of validating one block on top of the committed state).
  t = performance.now();
  for (const change of changes) state.with([change]).root;
  console.log(`  1-entry update + root (base)  ${format(((performance.now() - t) * 1000) / updates, 2)} µs`);

  await applyThroughput(state);
}

async function applyThroughput(base: LedgerState): Promise<void> {
  const { genesis, adminKeys } = createTestNetwork({ seed: 'bench' });
  const blocksCount = 20;
  const perBlock = 100;
  const params = (i: number) => ({
    view: 0 as View,
    proposer: 0 as ValidatorId,
    timestampMs: genesis.genesisTimeMs + i,
  });
  const txsFor = (b: number): Transaction[] =>
    Array.from({ length: perBlock }, (_, i) =>
      signRelease(
        {
          type: 'release',
          chainId: genesis.chainId,
          target: `release-${i}` as TargetName,
          version: b + 1,
          sha256: sha256Hex(`${i}/${b}`),
          size: 1,
          mediaType: 'text/plain',
        },
        adminKeys.slice(0, 2),
      ),
    );
  const genesisHeader = genesisBlock(genesis).header;
  const blocks: Block[] = [];
  let parent: BlockHeader = genesisHeader;
  let state = base;
  for (let b = 0; b < blocksCount; b++) {
    const built = buildBlock(genesis, parent, state, txsFor(b), params(b), { signatureChecked: () => true });
    if (built.block.txs.length !== perBlock) throw new Error('a bench transaction was rejected');
    blocks.push(built.block);
    parent = built.block.header;
    state = built.state;
  }
  for (const [label, opts] of [
    ['verifying 2 signatures per tx', {}],
    ['signatures pre-verified (hint)', { signatureChecked: () => true }],
  ] as const) {
    const t = performance.now();
    const cpu = process.cpuUsage();
    let p: BlockHeader = genesisHeader;
    let s = base;
    for (const block of blocks) {
      s = applyBlock(genesis, p, s, block, opts).state;
      p = block.header;
    }
    const seconds = (performance.now() - t) / 1000;
    const used = process.cpuUsage(cpu);
    const cpuSeconds = (used.user + used.system) / 1e6;
    console.log(
      `  applyBlock, ${perBlock} txs/block, ${label}: ${format(blocksCount / seconds)} blocks/s, ${format((blocksCount * perBlock) / seconds, 0)} txs/s wall; ${format(blocksCount / cpuSeconds)} blocks/s per CPU-second`,
    );
  }
}
