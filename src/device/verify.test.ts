import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import fc from 'fast-check';
import { Domain } from '../crypto/domains.ts';
import { sign } from '../crypto/ed25519.ts';
import { createTestNetwork } from '../ledger/testing.ts';
import type { BlockHeader, CommitCertificate, TargetEntry } from '../ledger/types.ts';
import type { TargetProof } from './contract.ts';
import { certify, makeTargetProof, makeTxProof } from './testing.ts';
import { verifyArtifact, verifyTargetProof, verifyTxProof } from './verify.ts';

const here = dirname(fileURLToPath(import.meta.url));
const src = resolve(here, '..');

/** Runtime imports of a file: `import type` and `export type` are erased and load nothing. */
function runtimeImports(file: string): string[] {
  const text = readFileSync(file, 'utf8');
  return [...text.matchAll(/^\s*(import|export)\s+(?!type\s)[^;]*?from\s+'([^']+)'/gms)].map(
    (m) => m[2] as string,
  );
}

function allImports(file: string): string[] {
  const text = readFileSync(file, 'utf8');
  return [...text.matchAll(/^\s*(?:import|export)\s[^;]*?from\s+'([^']+)'/gms)].map((m) => m[1] as string);
}

const base = makeTargetProof({ version: 3 });
const genesis = base.network.genesis;
const now = base.proof.header.timestampMs + 1000;
const ctx = { genesis, target: 'default', lastAppliedVersion: 2, nowMs: now, headerAgeMsMax: 60_000 };

function clone<T>(value: T): T {
  return JSON.parse(JSON.stringify(value)) as T;
}

function codeOf(result: { ok: boolean; code?: string }): string {
  return result.ok ? 'ok' : (result.code as string);
}

