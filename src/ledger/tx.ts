/**
 * Transactions: ids, schemas, signer rules, state rules and the signing helpers used by tests and
 * the CLI. Every kind is refused a second time by the state rules (versions and report sequence
 * numbers only grow, a device enrolls once and is revoked once), so a replayed transaction never
 * applies twice.
 */
import type { KeyObject } from 'node:crypto';
import {
  adminIdLengthMax,
  adminsMax,
  chainIdLengthMax,
  deviceGroupLengthMax,
  deviceIdLengthMax,
  inlineContentBytesMax,
  mediaTypeLengthMax,
  publicKeyCacheMax,
  reportDetailLengthMax,
  revokeReasonLengthMax,
  rolloutIdLengthMax,
  rolloutWavesMax,
  targetNameLengthMax,
  txBytesMax,
  validatorsMax,
  versionMax,
} from '../constants.ts';
import { Domain, type DomainTag } from '../crypto/domains.ts';
import { publicKeyFromHex, sign, verify } from '../crypto/ed25519.ts';
import { sha256Hex } from '../crypto/hash.ts';
import type {
  DeviceId,
  Hash32Hex,
  Height,
  PublicKeyHex,
  SignatureHex,
  TargetName,
  TxId,
  ValidatorId,
} from '../encoding/brand.ts';
import { fromBase64 } from '../encoding/bytes.ts';
import { canonicalBytes } from '../encoding/canonical.ts';
import { assert } from '../errors.ts';
import { LedgerError, type LedgerRule } from './errors.ts';
import {
  changeMembership,
  controlRollout,
  countReport,
  rolloutActive,
  rolloutCounting,
  startRollout,
  waveOf,
  wavesValid,
} from './rollout.ts';
import {
  HEX32_PATTERN,
  HEX32_TEXT,
  type JsonObject,
  NAME_PATTERN,
  NAME_TEXT,
  SchemaChecker,
} from './schema.ts';
import type { LedgerState } from './state.ts';
import {
  type Approval,
  type AttestBody,
  type DeviceEnrollBody,
  type DeviceEntry,
  type DeviceReportBody,
  type DeviceRevokeBody,
  deviceKey,
  type Genesis,
  type HeartbeatBody,
  type HeartbeatEntry,
  heartbeatKey,
  type ReleaseBody,
  type RolloutBody,
  type RolloutControlBody,
  type RolloutEntry,
  type RolloutOutcome,
  rolloutKey,
  type StateChange,
  type StateKey,
  type TargetEntry,
  type TargetRolloutEntry,
  type Transaction,
  type TxBody,
  targetKey,
  targetRolloutKey,
  type ValidatorInfo,
} from './types.ts';

/** Rollouts stage a group target: devices of group G follow target "group:G". */
const GROUP_PREFIX = 'group:';

/** Options for checking and applying transactions. */
export interface TxCheckOptions {
  /**
   * The node verifies signatures once per transaction on a thread pool and can pass what it
   * learned here: when this returns true for a transaction's id, the Ed25519 checks are skipped
   * (the signer rules, such as distinct known admins and the threshold, are still enforced).
   * It MUST return true only after a real verification of every signature of exactly that
   * transaction (same id) against the keys named by its signers; anything else lets forged
   * transactions in. Without it, every signature is verified here.
   */
  readonly signatureChecked?: (txId: TxId) => boolean;
  /**
   * A cache of parseTransactionWithId: the node parses and canonicalizes each transaction once and
   * hands the result to every later check. It MUST return what parseTransactionWithId(json) would
   * (or throw as it would); without it, each call parses and canonicalizes again.
   */
  readonly parse?: (json: unknown) => ParsedTransaction;
}

export type TxCheckResult =
  | {
      readonly ok: true;
      readonly txId: TxId;
      /** The entry the transaction is about (a target, device, heartbeat or rollout): changes[0]. */
      readonly change: StateChange;
      /** Every entry it writes, in order; more than one when it also moves a rollout's counts. */
      readonly changes: readonly StateChange[];
    }
  | { readonly ok: false; readonly txId: TxId | null; readonly error: LedgerError };

const schema: SchemaChecker = new SchemaChecker(
  'TX_INVALID',
  'schema',
  'fix the transaction and submit it again',
);

const SIGNATURE_PATTERN = /^[0-9a-f]{128}$/;
const SIGNER_LENGTH_MAX = Math.max(adminIdLengthMax, deviceIdLengthMax);

/** SHA-256 of the canonical transaction (body and signatures). */
export function txId(tx: Transaction): TxId {
  return sha256Hex(canonicalBytes(tx)) as string as TxId;
}

/** The RFC 9162 leaf data of a transaction in a block's transaction tree. */
export function txLeafData(tx: Transaction): Uint8Array {
  return canonicalBytes(tx);
}

