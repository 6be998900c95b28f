/**
 * An in-process certified chain for the verifier-only attack tests: real blocks built by the
 * ledger, real commit certificates signed by the validators' keys, and real TargetProofs cut from
 * the state after each block. No processes, so a test can craft any proof in milliseconds.
 */
import { commitPayload, makeCommitCertificate, quorumSize } from '../../src/consensus/certificate.ts';
import { Domain } from '../../src/crypto/domains.ts';
import { sign } from '../../src/crypto/ed25519.ts';
import { sha256Hex } from '../../src/crypto/hash.ts';
import type { TargetProof } from '../../src/device/contract.ts';
import type { TargetName, ValidatorId, View } from '../../src/encoding/brand.ts';
import { blockHash, buildBlock, genesisBlock, LedgerState, signRelease } from '../../src/ledger/index.ts';
import { createTestNetwork, type TestNetwork } from '../../src/ledger/testing.ts';
import type { BlockHeader, CommitCertificate, ReleaseBody } from '../../src/ledger/types.ts';
import { targetKey } from '../../src/ledger/types.ts';

export interface Release {
  readonly target: string;
  readonly version: number;
  readonly content: Buffer;
}

export interface CertifiedChain {
  readonly net: TestNetwork;
  /** After block h (1-based), the proof of each target, by target name. */
  readonly proofs: readonly ReadonlyMap<string, TargetProof>[];
  readonly headers: readonly BlockHeader[];
}

export function contentOf(target: string, version: number): Buffer {
  return Buffer.from(`${target} configuration, version ${version}\n`, 'utf8');
}

/**
 * Builds one block per entry of `blocks` (each a list of releases), each certified by a quorum,
 * with block timestamps `stepMs` apart starting at `startMs`.
 */
export function certifiedChain(
  blocks: readonly (readonly Release[])[],
  options: { readonly startMs: number; readonly stepMs: number; readonly seed?: string },
): CertifiedChain {
  const net = createTestNetwork({ seed: options.seed ?? 'attacks' });
  const { genesis } = net;
  let parent = genesisBlock(genesis).header;
  let state = LedgerState.empty();
  const proofs: Map<string, TargetProof>[] = [];
  const headers: BlockHeader[] = [];
  const targets = new Set<string>();
  blocks.forEach((releases, i) => {
    const txs = releases.map((r) => {
      const body: ReleaseBody = {
        type: 'release',
        chainId: genesis.chainId,
        target: r.target as TargetName,
        version: r.version,
        sha256: sha256Hex(r.content),
        size: r.content.byteLength,
        mediaType: 'text/plain',
      };
      targets.add(r.target);
      return signRelease(body, net.adminKeys.slice(0, genesis.releaseThreshold));
    });
    const built = buildBlock(genesis, parent, state, txs, {
      view: 0 as View,
      proposer: 0 as ValidatorId,
      timestampMs: options.startMs + i * options.stepMs,
    });
    if (built.rejected.length > 0) throw new Error(`fixture: ${built.rejected[0]?.reason}`);
    const header = built.block.header;
    const certificate = certify(net, header);
    state = built.state;
    const byTarget = new Map<string, TargetProof>();
    for (const target of targets) {
      const entry = state.target(target);
      byTarget.set(target, {
        target: target as TargetName,
        header,
        certificate,
        entry: entry ?? null,
        stateProof: state.proof(targetKey(target)),
      });
    }
    proofs.push(byTarget);
    headers.push(header);
    parent = header;
  });
  return { net, proofs, headers };
}

function certify(net: TestNetwork, header: BlockHeader): CommitCertificate {
  const hash = blockHash(header);
  const payload = commitPayload(header.chainId, header.view, header.height, hash);
  const quorum = quorumSize(net.validatorKeys.length);
  const signatures = net.validatorKeys.slice(0, quorum).map((k) => ({
    validator: k.id,
    signature: sign(Domain.pbftCommit, payload, k.privateKey),
  }));
  return makeCommitCertificate(header.height, header.view, hash, signatures);
}
