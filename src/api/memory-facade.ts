/**
 * A single-process NodeFacade over the real ledger (genesis, buildBlock, LedgerState, signed
 * attest transactions), with no consensus and no network: each accepted transaction is committed
 * at once in its own block. The API tests run the real server against it; it also documents, in
 * the smallest form, what the node's facade must do. Not for production: it has no replication.
 */
import type { KeyObject } from 'node:crypto';
import { Gauge, Registry } from 'prom-client';
import { commitPayload, makeCommitCertificate, quorumSize } from '../consensus/certificate.ts';
import { targetHistoryPageMax } from '../constants.ts';
import { Domain } from '../crypto/domains.ts';
import { generateKeyPair, type KeyPair, sign } from '../crypto/ed25519.ts';
import { sha256Hex } from '../crypto/hash.ts';
import type { TargetProof, TxProof } from '../device/contract.ts';
import type {
  BlockHash,
  DeviceId,
  Hash32Hex,
  Height,
  PublicKeyHex,
  TargetName,
  TxId,
  ValidatorId,
  View,
} from '../encoding/brand.ts';
import { assert } from '../errors.ts';
import {
  attestTx,
  blockHash,
  buildBlock,
  type CommitCertificate,
  checkTransaction,
  type DeviceEntry,
  type Genesis,
  genesisBlock,
  LedgerState,
  parseGenesis,
  type RolloutEntry,
  type TargetEntry,
  type Transaction,
  targetKey,
  txId,
  txInclusionProof,
} from '../ledger/index.ts';
import type {
  BlockEvent,
  BlockRecord,
  ContentCopy,
  DeviceReportView,
  NodeFacade,
  NodeStatus,
  Readiness,
  SubmitOptions,
  SubmitResult,
  TxRecord,
  ValidateOptions,
  ValidateResult,
} from './facade.ts';
import { newestRollouts, rolloutProofOf } from './rollouts.ts';

export interface MemoryNetwork {
  readonly genesis: Genesis;
  readonly validatorKeys: readonly KeyPair[];
  readonly adminKeys: readonly { readonly id: string; readonly key: KeyPair }[];
}

/** A valid 4-validator genesis with fresh keys (demo policy: compat API allowed). */
export function memoryNetwork(
  basePort = 5000,
  genesisTimeMs = 1_700_000_000_000,
  allowUnauthenticatedCompat = true,
): MemoryNetwork {
  const validatorKeys = Array.from({ length: 4 }, () => generateKeyPair());
  const adminKeys = ['admin-1', 'admin-2', 'admin-3'].map((id) => ({ id, key: generateKeyPair() }));
  const genesis = parseGenesis({
    chainId: 'configchain-test',
    genesisTimeMs,
    validators: validatorKeys.map((k, i) => ({
      id: i,
      publicKey: k.publicKeyHex,
      peerAddress: `127.0.0.1:${basePort + 1001 + i}`,
      apiUrl: `http://127.0.0.1:${basePort + 1 + i}`,
    })),
    admins: adminKeys.map((a) => ({ id: a.id, publicKey: a.key.publicKeyHex as PublicKeyHex })),
    releaseThreshold: 2,
    configSources: [
      { id: 'A', url: `http://127.0.0.1:${basePort + 101}`, role: 'device-facing' },
      { id: 'B', url: `http://127.0.0.1:${basePort + 102}`, role: 'validator-facing' },
    ],
    policy: {
      heartbeatIntervalMs: 5000,
      headerAgeMsMax: 60_000,
      inlineContentBytesMax: 16 * 1024,
      contentCopyBytesMax: 1024 * 1024,
      artifactBytesMax: 16 * 1024 * 1024,
      allowUnauthenticatedCompat,
      clockSkewMsMax: 10_000,
    },
  });
  return { genesis, validatorKeys, adminKeys };
}

interface Offer {
  readonly version: number;
  readonly size: number;
}