/** The signing domain of a transaction kind. */
export function txDomain(body: TxBody): DomainTag {
  return body.type === 'release' || body.type === 'rollout' ? Domain.releaseApproval : Domain.transaction;
}

/**
 * Checks the shape of an untrusted transaction: exact field sets, types, ranges and limits. Does
 * not look at signatures or state. Throws LedgerError TX_INVALID (rule "schema") naming the field.
 */
export function parseTransaction(json: unknown): Transaction {
  return parseTransactionWithId(json).tx;
}

/** A parsed transaction with its canonical bytes (its RFC 9162 leaf data) and its id. */
export interface ParsedTransaction {
  readonly tx: Transaction;
  readonly bytes: Uint8Array;
  readonly id: TxId;
}

/** parseTransaction() that also returns the canonical bytes and id, computed once. */
export function parseTransactionWithId(json: unknown): ParsedTransaction {
  const t = schema.object(json, 'tx', ['body', 'signatures']);
  const body = parseBody(t.body);
  // An attest carries no signature (see applyAttest), unless it is of the legacy form that names its
  // submitter; every other kind carries at least one.
  const [least, most] =
    body.type === 'attest' && body.submitter === undefined
      ? [0, 0]
      : body.type === 'release' || body.type === 'rollout'
        ? [1, adminsMax]
        : [1, 1];
  const signatures = schema.array(t.signatures, 'tx.signatures', least, most).map((item, index) => {
    const field = `tx.signatures[${index}]`;
    const s = schema.object(item, field, ['signer', 'signature']);
    return {
      signer: schema.string(s.signer, `${field}.signer`, 1, SIGNER_LENGTH_MAX),
      signature: schema.string(
        s.signature,
        `${field}.signature`,
        128,
        128,
        SIGNATURE_PATTERN,
        '128 lower-case hex characters (64 bytes)',
      ) as SignatureHex,
    } satisfies Approval;
  });
  const tx: Transaction = { body, signatures };
  const bytes = canonicalBytes(tx);
  if (bytes.byteLength > txBytesMax) {
    throw new LedgerError('TX_INVALID', {
      reason: `the transaction is ${bytes.byteLength} bytes, more than the limit of ${txBytesMax}; move content to a config server`,
      rule: 'too-large',
    });
  }
  return { tx, bytes, id: sha256Hex(bytes) as string as TxId };
}

function parseBody(value: unknown): TxBody {
  if (typeof value !== 'object' || value === null || Array.isArray(value))
    schema.fail('tx.body', 'must be an object');
  const type = schema.oneOf((value as JsonObject).type, 'tx.body.type', [
    'release',
    'attest',
    'device-enroll',
    'device-revoke',
    'device-report',
    'heartbeat',
    'rollout',
    'rollout-control',
  ] as const);
  switch (type) {
    case 'release':
      return parseRelease(value);
    case 'attest':
      return parseAttest(value);
    case 'device-enroll':
      return parseEnroll(value);
    case 'device-revoke':
      return parseRevoke(value);
    case 'device-report':
      return parseReport(value);
    case 'heartbeat':
      return parseHeartbeat(value);
    case 'rollout':
      return parseRollout(value);
    case 'rollout-control':
      return parseRolloutControl(value);
  }
}

function common(b: JsonObject): { chainId: string } {
  return { chainId: schema.string(b.chainId, 'tx.body.chainId', 1, chainIdLengthMax) };
}

const target = (v: unknown, f = 'tx.body.target') =>
  schema.string(v, f, 1, targetNameLengthMax, NAME_PATTERN, NAME_TEXT) as TargetName;
const version = (v: unknown, f = 'tx.body.version') => schema.integer(v, f, 1, versionMax);
const hash32 = (v: unknown, f = 'tx.body.sha256') =>
  schema.string(v, f, 64, 64, HEX32_PATTERN, HEX32_TEXT) as Hash32Hex;
const size = (v: unknown) => schema.integer(v, 'tx.body.size', 0, Number.MAX_SAFE_INTEGER);
const deviceId = (v: unknown) =>
  schema.string(v, 'tx.body.deviceId', 1, deviceIdLengthMax, NAME_PATTERN, NAME_TEXT) as DeviceId;

const artifact = (b: JsonObject) => ({
  target: target(b.target),
  version: version(b.version),
  sha256: hash32(b.sha256),
  size: size(b.size),
});

