/**
 * Real chains for the storage tests and the ledger benchmark: blocks built with the ledger's
 * buildBlock from transactions signed with real Ed25519 keys, each certified by 2f+1 real commit
 * signatures. Nothing here is mocked, so a store that passes with these blocks stores real ones.
 */
import type { KeyObject } from 'node:crypto';
import { commitPayload, makeCommitCertificate, quorumSize } from '../consensus/certificate.ts';
import { Domain } from '../crypto/domains.ts';
import { generateKeyPair, type KeyPair, sign } from '../crypto/ed25519.ts';
import { sha256Hex } from '../crypto/hash.ts';
import type { DeviceId, Hash32Hex, Height, TargetName, ValidatorId, View } from '../encoding/brand.ts';
import { assert } from '../errors.ts';
import {
  attestTx,
  blockHash,
  buildBlock,
  genesisBlock,
  LedgerState,
  signAsAdmin,
  signAsDevice,
  signRelease,
} from '../ledger/index.ts';
import { createTestNetwork, type TestNetwork, type TestNetworkOptions } from '../ledger/testing.ts';
import type { Block, BlockHeader, CommitCertificate, Transaction } from '../ledger/types.ts';
import type { AppendInput } from './store.ts';

export class TestChain {
  readonly network: TestNetwork;
  readonly devices = new Map<string, KeyPair>();
  readonly #deviceSeq = new Map<string, number>();
  readonly #versions = new Map<string, number>();
  #parent: BlockHeader;
  #state: LedgerState;
  #timeMs: number;

  constructor(options: TestNetworkOptions = {}) {
    this.network = createTestNetwork(options);
    this.#parent = genesisBlock(this.network.genesis).header;
    this.#state = LedgerState.empty();
    this.#timeMs = this.network.genesis.genesisTimeMs;
  }

  get genesis() {
    return this.network.genesis;
  }

  get state(): LedgerState {
    return this.#state;
  }

  get chainId(): string {
    return this.network.genesis.chainId;
  }

  /** A release of the next version of `target`, approved by the threshold of admins. */
  release(
    target: string,
    content = `config of ${target} #${(this.#versions.get(target) ?? 0) + 1}`,
  ): Transaction {
    const version = this.#nextVersion(target);
    const bytes = Buffer.from(content, 'utf8');
    const admins = this.network.adminKeys.slice(0, this.network.genesis.releaseThreshold);
    return signRelease(
      {
        type: 'release',
        chainId: this.chainId,
        target: target as TargetName,
        version,
        sha256: sha256Hex(bytes),
        size: bytes.byteLength,
        mediaType: 'text/plain',
      },
      admins,
    );
  }

  /** An attestation (unsigned) of the next version of `target`. */
  attest(target: string, content = `attested ${target}`): Transaction {
    const version = this.#nextVersion(target);
    const bytes = Buffer.from(`${content} v${version}`, 'utf8');
    return attestTx(this.chainId, target as TargetName, sha256Hex(bytes) as Hash32Hex, {
      version,
      size: bytes.byteLength,
    });
  }

  /** Enrolls a new device with a freshly generated key. */
  enroll(deviceId: string, target = 'default', group = 'test'): Transaction {
    const keys = generateKeyPair();
    this.devices.set(deviceId, keys);
    const admin = this.network.adminKeys[0];
    assert(admin !== undefined, 'the test network has an admin');
    return signAsAdmin(
      {
        type: 'device-enroll',
        chainId: this.chainId,
        deviceId: deviceId as DeviceId,
        publicKey: keys.publicKeyHex,
        group,
        target: target as TargetName,
      },
      admin.id,
      admin.privateKey,
    );
  }

  revoke(deviceId: string): Transaction {
    const admin = this.network.adminKeys[0];
    assert(admin !== undefined, 'the test network has an admin');
    return signAsAdmin(
      { type: 'device-revoke', chainId: this.chainId, deviceId: deviceId as DeviceId, reason: 'test' },
      admin.id,
      admin.privateKey,
    );
  }

