/**
 * The public RFC 9162 test vectors (transparency-dev/merkle testdata, copied to
 * ../shared/testdata/rfc9162 beside the repository): one test per vector file, so the counts show.
 * Every wantErr vector must be rejected and every other one accepted. Happy-path inclusion and
 * consistency proofs over the README's known leaves are also rebuilt by our builder byte for byte.
 */
import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { fromBase64 } from '../encoding/bytes.ts';
import { checkConsistency, checkInclusion } from './proofs.ts';
import { MerkleTree } from './tree.ts';

const repoRoot = resolve(fileURLToPath(new URL('.', import.meta.url)), '..', '..');
const vectorsDir = resolve(repoRoot, '..', 'shared', 'testdata', 'rfc9162');

/** The leaves the upstream generator used (README.md of the vectors). */
const KNOWN_LEAVES = [
  '',
  '00',
  '10',
  '2021',
  '3031',
  '40414243',
  '5051525354555657',
  '606162636465666768696a6b6c6d6e6f',
].map((h) => Buffer.from(h, 'hex'));
const knownTree = MerkleTree.fromLeafData(KNOWN_LEAVES);

interface InclusionVector {
  leafIdx: number;
  treeSize: number;
  root: string;
  leafHash: string;
  proof: string[] | null;
  desc: string;
  wantErr: boolean;
}

interface ConsistencyVector {
  size1: number;
  size2: number;
  root1: string;
  root2: string;
  proof: string[] | null;
  desc: string;
  wantErr: boolean;
}

/** Vector files under `kind` (at any depth), as relative paths, sorted; empty when absent. */
function vectorFiles(kind: 'inclusion' | 'consistency'): string[] {
  const base = join(vectorsDir, kind);
  if (!existsSync(base)) return [];
  return readdirSync(base, { recursive: true, encoding: 'utf8' })
    .filter((file) => file.endsWith('.json'))
    .sort();
}

function load<T>(kind: string, file: string): T {
  return JSON.parse(readFileSync(join(vectorsDir, kind, file), 'utf8')) as T;
}

const decode = (text: string): Buffer => fromBase64(text);
const decodeProof = (proof: string[] | null): Buffer[] => (proof ?? []).map(decode);

/** The known-leaves prefix whose root this is, if any (the vectors' trees are such prefixes). */
function knownSizeForRoot(root: Buffer, size: number): number | undefined {
  if (size < 1 || size > KNOWN_LEAVES.length) return undefined;
  return knownTree.rangeHash(0, size).equals(root) ? size : undefined;
}

const inclusionFiles = vectorFiles('inclusion');
const consistencyFiles = vectorFiles('consistency');

describe('RFC 9162 test vectors are present', () => {
  it(`finds the vectors in ${vectorsDir}`, () => {
    assert.ok(
      existsSync(vectorsDir),
      `RFC 9162 test vectors not found at ${vectorsDir}: put the shared/ folder (with ` +
        'testdata/rfc9162) beside the repository root, as in the standard checkout layout',
    );
    // The copied set has 98 inclusion and 98 consistency files; fewer means a broken copy, and
    // the per-file tests below would silently shrink with it.
    assert.ok(
      inclusionFiles.length >= 98,
      `expected >= 98 inclusion vectors, found ${inclusionFiles.length}`,
    );
    assert.ok(
      consistencyFiles.length >= 98,
      `expected >= 98 consistency vectors, found ${consistencyFiles.length}`,
    );
  });
});

describe('RFC 9162 inclusion vectors', () => {
  for (const file of inclusionFiles) {
    it(file, () => {
      const v = load<InclusionVector>('inclusion', file);
      const root = decode(v.root);
      const leaf = decode(v.leafHash);
      const proof = decodeProof(v.proof);
      const result = checkInclusion(v.leafIdx, v.treeSize, leaf, proof, root);
      if (v.wantErr) {
        assert.equal(result.ok, false, `${v.desc}: a corrupted proof was accepted`);
        return;
      }
      assert.deepEqual(result, { ok: true }, `${v.desc}: a valid proof was rejected`);
      const size = knownSizeForRoot(root, v.treeSize);
      if (size !== undefined) {
        assert.ok(knownTree.leafHash(v.leafIdx).equals(leaf), 'the leaf hash is the known leaf');
        assert.deepEqual(
          knownTree.inclusionProof(v.leafIdx, size),
          proof,
          'the builder gives the same proof',
        );
      }
    });
  }
});

describe('RFC 9162 consistency vectors', () => {
  for (const file of consistencyFiles) {
    it(file, () => {
      const v = load<ConsistencyVector>('consistency', file);
      const root1 = decode(v.root1);
      const root2 = decode(v.root2);
      const proof = decodeProof(v.proof);
      const result = checkConsistency(v.size1, v.size2, root1, root2, proof);
      if (v.wantErr) {
        assert.equal(result.ok, false, `${v.desc}: a corrupted proof was accepted`);
        return;
      }
      assert.deepEqual(result, { ok: true }, `${v.desc}: a valid proof was rejected`);
      const size1 = knownSizeForRoot(root1, v.size1);
      const size2 = knownSizeForRoot(root2, v.size2);
      if (size1 !== undefined && size2 !== undefined) {
        assert.deepEqual(knownTree.consistencyProof(size1, size2), proof, 'the builder gives the same proof');
      }
    });
  }
});