function parseRelease(value: unknown): ReleaseBody {
  const b = schema.object(
    value,
    'tx.body',
    ['type', 'chainId', 'target', 'version', 'sha256', 'size', 'mediaType'],
    ['content'],
  );
  const body: ReleaseBody = {
    type: 'release',
    ...common(b),
    ...artifact(b),
    mediaType: schema.string(
      b.mediaType,
      'tx.body.mediaType',
      1,
      mediaTypeLengthMax,
      /^[\x21-\x7e]+$/,
      'a media type',
    ),
  };
  if (b.content === undefined) return body;
  // Base64 is 4 characters per 3 bytes: refuse long text before decoding it.
  const content = schema.string(b.content, 'tx.body.content', 0, Math.ceil(inlineContentBytesMax / 3) * 4);
  try {
    fromBase64(content);
  } catch {
    schema.fail('tx.body.content', 'must be padded base64');
  }
  return { ...body, content };
}

function parseAttest(value: unknown): AttestBody {
  const b = schema.object(
    value,
    'tx.body',
    ['type', 'chainId', 'target', 'version', 'sha256', 'size'],
    ['submitter'],
  );
  const body: AttestBody = { type: 'attest', ...common(b), ...artifact(b) };
  if (b.submitter === undefined) return body;
  return {
    ...body,
    submitter: schema.integer(b.submitter, 'tx.body.submitter', 0, validatorsMax - 1) as ValidatorId,
  };
}

function parseEnroll(value: unknown): DeviceEnrollBody {
  const b = schema.object(value, 'tx.body', ['type', 'chainId', 'deviceId', 'publicKey', 'group', 'target']);
  return {
    type: 'device-enroll',
    ...common(b),
    deviceId: deviceId(b.deviceId),
    publicKey: hash32(b.publicKey, 'tx.body.publicKey') as string as PublicKeyHex,
    group: schema.string(b.group, 'tx.body.group', 0, deviceGroupLengthMax, /^[A-Za-z0-9._:@-]*$/, NAME_TEXT),
    target: target(b.target),
  };
}

function parseRevoke(value: unknown): DeviceRevokeBody {
  const b = schema.object(value, 'tx.body', ['type', 'chainId', 'deviceId', 'reason']);
  return {
    type: 'device-revoke',
    ...common(b),
    deviceId: deviceId(b.deviceId),
    reason: schema.string(b.reason, 'tx.body.reason', 0, revokeReasonLengthMax),
  };
}

function parseReport(value: unknown): DeviceReportBody {
  const b = schema.object(value, 'tx.body', [
    'type',
    'chainId',
    'deviceId',
    'seq',
    'target',
    'version',
    'sha256',
    'status',
    'detail',
  ]);
  return {
    type: 'device-report',
    ...common(b),
    deviceId: deviceId(b.deviceId),
    seq: schema.integer(b.seq, 'tx.body.seq', 1, Number.MAX_SAFE_INTEGER),
    target: target(b.target),
    // A device that never applied anything reports version 0.
    version: schema.integer(b.version, 'tx.body.version', 0, versionMax),
    sha256: hash32(b.sha256),
    status: schema.oneOf(b.status, 'tx.body.status', ['applied', 'failed', 'mismatch'] as const),
    detail: schema.string(b.detail, 'tx.body.detail', 0, reportDetailLengthMax),
  };
}

function parseHeartbeat(value: unknown): HeartbeatBody {
  const b = schema.object(value, 'tx.body', ['type', 'chainId', 'submitter', 'timestampMs']);
  return {
    type: 'heartbeat',
    ...common(b),
    submitter: schema.integer(b.submitter, 'tx.body.submitter', 0, validatorsMax - 1) as ValidatorId,
    timestampMs: schema.integer(b.timestampMs, 'tx.body.timestampMs', 0, Number.MAX_SAFE_INTEGER),
  };
}

const rolloutId = (v: unknown) =>
  schema.string(v, 'tx.body.rolloutId', 1, rolloutIdLengthMax, NAME_PATTERN, NAME_TEXT);

function parseRollout(value: unknown): RolloutBody {
  const b = schema.object(value, 'tx.body', [
    'type',
    'chainId',
    'rolloutId',
    'target',
    'version',
    'waves',
    'maxFailuresPercent',
  ]);
  const name = target(b.target);
  if (!name.startsWith(GROUP_PREFIX) || name.length === GROUP_PREFIX.length) {
    schema.fail(
      'tx.body.target',
      `must be a group target "${GROUP_PREFIX}<group>", got ${JSON.stringify(name)}`,
    );
  }
  const waves = schema
    .array(b.waves, 'tx.body.waves', 1, rolloutWavesMax)
    .map((w, i) => schema.integer(w, `tx.body.waves[${i}]`, 1, 100));
  if (!wavesValid(waves)) {
    schema.fail(
      'tx.body.waves',
      `must be strictly ascending percentages ending at 100, e.g. [10, 50, 100], got ${JSON.stringify(waves)}`,
    );
  }
  return {
    type: 'rollout',
    ...common(b),
    rolloutId: rolloutId(b.rolloutId),
    target: name,
    version: version(b.version),
    waves,
    maxFailuresPercent: schema.integer(b.maxFailuresPercent, 'tx.body.maxFailuresPercent', 0, 100),
  };
}