export class MemoryFacade implements NodeFacade {
  readonly genesis: Genesis;
  readonly id: ValidatorId;
  readonly metrics: Registry;
  /** Set by tests to make validateHash answer as a stuck or cut-off node would. */
  behaviour: 'normal' | 'timeout' | 'unavailable' | 'throw' = 'normal';
  ready_: Readiness = { ready: true, reasons: [] };
  /** The first 2f+1 validators' keys: every block this facade commits carries their real certificate. */
  private readonly quorumKeys: readonly KeyObject[];
  private readonly records: BlockRecord[] = [];
  private readonly byHash = new Map<string, BlockRecord>();
  private readonly txs = new Map<string, TxRecord>();
  private readonly history = new Map<string, TargetEntry[]>();
  /** What the simulated validator-facing config server B offers: target -> sha256 -> offer. */
  private readonly offers = new Map<string, Map<string, Offer>>();
  private state = LedgerState.empty();
  /** The state after each block, by height: a proof pairs a header with its own state. */
  private readonly states: LedgerState[] = [];
  private readonly reports: (DeviceReportView & { readonly target: string })[] = [];
  private readonly copies = new Map<string, ContentCopy>();
  private readonly blockListeners = new Set<(event: BlockEvent) => void>();
  private clockMs: number;
  private readonly heightGauge: Gauge;

  constructor(network: MemoryNetwork, id = 0) {
    this.genesis = network.genesis;
    this.id = id as ValidatorId;
    assert(network.validatorKeys[id] !== undefined, 'the facade runs as a validator of the network');
    this.quorumKeys = network.validatorKeys
      .slice(0, quorumSize(network.genesis.validators.length))
      .map((k) => k.privateKey);
    this.clockMs = network.genesis.genesisTimeMs;
    this.metrics = new Registry();
    this.heightGauge = new Gauge({
      name: 'configchain_height',
      help: 'committed height',
      registers: [this.metrics],
    });
    this.append(genesisBlock(this.genesis), null);
  }

  /** Makes config server B offer content for a target (as the node's external validity sees it). */
  offer(target: string, version: number, sha256: string, size: number): void {
    let map = this.offers.get(target);
    if (map === undefined) {
      map = new Map();
      this.offers.set(target, map);
    }
    map.set(sha256, { version, size });
  }

  status(): NodeStatus {
    const tip = this.lastRecord();
    return {
      id: this.id,
      chainId: this.genesis.chainId,
      view: 0 as View,
      height: tip.block.header.height,
      tipHash: tip.hash,
      primary: 0 as ValidatorId,
      viewChanging: false,
      pendingTxs: 0,
      uptimeMs: 1,
      peers: this.genesis.validators
        .filter((v) => v.id !== this.id)
        .map((v) => ({
          id: v.id,
          apiUrl: v.apiUrl,
          peerAddress: v.peerAddress,
          connected: v.id !== 3,
          lastMessageAgoMs: v.id === 3 ? null : 5,
          view: v.id === 3 ? null : (0 as View),
          height: v.id === 3 ? null : tip.block.header.height,
        })),
    };
  }

  ready(): Readiness {
    return this.ready_;
  }

  tip(): BlockRecord {
    return this.lastRecord();
  }

  blocks(from: Height, limit: number): readonly BlockRecord[] {
    return this.records.slice(from, from + limit);
  }

  blockByHeight(height: Height): BlockRecord | undefined {
    return this.records[height];
  }

  blockByHash(hash: BlockHash): BlockRecord | undefined {
    return this.byHash.get(hash);
  }

  tx(id: TxId): TxRecord | undefined {
    return this.txs.get(id);
  }

  currentTarget(target: TargetName): TargetEntry | undefined {
    return this.state.target(target);
  }

  targetHistory(target: TargetName, limit: number): readonly TargetEntry[] {
    const list = this.history.get(target) ?? [];
    return list.slice(-Math.min(limit, targetHistoryPageMax)).reverse();
  }

