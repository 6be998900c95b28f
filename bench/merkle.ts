/**
 * `npm run bench -- merkle [leaves]`: RFC 9162 tree costs on this machine.
 * Prints the time per root of a tree of `leaves` (default 10,000) leaves, from leaf hashes and from
 * leaf data, the build time of a MerkleTree that keeps every level, and the rates at which
 * inclusion and consistency proofs are built and verified.
 */
import { randomBytes } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import {
  leafHash,
  MerkleTree,
  merkleRoot,
  merkleRootOfData,
  verifyConsistency,
  verifyInclusion,
} from '../src/merkle/index.ts';

/** Runs `fn` repeatedly for at least `minMs` (after one warm-up call); returns ms per call. */
function measure(fn: () => void, minMs = 500): { msPerOp: number; ops: number } {
  fn();
  let ops = 0;
  const start = performance.now();
  let elapsed = 0;
  while (elapsed < minMs) {
    fn();
    ops += 1;
    elapsed = performance.now() - start;
  }
  return { msPerOp: elapsed / ops, ops };
}

function line(label: string, msPerOp: number, unit: string): void {
  const perSecond = 1000 / msPerOp;
  const time = msPerOp >= 1 ? `${msPerOp.toFixed(2)} ms` : `${(msPerOp * 1000).toFixed(1)} µs`;
  console.log(
    `${label.padEnd(46)} ${time.padStart(11)} per ${unit}  ${Math.round(perSecond).toLocaleString('en-US').padStart(12)} ${unit}s/s`,
  );
}

export async function run(args: string[]): Promise<void> {
  const leaves = Number(args[0] ?? 10_000);
  if (!Number.isSafeInteger(leaves) || leaves < 2)
    throw new Error('usage: npm run bench -- merkle [leaves >= 2]');
  // Transaction-sized leaf data (about 300 bytes, like a canonical release transaction).
  const data = Array.from({ length: leaves }, () => randomBytes(300));
  const hashes = data.map(leafHash);
  console.log(`RFC 9162 Merkle tree, ${leaves.toLocaleString('en-US')} leaves (node ${process.version})`);

  line('root from leaf hashes (merkleRoot)', measure(() => merkleRoot(hashes)).msPerOp, 'root');
  line(
    'root from 300-byte leaf data (merkleRootOfData)',
    measure(() => merkleRootOfData(data)).msPerOp,
    'root',
  );
  line(
    'MerkleTree.fromLeafHashes (keeps all levels)',
    measure(() => MerkleTree.fromLeafHashes(hashes)).msPerOp,
    'tree',
  );

  const tree = MerkleTree.fromLeafHashes(hashes);
  const root = tree.root();
  const count = 10_000;
  const indices = Array.from({ length: count }, (_, i) => (i * 7919) % leaves);
  const proofs = indices.map((i) => tree.inclusionProof(i));
  let next = 0;
  line(
    'inclusion proof build',
    measure(() => {
      tree.inclusionProof(indices[next++ % count]!);
    }).msPerOp,
    'proof',
  );
  next = 0;
  line(
    'inclusion proof verify',
    measure(() => {
      const k = next++ % count;
      const i = indices[k]!;
      if (!verifyInclusion(i, leaves, hashes[i]!, proofs[k]!, root)) throw new Error('a valid proof failed');
    }).msPerOp,
    'proof',
  );

  const sizes = Array.from({ length: 1000 }, (_, i) => 1 + ((i * 7919) % (leaves - 1)));
  const oldRoots = sizes.map((m) => tree.rangeHash(0, m));
  const consistency = sizes.map((m) => tree.consistencyProof(m));
  next = 0;
  line(
    'consistency proof build',
    measure(() => {
      tree.consistencyProof(sizes[next++ % sizes.length]!);
    }).msPerOp,
    'proof',
  );
  next = 0;
  line(
    'consistency proof verify',
    measure(() => {
      const k = next++ % sizes.length;
      if (!verifyConsistency(sizes[k]!, leaves, oldRoots[k]!, root, consistency[k]!)) {
        throw new Error('a valid proof failed');
      }
    }).msPerOp,
    'proof',
  );
}