function parseRolloutControl(value: unknown): RolloutControlBody {
  const b = schema.object(value, 'tx.body', ['type', 'chainId', 'rolloutId', 'action', 'seq']);
  return {
    type: 'rollout-control',
    ...common(b),
    rolloutId: rolloutId(b.rolloutId),
    action: schema.oneOf(b.action, 'tx.body.action', ['abort', 'resume', 'rollback'] as const),
    seq: schema.integer(b.seq, 'tx.body.seq', 1, Number.MAX_SAFE_INTEGER),
  };
}

/**
 * Checks an untrusted transaction against genesis and a state without changing anything: schema,
 * chain id, signer rule and state rule. Never throws for a bad transaction; the result says why.
 * The returned change is computed at height 0 (the height is not known yet); only applyBlock and
 * buildBlock produce the entries that are committed.
 */
export function checkTransaction(
  genesis: Genesis,
  state: LedgerState,
  tx: unknown,
  opts: TxCheckOptions = {},
): TxCheckResult {
  let id: TxId | null = null;
  try {
    const parsed = (opts.parse ?? parseTransactionWithId)(tx);
    id = parsed.id;
    const changes = evaluateTransaction(genesis, state, parsed.tx, id, 0 as Height, opts);
    const change = changes[0];
    assert(change !== undefined, 'a valid transaction writes at least one entry');
    return { ok: true, txId: id, change, changes };
  } catch (error) {
    if (error instanceof LedgerError) return { ok: false, txId: id, error };
    throw error;
  }
}

/**
 * The state changes a well-formed transaction makes at this height (its own entry first, then any
 * rollout it moves; never two changes of one key), or a LedgerError TX_INVALID. The caller has
 * run parseTransaction and computed the id.
 */
export function evaluateTransaction(
  genesis: Genesis,
  state: LedgerState,
  tx: Transaction,
  id: TxId,
  height: Height,
  opts: TxCheckOptions,
): readonly StateChange[] {
  const { body } = tx;
  if (body.chainId !== genesis.chainId) {
    reject(
      'chain-id',
      `the transaction is for chain ${JSON.stringify(body.chainId)}, this is ${JSON.stringify(genesis.chainId)}`,
    );
  }
  const verifySignatures = opts.signatureChecked?.(id) !== true;
  switch (body.type) {
    case 'release':
      return [applyRelease(genesis, state, tx, body, id, height, verifySignatures)];
    case 'attest':
      return [applyAttest(genesis, state, tx, body, id, height, verifySignatures)];
    case 'device-enroll':
      return applyEnroll(genesis, state, tx, body, height, verifySignatures);
    case 'device-revoke':
      return applyRevoke(genesis, state, tx, body, verifySignatures);
    case 'device-report':
      return applyReport(state, tx, body, height, verifySignatures);
    case 'heartbeat':
      return [applyHeartbeat(genesis, state, tx, body, id, height, verifySignatures)];
    case 'rollout':
      return applyRollout(genesis, state, tx, body, id, height, verifySignatures);
    case 'rollout-control':
      return [applyRolloutControl(genesis, state, tx, body, verifySignatures)];
  }
}

/**
 * Every state key whose entry decides whether this transaction is valid on `state`: when a block
 * changes none of them, a transaction that checked out before still does (and one that failed on
 * a state rule still fails), so a node re-checks a pending transaction only when a block changed
 * one of these keys. Device reports, enrollments and revocations also write a rollout's counts,
 * but those never make them invalid, so the rollout is not among their keys.
 */
export function txReadKeys(state: LedgerState, tx: Transaction): StateKey[] {
  const body = tx.body;
  switch (body.type) {
    case 'release':
    case 'attest':
      return [targetKey(body.target)];
    case 'device-enroll':
    case 'device-revoke':
    case 'device-report':
      return [deviceKey(body.deviceId)];
    case 'heartbeat':
      return [heartbeatKey(body.submitter)];
    case 'rollout': {
      const keys = [rolloutKey(body.rolloutId), targetKey(body.target), targetRolloutKey(body.target)];
      const current = state.targetRollout(body.target);
      if (current !== undefined) keys.push(rolloutKey(current.rolloutId));
      return keys;
    }
    case 'rollout-control': {
      const keys = [rolloutKey(body.rolloutId)];
      const rollout = state.rollout(body.rolloutId);
      if (rollout !== undefined) keys.push(targetRolloutKey(rollout.target));
      return keys;
    }
  }
}

function reject(rule: LedgerRule, reason: string): never {
  throw new LedgerError('TX_INVALID', { reason, rule });
}