  async validateHash(target: TargetName, sha256: Hash32Hex, _opts: ValidateOptions): Promise<ValidateResult> {
    if (this.behaviour === 'throw') throw new Error('simulated internal failure');
    if (this.behaviour === 'timeout') return { outcome: 'timeout', reason: 'simulated: no quorum' };
    if (this.behaviour === 'unavailable') {
      return { outcome: 'unavailable', reason: 'simulated: config server B unreachable' };
    }
    const current = this.state.target(target);
    if (current?.sha256 === sha256) return { outcome: 'current', entry: current };
    const offer = this.offers.get(target)?.get(sha256);
    if (offer === undefined) return { outcome: 'rejected', reason: 'config server B does not offer it' };
    if (current !== undefined && offer.version <= current.version) {
      return { outcome: 'rejected', reason: `version ${offer.version} is not newer than ${current.version}` };
    }
    const tx = attestTx(this.genesis.chainId, target, sha256, offer);
    const result = this.commit(tx);
    if (result.status !== 'committed') return { outcome: 'rejected', reason: 'the attest was refused' };
    return { outcome: 'added', txId: result.txId, height: result.height, blockHash: result.blockHash };
  }

  async submitTx(tx: Transaction, _opts: SubmitOptions): Promise<SubmitResult> {
    return this.commit(tx);
  }

  /** Moves the facade's clock (block timestamps) forward, as time passing would. */
  advanceClock(ms: number): void {
    this.clockMs += ms;
  }

  targetProof(target: TargetName): TargetProof | undefined {
    const tip = this.lastRecord();
    const state = this.states[tip.block.header.height];
    if (tip.certificate === null || state === undefined) return undefined;
    return {
      target,
      header: tip.block.header,
      certificate: tip.certificate,
      entry: state.target(target) ?? null,
      stateProof: state.proof(targetKey(target)),
      rollout: rolloutProofOf(state, target),
    };
  }

  rollout(rolloutId: string): RolloutEntry | undefined {
    return this.state.rollout(rolloutId);
  }

  rollouts(limit: number): readonly RolloutEntry[] {
    return newestRollouts(this.state.entries(), limit);
  }

  txProof(id: TxId): TxProof | undefined {
    const record = this.txs.get(id);
    if (record === undefined) return undefined;
    const block = this.records[record.height];
    assert(
      block !== undefined && block.certificate !== null,
      'a committed transaction is in a certified block',
    );
    return {
      txId: id,
      tx: record.tx,
      height: record.height,
      header: block.block.header,
      certificate: block.certificate,
      index: record.index,
      txCount: block.block.txs.length,
      inclusion: txInclusionProof(block.block.txs, record.index),
    };
  }

  device(id: DeviceId): DeviceEntry | undefined {
    return this.state.device(id);
  }

  devices(afterId: string | undefined, limit: number): readonly DeviceEntry[] {
    const all: DeviceEntry[] = [];
    for (const [, entry] of this.state.entries()) if (entry.kind === 'device') all.push(entry);
    all.sort((a, b) => (a.deviceId < b.deviceId ? -1 : a.deviceId > b.deviceId ? 1 : 0));
    return all.filter((d) => afterId === undefined || d.deviceId > afterId).slice(0, limit);
  }

  targetReports(target: TargetName, limit: number): readonly DeviceReportView[] {
    const out: DeviceReportView[] = [];
    for (let i = this.reports.length - 1; i >= 0 && out.length < limit; i--) {
      const report = this.reports[i];
      if (report === undefined || report.target !== target) continue;
      const { target: _target, ...view } = report;
      out.push(view);
    }
    return out;
  }

  content(sha256: Hash32Hex): ContentCopy | undefined {
    return this.copies.get(sha256);
  }