describe('verifyTargetProof', () => {
  it('accepts a genuine proof of a newer version and returns the entry', () => {
    const result = verifyTargetProof(clone(base.proof), ctx);
    assert.equal(result.ok, true);
    assert.ok(result.ok && result.outcome === 'newer');
    assert.deepEqual(result.entry, base.entry);
  });

  it('says there is nothing new when the version equals the applied one, without an error', () => {
    const result = verifyTargetProof(base.proof, { ...ctx, lastAppliedVersion: 3 });
    assert.ok(result.ok && result.outcome === 'current');
  });

  it('refuses an older version than the applied one (rollback)', () => {
    const result = verifyTargetProof(base.proof, { ...ctx, lastAppliedVersion: 4 });
    assert.equal(codeOf(result), 'ROLLBACK');
  });

  it('accepts a proven absence as nothing to do', () => {
    const absent = makeTargetProof({ absent: true });
    const result = verifyTargetProof(absent.proof, ctx);
    assert.ok(result.ok && result.outcome === 'absent' && result.entry === null);
    // The same absence proof does not prove the presence of an entry someone adds to it.
    const forged = { ...clone(absent.proof), entry: base.entry };
    assert.equal(codeOf(verifyTargetProof(forged, ctx)), 'STATE_PROOF');
  });

  it('refuses a header older than the maximum age, and accepts one exactly at it (freeze)', () => {
    const age = { ...ctx, nowMs: base.proof.header.timestampMs + 60_000 };
    assert.equal(verifyTargetProof(base.proof, age).ok, true);
    const stale = verifyTargetProof(base.proof, { ...age, nowMs: age.nowMs + 1 });
    assert.equal(codeOf(stale), 'STALE_HEADER');
    // A stale header is refused even when it would say "nothing new".
    const frozen = verifyTargetProof(base.proof, { ...age, nowMs: age.nowMs + 1, lastAppliedVersion: 3 });
    assert.equal(codeOf(frozen), 'STALE_HEADER');
  });

  it('refuses a proof for another target (mix-and-match)', () => {
    assert.equal(codeOf(verifyTargetProof(base.proof, { ...ctx, target: 'cameras' })), 'WRONG_TARGET');
    const other = makeTargetProof({ target: 'group:cameras' });
    assert.equal(
      codeOf(verifyTargetProof({ ...clone(other.proof), target: 'default' }, ctx)),
      'WRONG_TARGET',
    );
  });

  it('refuses a proof of another chain or validator set', () => {
    const otherChain = createTestNetwork({ seed: 'elsewhere' }).genesis;
    assert.equal(codeOf(verifyTargetProof(base.proof, { ...ctx, genesis: otherChain })), 'CHAIN_MISMATCH');
    const sameIdOtherKeys = createTestNetwork({ seed: 'elsewhere', chainId: genesis.chainId }).genesis;
    assert.equal(
      codeOf(verifyTargetProof(base.proof, { ...ctx, genesis: sameIdOtherKeys })),
      'CHAIN_MISMATCH',
    );
  });

  it('refuses certificates with too few, repeated or unknown signers', () => {
    const two = makeTargetProof({ signers: [0, 1] });
    assert.equal(codeOf(verifyTargetProof(two.proof, ctx)), 'CERT_QUORUM');
    const cert = clone(base.proof.certificate);
    const repeated: CommitCertificate = {
      ...cert,
      signatures: [
        cert.signatures[0],
        cert.signatures[0],
        cert.signatures[1],
      ] as CommitCertificate['signatures'],
    };
    assert.equal(codeOf(verifyTargetProof({ ...base.proof, certificate: repeated }, ctx)), 'CERT_QUORUM');
    const unknown = {
      ...cert,
      signatures: [...cert.signatures, { validator: 9, signature: cert.signatures[0]?.signature }],
    };
    assert.equal(
      codeOf(verifyTargetProof({ ...base.proof, certificate: unknown }, ctx)),
      'CERT_UNKNOWN_SIGNER',
    );
    const allFour = makeTargetProof({ signers: [0, 1, 2, 3] });
    assert.equal(verifyTargetProof(allFour.proof, ctx).ok, true);
  });

  it('refuses a forged header, whether it keeps the old certificate or signs a new one with other keys', () => {
    const header: BlockHeader = {
      ...base.proof.header,
      stateRoot: 'ab'.repeat(32) as BlockHeader['stateRoot'],
    };
    assert.equal(codeOf(verifyTargetProof({ ...base.proof, header }, ctx)), 'HEADER_HASH');
    const impostors = createTestNetwork({ seed: 'impostors', chainId: genesis.chainId });
    const forged = certify(impostors, header, [0, 1, 2]);
    assert.equal(
      codeOf(verifyTargetProof({ ...base.proof, header, certificate: forged }, ctx)),
      'CERT_SIGNATURE',
    );
  });

  it('refuses a certificate whose signature is over another message kind', () => {
    const cert = clone(base.proof.certificate);
    const key = base.network.validatorKeys[0];
    assert.ok(key !== undefined);
    const wrongDomain = sign(
      Domain.pbftPrepare,
      { chainId: genesis.chainId, view: cert.view, height: cert.height, blockHash: cert.blockHash },
      key.privateKey,
    );
    const signatures = cert.signatures.map((s, i) => (i === 0 ? { ...s, signature: wrongDomain } : s));
    assert.equal(
      codeOf(verifyTargetProof({ ...base.proof, certificate: { ...cert, signatures } }, ctx)),
      'CERT_SIGNATURE',
    );
  });

  it('refuses a state proof with an altered sibling or an altered entry', () => {
    const proof = clone(base.proof);
    assert.ok(proof.stateProof.siblings.length > 2, 'the fixture state is big enough to have siblings');
    const siblings = [...proof.stateProof.siblings];
    siblings[1] = flipHex(siblings[1] as string) as (typeof siblings)[number];
    assert.equal(
      codeOf(verifyTargetProof({ ...proof, stateProof: { ...proof.stateProof, siblings } }, ctx)),
      'STATE_PROOF',
    );
    const entry = { ...(proof.entry as TargetEntry), version: 9 };
    assert.equal(codeOf(verifyTargetProof({ ...proof, entry }, ctx)), 'STATE_PROOF');
  });

  it('never throws on hostile JSON, and never accepts it', () => {
    fc.assert(
      fc.property(fc.anything(), (junk) => {
        assert.equal(verifyTargetProof(junk, ctx).ok, false);
        assert.equal(verifyTargetProof({ ...base.proof, stateProof: junk }, ctx).ok, false);
        assert.equal(verifyTargetProof({ ...base.proof, certificate: junk }, ctx).ok, false);
        assert.equal(verifyTargetProof({ ...base.proof, entry: junk }, ctx).ok, false);
      }),
      { numRuns: 300 },
    );
    // Values JSON never holds but an in-process caller might pass.
    const weird = { ...base.proof, header: { ...base.proof.header, extra: 10n } };
    assert.equal(codeOf(verifyTargetProof(weird, ctx)), 'MALFORMED');
  });

  it('refuses every single mutation of a genuine proof (property)', () => {
    const leaves = leafPaths(base.proof);
    assert.ok(leaves.length > 20);
    fc.assert(
      fc.property(
        fc.constantFrom(...leaves),
        fc.nat(),
        fc.constantFrom('change', 'delete', 'add'),
        (path, seed, how) => {
          const mutated = mutate(clone(base.proof), path, seed, how);
          if (mutated === null) return; // e.g. adding a field to a list item's parent that ignores it
          const result = verifyTargetProof(mutated, ctx);
          assert.equal(result.ok, false, `mutation ${how} of ${path.join('.')} was accepted`);
        },
      ),
      { numRuns: 400 },
    );
  });
});