function applyRelease(
  genesis: Genesis,
  state: LedgerState,
  tx: Transaction,
  body: ReleaseBody,
  id: TxId,
  height: Height,
  verifySignatures: boolean,
): StateChange {
  requireArtifactSize(genesis, body.size);
  if (body.content !== undefined) {
    const content = fromBase64(body.content);
    if (content.byteLength > genesis.policy.inlineContentBytesMax) {
      reject(
        'too-large',
        `inline content is ${content.byteLength} bytes, more than policy.inlineContentBytesMax (${genesis.policy.inlineContentBytesMax}); publish it to the config servers instead`,
      );
    }
    if (content.byteLength !== body.size || sha256Hex(content) !== body.sha256) {
      reject('content-mismatch', 'the inline content does not match the size and sha256 of the release');
    }
  }
  requireApprovals(genesis, tx, body, verifySignatures);
  return targetChange(state, body, id, height);
}

/** The m-of-n rule of releases and rollouts: releaseThreshold distinct admins, in Domain.releaseApproval. */
function requireApprovals(
  genesis: Genesis,
  tx: Transaction,
  body: ReleaseBody | RolloutBody,
  verifySignatures: boolean,
): void {
  const approvers = new Set<string>();
  for (const approval of tx.signatures) {
    const admin = genesis.admins.find((a) => a.id === approval.signer);
    // Signatures by unknown signers count for nothing; they cannot be checked without a key.
    if (admin === undefined) continue;
    if (
      verifySignatures &&
      !verify(Domain.releaseApproval, body, approval.signature, cachedKey(admin.publicKey))
    ) {
      reject(
        'bad-signature',
        `the approval by admin ${admin.id} does not verify; sign the ${body.type} body again`,
      );
    }
    approvers.add(admin.id);
  }
  if (approvers.size < genesis.releaseThreshold) {
    reject(
      'threshold-not-met',
      `the ${body.type} has valid approvals from ${approvers.size} distinct admin(s), it needs ${genesis.releaseThreshold}; collect more approvals`,
    );
  }
}

function applyAttest(
  genesis: Genesis,
  state: LedgerState,
  tx: Transaction,
  body: AttestBody,
  id: TxId,
  height: Height,
  verifySignatures: boolean,
): StateChange {
  // No signer rule: an attest is only as good as the check each validator makes against its own
  // config source before voting for the block (DESIGN.md, flow 1), and the block's commit
  // certificate is the record that 2f+1 of them did. A validator's signature would add nothing a
  // faulty validator could not also sign, so attests carry none (the schema allows none). The legacy
  // form, recorded before, names its submitter and must carry that validator's valid signature.
  if (body.submitter !== undefined) {
    requireValidatorSigned(genesis, tx, body.submitter, body, verifySignatures);
  }
  requireArtifactSize(genesis, body.size);
  return targetChange(state, body, id, height);
}

function applyEnroll(
  genesis: Genesis,
  state: LedgerState,
  tx: Transaction,
  body: DeviceEnrollBody,
  height: Height,
  verifySignatures: boolean,
): StateChange[] {
  requireAdminSignature(genesis, tx, body, verifySignatures);
  const existing = state.device(body.deviceId);
  if (existing !== undefined) {
    const why =
      existing.status === 'revoked'
        ? 'was revoked; a revoked id is never reused, enroll the device under a new id'
        : 'is already enrolled; revoke it first or use a new id';
    reject('device-already-enrolled', `device ${body.deviceId} ${why}`);
  }
  const entry: DeviceEntry = {
    kind: 'device',
    deviceId: body.deviceId,
    publicKey: body.publicKey,
    group: body.group,
    target: body.target,
    status: 'enrolled',
    enrolledAt: height,
    lastSeq: 0,
    lastReport: null,
  };
  const changes: StateChange[] = [{ key: deviceKey(body.deviceId), entry }];
  // A device that joins a target during its rollout joins the rollout's wave.
  const rollout = countingRollout(state, body.target);
  if (rollout !== undefined) {
    const wave = waveOf(body.deviceId, rollout.rolloutId, rollout.waves);
    changes.push(rolloutChange(changeMembership(rollout, wave, 1, null)));
  }
  return changes;
}

function applyRevoke(
  genesis: Genesis,
  state: LedgerState,
  tx: Transaction,
  body: DeviceRevokeBody,
  verifySignatures: boolean,
): StateChange[] {
  requireAdminSignature(genesis, tx, body, verifySignatures);
  const existing = requireDevice(state, body.deviceId);
  const changes: StateChange[] = [
    { key: deviceKey(body.deviceId), entry: { ...existing, status: 'revoked' } },
  ];
  // A revoked device leaves its wave, with its counted report, so it cannot hold the wave back.
  const rollout = countingRollout(state, existing.target);
  if (rollout !== undefined) {
    const wave = waveOf(existing.deviceId, rollout.rolloutId, rollout.waves);
    changes.push(rolloutChange(changeMembership(rollout, wave, -1, countedOutcome(existing, rollout))));
  }
  return changes;
}