  /** Keeps a copy of content, as the node does for committed releases. */
  putContent(bytes: Uint8Array, mediaType = 'application/octet-stream'): Hash32Hex {
    const sha256 = sha256Hex(bytes);
    this.copies.set(sha256, { sha256, bytes, mediaType });
    return sha256;
  }

  onBlock(listener: (event: BlockEvent) => void): () => void {
    this.blockListeners.add(listener);
    return () => this.blockListeners.delete(listener);
  }

  private commit(tx: unknown): SubmitResult {
    const check = checkTransaction(this.genesis, this.state, tx);
    if (!check.ok) {
      return {
        status: 'rejected',
        txId: (check.txId ?? '0'.repeat(64)) as TxId,
        code: check.error.code,
        reason: check.error.message,
      };
    }
    const parent = this.lastRecord().block.header;
    this.clockMs += 1000;
    const built = buildBlock(this.genesis, parent, this.state, [tx], {
      view: 0 as View,
      proposer: 0 as ValidatorId,
      timestampMs: this.clockMs,
    });
    assert(built.block.txs.length === 1, 'a transaction that checked out is included');
    this.state = built.state;
    const record = this.append(
      built.block,
      this.certify(built.block.header.height, blockHash(built.block.header)),
    );
    return {
      status: 'committed',
      txId: check.txId,
      height: built.block.header.height,
      blockHash: record.hash,
    };
  }

  /** A real commit certificate, so readers that verify (devices, the operator's commands) accept it. */
  private certify(height: Height, hash: BlockHash): CommitCertificate {
    const view = 0 as View;
    const payload = commitPayload(this.genesis.chainId, view, height, hash);
    return makeCommitCertificate(
      height,
      view,
      hash,
      this.quorumKeys.map((key, i) => ({
        validator: i as ValidatorId,
        signature: sign(Domain.pbftCommit, payload, key),
      })),
    );
  }

  private append(block: BlockRecord['block'], certificate: BlockRecord['certificate']): BlockRecord {
    const hash = blockHash(block.header);
    const record: BlockRecord = { hash, block, certificate };
    assert(block.header.height === this.records.length, 'blocks are appended in height order');
    this.records.push(record);
    this.byHash.set(hash, record);
    block.txs.forEach((tx, index) => {
      const id = txId(tx);
      this.txs.set(id, { txId: id, tx, height: block.header.height, blockHash: hash, index });
    });
    for (const change of this.changedTargets(block)) {
      const list = this.history.get(change.target) ?? [];
      list.push(change);
      this.history.set(change.target, list);
    }
    this.states.push(this.state);
    for (const tx of block.txs) {
      const body = tx.body;
      if (body.type === 'release' && body.content !== undefined) {
        this.putContent(Buffer.from(body.content, 'base64'), body.mediaType);
      }
      if (body.type === 'device-report') {
        this.reports.push({
          deviceId: body.deviceId,
          seq: body.seq,
          target: body.target,
          version: body.version,
          sha256: body.sha256,
          status: body.status,
          detail: body.detail,
          height: block.header.height,
          txId: txId(tx),
        });
      }
    }
    this.heightGauge.set(block.header.height);
    const event: BlockEvent = {
      height: block.header.height,
      hash,
      timestampMs: block.header.timestampMs,
      txCount: block.txs.length,
      txIds: block.txs.map((tx) => txId(tx)),
    };
    for (const listener of [...this.blockListeners]) listener(event);
    return record;
  }

  private changedTargets(block: BlockRecord['block']): TargetEntry[] {
    const out: TargetEntry[] = [];
    for (const tx of block.txs) {
      if (tx.body.type !== 'attest' && tx.body.type !== 'release') continue;
      const entry = this.state.target(tx.body.target);
      if (entry !== undefined && entry.txId === txId(tx)) out.push(entry);
    }
    return out;
  }

  private lastRecord(): BlockRecord {
    const last = this.records[this.records.length - 1];
    assert(last !== undefined, 'the chain always has its genesis block');
    return last;
  }
}
