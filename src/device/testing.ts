/**
 * Test fixtures for the device verifier: genuine target and transaction proofs, built in-process
 * from a seeded test network (src/ledger/testing.ts) with real state trees and real commit
 * signatures, so tests and the benchmark check exactly what a validator would serve.
 */
import { commitPayload, makeCommitCertificate } from '../consensus/certificate.ts';
import { Domain } from '../crypto/domains.ts';
import { sign } from '../crypto/ed25519.ts';
import { sha256Hex } from '../crypto/hash.ts';
import type { Hash32Hex, Height, TargetName, TxId, View } from '../encoding/brand.ts';
import {
  blockHash,
  genesisBlock,
  LedgerState,
  signRelease,
  txId,
  txInclusionProof,
  txRoot,
} from '../ledger/index.ts';
import { createTestNetwork, type TestNetwork } from '../ledger/testing.ts';
import type { BlockHeader, CommitCertificate, TargetEntry, Transaction } from '../ledger/types.ts';
import { targetKey } from '../ledger/types.ts';
import type { TargetProof, TxProof } from './contract.ts';

export interface ProofFixtureOptions {
  readonly validators?: number;
  readonly seed?: string;
  readonly target?: string;
  readonly version?: number;
  readonly content?: string;
  readonly height?: number;
  readonly timestampMs?: number;
  /** Other targets in the state, so the proof has real siblings. Default 50. */
  readonly otherTargets?: number;
  /** Which validators sign the certificate; default the first 2f+1. */
  readonly signers?: readonly number[];
  /** Leave the device's target out of the state (the proof then shows its absence). */
  readonly absent?: boolean;
}

export interface ProofFixture {
  readonly network: TestNetwork;
  readonly proof: TargetProof;
  readonly entry: TargetEntry | null;
  readonly content: Buffer;
}

/** A certificate over `header`, signed by the given validators of the network. */
export function certify(
  network: TestNetwork,
  header: BlockHeader,
  signers: readonly number[],
): CommitCertificate {
  const hash = blockHash(header);
  const payload = commitPayload(network.genesis.chainId, header.view, header.height, hash);
  return makeCommitCertificate(
    header.height,
    header.view,
    hash,
    signers.map((id) => {
      const key = network.validatorKeys[id];
      if (key === undefined) throw new RangeError(`no validator ${id} in the test network`);
      return { validator: key.id, signature: sign(Domain.pbftCommit, payload, key.privateKey) };
    }),
  );
}

function entryFor(target: string, version: number, content: Buffer, height: number): TargetEntry {
  return {
    kind: 'target',
    target: target as TargetName,
    source: 'release',
    version,
    sha256: sha256Hex(content),
    size: content.length,
    mediaType: 'text/plain',
    height: height as Height,
    txId: sha256Hex(`release ${target} ${version}`) as string as TxId,
  };
}

/** A header at `height` on top of the genesis block, with the given roots. */
export function headerAt(
  network: TestNetwork,
  height: number,
  timestampMs: number,
  roots: { readonly stateRoot: Hash32Hex; readonly txRoot?: Hash32Hex; readonly txCount?: number },
): BlockHeader {
  const base = genesisBlock(network.genesis).header;
  const header: BlockHeader = {
    ...base,
    height: height as Height,
    prevHash: blockHash(base),
    timestampMs,
    stateRoot: roots.stateRoot,
    txRoot: roots.txRoot ?? base.txRoot,
    view: 0 as View,
  };
  // Headers carry txCount once the ledger has it; keep the fixture valid either way.
  if ('txCount' in base) return { ...header, txCount: roots.txCount ?? 0 } as BlockHeader;
  return header;
}

/** A valid target proof: certified header, state with the entry and other targets, real signatures. */
export function makeTargetProof(options: ProofFixtureOptions = {}): ProofFixture {
  const network = createTestNetwork({ seed: options.seed ?? 'device', validators: options.validators ?? 4 });
  const target = options.target ?? 'default';
  const version = options.version ?? 3;
  const height = options.height ?? 10;
  const content = Buffer.from(options.content ?? `configuration version ${version}\n`);
  const entry = options.absent === true ? null : entryFor(target, version, content, height);
  const changes = [];
  if (entry !== null) changes.push({ key: targetKey(target), entry });
  for (let i = 0; i < (options.otherTargets ?? 50); i++) {
    const other = `other-${i}`;
    changes.push({ key: targetKey(other), entry: entryFor(other, 1 + (i % 7), Buffer.from(other), height) });
  }
  const state = LedgerState.empty().with(changes);
  const header = headerAt(network, height, options.timestampMs ?? 1_700_000_100_000, {
    stateRoot: state.root,
  });
  const n = network.genesis.validators.length;
  const quorum = 2 * Math.floor((n - 1) / 3) + 1;
  const signers = options.signers ?? Array.from({ length: quorum }, (_, i) => i);
  const proof: TargetProof = {
    target: target as TargetName,
    header,
    certificate: certify(network, header, signers),
    entry,
    stateProof: state.proof(targetKey(target)),
  };
  return { network, proof, entry, content };
}

export interface TxProofFixture {
  readonly network: TestNetwork;
  readonly proof: TxProof;
}

/** A valid transaction proof: `count` releases in one certified block, proving the one at `index`. */
export function makeTxProof(
  options: { readonly count?: number; readonly index?: number } = {},
): TxProofFixture {
  const network = createTestNetwork({ seed: 'device-tx' });
  const count = options.count ?? 7;
  const index = options.index ?? 3;
  const admins = network.adminKeys.slice(0, 2);
  const txs: Transaction[] = Array.from({ length: count }, (_, i) =>
    signRelease(
      {
        type: 'release',
        chainId: network.genesis.chainId,
        target: `t${i}` as TargetName,
        version: 1,
        sha256: sha256Hex(`content ${i}`),
        size: 9,
        mediaType: 'text/plain',
      },
      admins,
    ),
  );
  const header = headerAt(network, 5, 1_700_000_100_000, {
    stateRoot: LedgerState.empty().root,
    txRoot: txRoot(txs),
    txCount: count,
  });
  const tx = txs[index];
  if (tx === undefined) throw new RangeError(`index ${index} is outside ${count} transactions`);
  const proof: TxProof = {
    txId: txId(tx),
    tx,
    height: header.height,
    header,
    certificate: certify(network, header, [0, 1, 2]),
    index,
    txCount: count,
    inclusion: txInclusionProof(txs, index),
  };
  return { network, proof };
}