function applyReport(
  state: LedgerState,
  tx: Transaction,
  body: DeviceReportBody,
  height: Height,
  verifySignatures: boolean,
): StateChange[] {
  const device = requireDevice(state, body.deviceId);
  requireSigner(tx, body.deviceId, `device ${body.deviceId}`);
  if (verifySignatures) requireSignature(tx, body, device.publicKey, `device ${body.deviceId}`);
  if (body.seq <= device.lastSeq) {
    reject(
      'replayed-seq',
      `report seq ${body.seq} of device ${body.deviceId} is not above its last accepted seq ${device.lastSeq}; a replay, or the device lost its counter`,
    );
  }
  const entry: DeviceEntry = {
    ...device,
    lastSeq: body.seq,
    lastReport: { version: body.version, sha256: body.sha256, status: body.status, height },
  };
  const rollout = countingRollout(state, device.target);
  if (rollout === undefined || body.target !== rollout.target || body.version !== rollout.version) {
    return [{ key: deviceKey(body.deviceId), entry }];
  }
  // A report on the version being rolled out counts in the device's wave: a success only when the
  // device applied exactly the released bytes.
  const outcome: RolloutOutcome =
    body.status === 'applied' && body.sha256 === rollout.sha256 ? 'success' : 'failure';
  const previous = countedOutcome(device, rollout);
  const wave = waveOf(device.deviceId, rollout.rolloutId, rollout.waves);
  return [
    {
      key: deviceKey(body.deviceId),
      entry: { ...entry, rollout: { rolloutId: rollout.rolloutId, outcome } },
    },
    rolloutChange(countReport(rollout, wave, previous, outcome)),
  ];
}

function applyRollout(
  genesis: Genesis,
  state: LedgerState,
  tx: Transaction,
  body: RolloutBody,
  id: TxId,
  height: Height,
  verifySignatures: boolean,
): StateChange[] {
  requireApprovals(genesis, tx, body, verifySignatures);
  if (state.rollout(body.rolloutId) !== undefined) {
    reject('rollout-exists', `rollout ${body.rolloutId} already exists; choose a new rollout id`);
  }
  const release = state.target(body.target);
  if (release === undefined || release.version !== body.version) {
    const now = release === undefined ? 'has no release' : `is at version ${release.version}`;
    reject(
      'rollout-version',
      `target ${body.target} ${now}; a rollout stages the target's current release, so release version ${body.version} first`,
    );
  }
  const current = state.targetRollout(body.target);
  if (current !== undefined && rolloutActive(current)) {
    reject(
      'rollout-state',
      `target ${body.target} is in rollout ${current.rolloutId} (${current.status}); abort it or let it finish first`,
    );
  }
  // Counting the target's devices reads every state entry once per rollout: a rare admin
  // transaction; from then on enrollments and revocations keep the counts.
  const devicesPerWave = body.waves.map(() => 0);
  for (const [, entry] of state.entries()) {
    if (entry.kind !== 'device' || entry.status !== 'enrolled' || entry.target !== body.target) continue;
    const wave = waveOf(entry.deviceId, body.rolloutId, body.waves);
    devicesPerWave[wave] = (devicesPerWave[wave] ?? 0) + 1;
  }
  const pointer: TargetRolloutEntry = {
    kind: 'target-rollout',
    target: body.target,
    rolloutId: body.rolloutId,
  };
  return [
    rolloutChange(startRollout(body, release.sha256, devicesPerWave, id, height)),
    { key: targetRolloutKey(body.target), entry: pointer },
  ];
}

function applyRolloutControl(
  genesis: Genesis,
  state: LedgerState,
  tx: Transaction,
  body: RolloutControlBody,
  verifySignatures: boolean,
): StateChange {
  requireAdminSignature(genesis, tx, body, verifySignatures);
  const rollout = state.rollout(body.rolloutId);
  if (rollout === undefined)
    reject('rollout-unknown', `rollout ${body.rolloutId} does not exist; check the id`);
  if (body.seq !== rollout.controlSeq + 1) {
    reject(
      'replayed-seq',
      `rollout ${body.rolloutId} has had ${rollout.controlSeq} control(s); this one must carry seq ${rollout.controlSeq + 1}, not ${body.seq} (a replay, or a control that crossed another)`,
    );
  }
  if (body.action === 'resume' && state.targetRollout(rollout.target)?.rolloutId !== rollout.rolloutId) {
    reject(
      'rollout-state',
      `target ${rollout.target} has a newer rollout than ${rollout.rolloutId}; only the target's latest rollout can be resumed`,
    );
  }
  const signer = tx.signatures[0]?.signer ?? '';
  const next = controlRollout(rollout, body, signer);
  if (typeof next === 'string') reject('rollout-state', next);
  return rolloutChange(next);
}