describe('verifyTxProof', () => {
  const { proof, network } = makeTxProof();
  const txCtx = { genesis: network.genesis };

  it('accepts a genuine inclusion proof, and one for the expected id', () => {
    assert.equal(verifyTxProof(clone(proof), txCtx).ok, true);
    assert.equal(verifyTxProof(proof, { ...txCtx, txId: proof.txId }).ok, true);
    assert.equal(codeOf(verifyTxProof(proof, { ...txCtx, txId: 'ab'.repeat(32) })), 'TX_ID');
  });

  it('refuses a moved index, an altered audit path, an altered transaction', () => {
    assert.equal(codeOf(verifyTxProof({ ...proof, index: proof.index + 1 }, txCtx)), 'TX_INCLUSION');
    const inclusion = [...proof.inclusion];
    inclusion[0] = flipHex(inclusion[0] as string) as (typeof inclusion)[number];
    assert.equal(codeOf(verifyTxProof({ ...proof, inclusion }, txCtx)), 'TX_INCLUSION');
    const tx = clone(proof.tx);
    const body = { ...tx.body, version: 2 };
    assert.equal(codeOf(verifyTxProof({ ...proof, tx: { ...tx, body } }, txCtx)), 'TX_ID');
  });

  it('refuses every single mutation (property) and never throws on junk', () => {
    const leaves = leafPaths(proof);
    fc.assert(
      fc.property(fc.constantFrom(...leaves), fc.nat(), (path, seed) => {
        const mutated = mutate(clone(proof), path, seed, 'change');
        if (mutated === null) return;
        assert.equal(verifyTxProof(mutated, txCtx).ok, false, `change of ${path.join('.')} was accepted`);
      }),
      { numRuns: 300 },
    );
    fc.assert(
      fc.property(fc.anything(), (junk) => assert.equal(verifyTxProof(junk, txCtx).ok, false)),
      {
        numRuns: 200,
      },
    );
  });
});

describe('verifyArtifact', () => {
  const entry = base.entry as TargetEntry;
  it('accepts the released bytes and refuses another size or hash', () => {
    assert.equal(verifyArtifact(entry, entry.sha256, entry.size).ok, true);
    assert.equal(codeOf(verifyArtifact(entry, entry.sha256, entry.size + 1)), 'ARTIFACT_SIZE');
    assert.equal(codeOf(verifyArtifact(entry, flipHex(entry.sha256), entry.size)), 'ARTIFACT_HASH');
  });
});