  /** A report by an enrolled device, with its next sequence number. */
  report(deviceId: string, target: string, version: number, sha256: string): Transaction {
    const keys = this.devices.get(deviceId);
    assert(keys !== undefined, `device ${deviceId} was enrolled by this chain`);
    const seq = (this.#deviceSeq.get(deviceId) ?? 0) + 1;
    this.#deviceSeq.set(deviceId, seq);
    return signAsDevice(
      {
        type: 'device-report',
        chainId: this.chainId,
        deviceId: deviceId as DeviceId,
        seq,
        target: target as TargetName,
        version,
        sha256: sha256 as Hash32Hex,
        status: 'applied',
        detail: `applied ${target} v${version}`,
      },
      keys.privateKey,
    );
  }

  /**
   * Builds the next block from `txs` (every one must be valid), certifies it with 2f+1 commit
   * signatures, and advances the chain. Returns what Store.appendBlock takes.
   */
  next(txs: readonly Transaction[], view = 0, options: { skipSignatureChecks?: boolean } = {}): AppendInput {
    this.#timeMs += 1000;
    const proposer = (view % this.network.genesis.validators.length) as ValidatorId;
    // skipSignatureChecks builds a block around forged signatures, as a faulty quorum could.
    const applyOptions = options.skipSignatureChecks === true ? { signatureChecked: () => true } : {};
    const built = buildBlock(
      this.network.genesis,
      this.#parent,
      this.#state,
      txs,
      { view: view as View, proposer, timestampMs: this.#timeMs },
      applyOptions,
    );
    assert(
      built.rejected.length === 0 && built.deferred.length === 0,
      `test transactions are valid: ${built.rejected.map((r) => r.reason).join('; ')}`,
    );
    this.#parent = built.block.header;
    this.#state = built.state;
    return { block: built.block, certificate: this.certify(built.block, view), changes: built.changes };
  }

  /** 2f+1 real commit signatures over the block, as the replicas would produce them. */
  certify(block: Block, view = 0): CommitCertificate {
    const hash = blockHash(block.header);
    const n = this.network.genesis.validators.length;
    const payload = commitPayload(this.chainId, view as View, block.header.height as Height, hash);
    const signatures = this.network.validatorKeys.slice(0, quorumSize(n)).map((key) => ({
      validator: key.id,
      signature: sign(Domain.pbftCommit, payload, key.privateKey as KeyObject),
    }));
    return makeCommitCertificate(block.header.height, view as View, hash, signatures);
  }

  #nextVersion(target: string): number {
    const version = (this.#versions.get(target) ?? 0) + 1;
    this.#versions.set(target, version);
    return version;
  }
}

/**
 * A small chain that touches every transaction kind and every query: releases and attests of two
 * targets, two enrolled devices, reports, a revoke. Returns the appends in order (heights 1..5).
 */
export function scenarioChain(chain: TestChain): AppendInput[] {
  const appends: AppendInput[] = [];
  const r1 = chain.release('default', '1');
  appends.push(chain.next([r1, chain.enroll('dev-1'), chain.enroll('dev-2', 'cams')]));
  appends.push(chain.next([chain.attest('default'), chain.release('cams', 'camera config')]));
  const body1 = r1.body;
  assert(body1.type === 'release', 'r1 is a release');
  appends.push(chain.next([chain.report('dev-1', 'default', 1, body1.sha256)]));
  const r3 = chain.release('default', '3');
  assert(r3.body.type === 'release', 'r3 is a release');
  appends.push(chain.next([r3, chain.report('dev-1', 'default', 3, r3.body.sha256)], 1));
  appends.push(chain.next([chain.revoke('dev-2'), chain.report('dev-1', 'default', 3, r3.body.sha256)], 1));
  return appends;
}

/**
 * One valid transaction of a kind (0..5) chosen by a property test: releases, attests, enrollments
 * and reports; `enrolled` collects the devices enrolled so far.
 */
export function randomTx(chain: TestChain, kind: number, enrolled: string[]): Transaction {
  const target = `t${kind % 3}`;
  if (kind === 3) {
    const id = `d${enrolled.length}`;
    enrolled.push(id);
    return chain.enroll(id, target);
  }
  if (kind === 4 && enrolled.length > 0) {
    const id = enrolled[enrolled.length - 1]!;
    return chain.report(id, 'default', 1, sha256Hex(id));
  }
  return kind % 2 === 0 ? chain.release(target) : chain.attest(target);
}