function rolloutChange(entry: RolloutEntry): StateChange {
  return { key: rolloutKey(entry.rolloutId), entry };
}

/**
 * The rollout that a device of this target follows now (its enrollment, revocation and reports
 * count there): the target's latest rollout, unless it is done or rolled back.
 */
function countingRollout(state: LedgerState, target: string): RolloutEntry | undefined {
  const rollout = state.targetRollout(target);
  return rollout !== undefined && rolloutCounting(rollout) ? rollout : undefined;
}

/** How the device counts in this rollout: its latest outcome there, or null if it never reported on it. */
function countedOutcome(device: DeviceEntry, rollout: RolloutEntry): RolloutOutcome | null {
  return device.rollout?.rolloutId === rollout.rolloutId ? device.rollout.outcome : null;
}

function applyHeartbeat(
  genesis: Genesis,
  state: LedgerState,
  tx: Transaction,
  body: HeartbeatBody,
  id: TxId,
  height: Height,
  verifySignatures: boolean,
): StateChange {
  requireValidatorSigned(genesis, tx, body.submitter, body, verifySignatures);
  const last = state.heartbeat(body.submitter);
  if (last !== undefined && body.timestampMs <= last.timestampMs) {
    reject(
      'heartbeat-not-newer',
      `validator ${body.submitter}'s last heartbeat has timestampMs ${last.timestampMs}; ${body.timestampMs} is a replay or a clock that went back, sign a new one`,
    );
  }
  const entry: HeartbeatEntry = {
    kind: 'heartbeat',
    submitter: body.submitter,
    timestampMs: body.timestampMs,
    height,
    txId: id,
  };
  return { key: heartbeatKey(body.submitter), entry };
}

/** Heartbeats and legacy attests: signed by the one validator named as submitter, and only by it. */
function requireValidatorSigned(
  genesis: Genesis,
  tx: Transaction,
  submitter: ValidatorId,
  body: HeartbeatBody | AttestBody,
  verifySignatures: boolean,
): void {
  const validator = requireValidator(genesis, submitter);
  requireSigner(tx, String(submitter), `validator ${submitter}`);
  if (verifySignatures) requireSignature(tx, body, validator.publicKey, `validator ${submitter}`);
}

function requireValidator(genesis: Genesis, submitter: ValidatorId): ValidatorInfo {
  const validator = genesis.validators[submitter];
  if (validator === undefined) {
    reject('unknown-signer', `submitter ${submitter} is not a validator of this network`);
  }
  return validator;
}

function requireArtifactSize(genesis: Genesis, size: number): void {
  if (size > genesis.policy.artifactBytesMax) {
    reject(
      'too-large',
      `the artifact is ${size} bytes, more than policy.artifactBytesMax (${genesis.policy.artifactBytesMax})`,
    );
  }
}

/** The new entry of a release's or attest's target, refused unless its version is newer. */
function targetChange(
  state: LedgerState,
  body: ReleaseBody | AttestBody,
  id: TxId,
  height: Height,
): StateChange {
  const current = state.target(body.target);
  requireNewer(current, body.target, body.version);
  const entry: TargetEntry = {
    kind: 'target',
    target: body.target,
    source: body.type,
    version: body.version,
    sha256: body.sha256,
    size: body.size,
    // An attestation names no media type: keep the target's, or fall back to opaque bytes.
    mediaType: body.type === 'release' ? body.mediaType : (current?.mediaType ?? 'application/octet-stream'),
    height,
    txId: id,
  };
  return { key: targetKey(body.target), entry };
}

function requireNewer(current: TargetEntry | undefined, name: string, version: number): void {
  if (current !== undefined && version <= current.version) {
    reject(
      'version-not-newer',
      `target ${name} is at version ${current.version}; version ${version} would be a rollback or a replay, use a higher version`,
    );
  }
}

function requireDevice(state: LedgerState, id: string): DeviceEntry {
  const device = state.device(id);
  if (device === undefined) reject('device-not-enrolled', `device ${id} is not enrolled; enroll it first`);
  if (device.status === 'revoked')
    reject('device-revoked', `device ${id} was revoked and may not act any more`);
  return device;
}

function requireSigner(tx: Transaction, signer: string, who: string): void {
  if (tx.signatures.length !== 1 || tx.signatures[0]?.signer !== signer) {
    reject(
      'unknown-signer',
      `this transaction must carry exactly one signature, by ${who} (signer "${signer}")`,
    );
  }
}