describe('the verifier stays embeddable', () => {
  it('imports directly only node:crypto, encoding, crypto, merkle, the certificate check and pure ledger block code', () => {
    const allowed = [
      /^node:crypto$/,
      /^\.\.\/encoding\//,
      /^\.\.\/crypto\//,
      /^\.\.\/merkle\//,
      /^\.\.\/consensus\/certificate\.ts$/,
      /^\.\.\/ledger\/(types|block|genesis)\.ts$/,
      /^\.\/contract\.ts$/,
    ];
    for (const spec of allImports(join(here, 'verify.ts'))) {
      assert.ok(
        allowed.some((re) => re.test(spec)),
        `verify.ts imports ${spec}`,
      );
    }
  });

  it('loads, through its whole import graph, no network, process or file-writing module and no other folder', () => {
    const allowedFiles =
      /^(encoding|crypto|merkle|ledger)\/[^/]+\.ts$|^consensus\/certificate\.ts$|^(constants|errors)\.ts$|^device\/(verify|contract)\.ts$/;
    const seen = new Set<string>();
    const stack = [join(here, 'verify.ts')];
    const packages = new Set<string>();
    while (stack.length > 0) {
      const file = stack.pop() as string;
      if (seen.has(file)) continue;
      seen.add(file);
      const rel = relative(src, file);
      assert.ok(
        allowedFiles.test(rel) && !rel.endsWith('.test.ts') && rel !== 'ledger/testing.ts',
        `the verifier loads ${rel}`,
      );
      for (const spec of runtimeImports(file)) {
        if (spec.startsWith('.')) {
          stack.push(resolve(dirname(file), spec));
        } else if (spec.startsWith('node:')) {
          // Only node:crypto: the key-file helpers live in src/crypto/keyfile.ts, which the
          // verifier does not import, so nothing it loads can touch the file system.
          assert.ok(spec === 'node:crypto', `${rel} imports ${spec}`);
        } else {
          packages.add(spec);
        }
      }
    }
    assert.deepEqual([...packages], ['json-canonicalize']);
    assert.ok(seen.size > 5);
  });
});

// Mutation helpers -------------------------------------------------------------------------------

type Path = readonly (string | number)[];

function leafPaths(value: unknown, path: Path = []): Path[] {
  if (Array.isArray(value)) return value.flatMap((item, i) => leafPaths(item, [...path, i]));
  if (typeof value === 'object' && value !== null) {
    const own = Object.entries(value).flatMap(([k, v]) => leafPaths(v, [...path, k]));
    return path.length === 0 ? own : [path, ...own];
  }
  return [path];
}

function flipHex(hex: string, at = 0): string {
  const i = at % hex.length;
  const c = hex[i] === '0' ? '1' : '0';
  return hex.slice(0, i) + c + hex.slice(i + 1);
}

/** One change at `path`: alter a leaf, delete the key, or add a field beside it. Null when it is a no-op. */
function mutate(
  root: TargetProof | object,
  path: Path,
  seed: number,
  how: 'change' | 'delete' | 'add',
): unknown {
  const parentPath = path.slice(0, -1);
  const key = path[path.length - 1] as string | number;
  let parent: Record<string | number, unknown> = root as Record<string, unknown>;
  for (const step of parentPath) parent = parent[step] as Record<string | number, unknown>;
  const old = parent[key];
  if (how === 'delete') {
    if (Array.isArray(parent)) parent.splice(key as number, 1);
    else delete parent[key];
    return root;
  }
  if (how === 'add') {
    // An extra field only matters where it is hashed or signed; the top-level proof wrapper and
    // the list of signatures are containers whose unknown fields a verifier may ignore.
    if (
      Array.isArray(parent) ||
      parentPath.length === 0 ||
      parentPath[0] === 'certificate' ||
      parentPath[0] === 'stateProof'
    ) {
      return null;
    }
    parent.extra = seed;
    return root;
  }
  if (typeof old === 'string') {
    parent[key] = /^[0-9a-f]+$/.test(old) ? flipHex(old, seed) : `${old}x`;
  } else if (typeof old === 'number') {
    parent[key] = old + (seed % 2 === 0 ? 1 : -1);
  } else if (old === null) {
    parent[key] = {};
  } else if (typeof old === 'object') {
    parent[key] = null;
  } else {
    parent[key] = !old;
  }
  return root;
}