function requireSignature(tx: Transaction, body: TxBody, key: PublicKeyHex, who: string): void {
  const approval = tx.signatures[0];
  assert(approval !== undefined, 'requireSigner ran first');
  if (!verify(Domain.transaction, body, approval.signature, cachedKey(key))) {
    reject('bad-signature', `the signature by ${who} does not verify`);
  }
}

function requireAdminSignature(
  genesis: Genesis,
  tx: Transaction,
  body: TxBody,
  verifySignatures: boolean,
): void {
  const approval = tx.signatures[0];
  const admin = genesis.admins.find((a) => a.id === approval?.signer);
  if (tx.signatures.length !== 1 || admin === undefined) {
    reject('unknown-signer', `a ${body.type} must carry exactly one signature, by an admin named in genesis`);
  }
  if (verifySignatures) requireSignature(tx, body, admin.publicKey, `admin ${admin.id}`);
}

/**
 * Parsed keys, because building a KeyObject costs more than a verification. Bounded: when full,
 * the oldest key is dropped (keys come back cheaply). Caching does not change any result.
 */
const keyCache = new Map<string, KeyObject>();

function cachedKey(hex: PublicKeyHex): KeyObject {
  let key = keyCache.get(hex);
  if (key === undefined) {
    key = publicKeyFromHex(hex);
    if (keyCache.size >= publicKeyCacheMax) {
      const oldest = keyCache.keys().next();
      if (oldest.done !== true) keyCache.delete(oldest.value);
    }
    keyCache.set(hex, key);
  }
  return key;
}

// Signing helpers, for tests, the CLI and the simulator. The private keys never enter the ledger.

export interface AdminKey {
  readonly id: string;
  readonly privateKey: KeyObject;
}

/**
 * A release (or rollout) approved by each of these admins (signatures over the body, in
 * Domain.releaseApproval).
 */
export function signRelease(body: ReleaseBody | RolloutBody, adminKeys: readonly AdminKey[]): Transaction {
  return {
    body,
    signatures: adminKeys.map((k) => ({
      signer: k.id,
      signature: sign(Domain.releaseApproval, body, k.privateKey),
    })),
  };
}

/** Adds one admin's approval to a release, so approvals can be collected one by one. */
export function addApproval(tx: Transaction, adminKey: AdminKey): Transaction {
  assert(
    tx.body.type === 'release' || tx.body.type === 'rollout',
    'only releases and rollouts collect approvals',
  );
  return {
    body: tx.body,
    signatures: [
      ...tx.signatures,
      { signer: adminKey.id, signature: sign(Domain.releaseApproval, tx.body, adminKey.privateKey) },
    ],
  };
}

export function signAsAdmin(
  body: DeviceEnrollBody | DeviceRevokeBody | RolloutControlBody,
  adminId: string,
  key: KeyObject,
): Transaction {
  return signedBy(body, adminId, key);
}

export function signAsValidator(body: HeartbeatBody, id: ValidatorId, key: KeyObject): Transaction {
  assert(body.submitter === id, `a ${body.type} is signed by its submitter`);
  return signedBy(body, String(id), key);
}

export function signAsDevice(body: DeviceReportBody, key: KeyObject): Transaction {
  return signedBy(body, body.deviceId, key);
}

function signedBy(body: TxBody, signer: string, key: KeyObject): Transaction {
  return { body, signatures: [{ signer, signature: sign(Domain.transaction, body, key) }] };
}

/**
 * The attest for a hash a config source offers as (version, size). It is unsigned (see
 * applyAttest), so every validator that sees the same offer makes the very same transaction.
 */
export function attestTx(
  chainId: string,
  target: TargetName,
  sha256: Hash32Hex,
  offer: { readonly version: number; readonly size: number },
): Transaction {
  const body: AttestBody = {
    type: 'attest',
    chainId,
    target,
    version: offer.version,
    sha256,
    size: offer.size,
  };
  return { body, signatures: [] };
}

/**
 * The heartbeat validator `validatorId` submits when the chain has been idle for
 * policy.heartbeatIntervalMs. `timestampMs` is its clock; it must be above its previous heartbeat's.
 */
export function signHeartbeat(
  genesis: Genesis,
  validatorId: ValidatorId,
  key: KeyObject,
  timestampMs: number,
): Transaction {
  assert(validatorId < genesis.validators.length, 'the heartbeat submitter is a validator of this genesis');
  assert(Number.isSafeInteger(timestampMs) && timestampMs >= 0, 'the timestamp is a non-negative integer');
  const body: HeartbeatBody = {
    type: 'heartbeat',
    chainId: genesis.chainId,
    submitter: validatorId,
    timestampMs,
  };
  return signAsValidator(body, validatorId, key);
}
