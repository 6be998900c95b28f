/**
 * The device agent: what `configchain device` runs on a device, and what tests and `up` call
 * in-process through runRound(). One round:
 *
 *   1. send any report a previous round persisted but could not deliver;
 *   2. fetch the target proof from a validator of device.json, failing over to the next one on a
 *      network error, an error answer or a proof the verifier refuses (and logging why);
 *   3. if the proven version is the applied one (or the target has none), stop: nothing new;
 *   4. download the artifact by its SHA-256 from config server A, streaming into
 *      applied/<target>.tmp, hashing as it arrives and aborting past the release's size;
 *      a wrong hash or size is a `mismatch` (reported; the next round downloads again);
 *   5. apply atomically: fsync the file, rename it to applied/<target>, fsync the folder, then run
 *      the optional hook with the file's path (a failing hook makes the round `failed`);
 *   6. persist state.json (applied version and hash, the next report seq, the signed report)
 *      atomically BEFORE sending the report, so a crash can never reuse a sequence number;
 *   7. submit the signed device-report transaction to a validator, failing over.
 *
 * Staged rollouts (docs/device.md): the proof also proves the target's rollout. When the offered
 * version is the version of the target's rollout, the device applies it only once its wave is
 * open (waveOf, waveOpen in src/ledger/rollout.ts); otherwise the round ends `waiting`. A rolled
 * back rollout makes a device that applied its version restore the file it had before
 * (applied/<target>.prev, kept at apply time) and report that version again (`rolled-back`).
 *
 * `simple` mode is the article's flow for devices that cannot verify proofs: download the latest
 * version from A, hash it, ask a validator (POST /validateHash) and apply on "Success".
 *
 * Device files live in DIR/devices/<id>/: device.key, device.json {deviceId, publicKey, target,
 * configServer, validators}, state.json, applied/. The pinned genesis is DIR/genesis.json.
 */
import { spawn } from 'node:child_process';
import type { KeyObject } from 'node:crypto';
import { existsSync, linkSync, mkdirSync, readFileSync, renameSync, rmSync } from 'node:fs';
import { open } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import {
  deviceBackoffMsMax,
  deviceBackoffMsMin,
  deviceDownloadTimeoutMs,
  deviceHookOutputBytesMax,
  deviceHookTimeoutMs,
  deviceReportWaitMs,
  deviceStateBytesMax,
  reportDetailLengthMax,
} from '../constants.ts';
import { loadPrivateKey } from '../crypto/keyfile.ts';
import type { DeviceId, Hash32Hex, TargetName } from '../encoding/brand.ts';
import { isHash32Hex } from '../encoding/brand.ts';
import { ConfigChainError } from '../errors.ts';
import { waveOf, waveOpen } from '../ledger/rollout.ts';
import { signAsDevice } from '../ledger/tx.ts';
import type { DeviceReportBody, Genesis, RolloutEntry, TargetEntry, Transaction } from '../ledger/types.ts';
import { loadGenesisFile, paths } from '../node/layout.ts';
import { downloadResumable, removeStalePartials } from './download.ts';
import { type DeviceHttp, type DeviceIdentity, type Download, defaultDeviceHttp, joinUrl } from './http.ts';
import { verifyArtifact, verifyTargetProof } from './verify.ts';

// Files ------------------------------------------------------------------------------------------

/** devices/<id>/device.json, written by `configchain init`. */
export interface DeviceConfig {
  readonly deviceId: string;
  readonly publicKey: string;
  readonly target: string;
  /** Base URL of the device-facing config server (A). */
  readonly configServer: string;
  /** Base URLs of the validators' APIs, tried in this order. */
  readonly validators: readonly string[];
}

/** devices/<id>/state.json: what survives a restart or a crash. */
export interface DeviceState {
  /** 0 before the first apply. */
  readonly lastAppliedVersion: number;
  readonly sha256: string | null;
  /** The sequence number of the next report; every number is used at most once. */
  readonly nextSeq: number;
  /** A signed report persisted but not yet accepted by a validator; sent first next round. */
  readonly pendingReport: Transaction | null;
  /**
   * The version applied before the current one, whose file is kept as applied/<target>.prev for
   * a rollback; absent or null when there is none.
   */
  readonly previous?: { readonly version: number; readonly sha256: string } | null;
}

export const initialDeviceState: DeviceState = {
  lastAppliedVersion: 0,
  sha256: null,
  nextSeq: 1,
  pendingReport: null,
};

export const deviceFiles = {
  dir: (dir: string, id: string) => dirname(paths.deviceFile(dir, id)),
  state: (dir: string, id: string) => join(dirname(paths.deviceFile(dir, id)), 'state.json'),
  appliedDir: (dir: string, id: string) => join(dirname(paths.deviceFile(dir, id)), 'applied'),
  /** Target names may hold ':' and '@'; the file name is the name URI-encoded. */
  applied: (dir: string, id: string, target: string) =>
    join(dirname(paths.deviceFile(dir, id)), 'applied', encodeURIComponent(target)),
} as const;

export class DeviceSetupError extends ConfigChainError<'DEVICE_SETUP', { readonly file: string }> {}

function setupError(file: string, what: string): DeviceSetupError {
  return new DeviceSetupError('DEVICE_SETUP', `${file}: ${what}`, { file });
}

export function loadDeviceConfig(dir: string, deviceId: string): DeviceConfig {
  const file = paths.deviceFile(dir, deviceId);
  let json: unknown;
  try {
    json = JSON.parse(readFileSync(file, 'utf8'));
  } catch (error) {
    throw setupError(
      file,
      `cannot read it (${(error as Error).message}); enroll the device with configchain devices enroll --dir DIR --id ${deviceId} (configchain init makes only the demo devices), or check --dir and --id`,
    );
  }
  const c = json as Partial<Record<keyof DeviceConfig, unknown>>;
  const urls = (v: unknown) => Array.isArray(v) && v.length > 0 && v.every((u) => typeof u === 'string');
  if (
    typeof json !== 'object' ||
    json === null ||
    c.deviceId !== deviceId ||
    typeof c.publicKey !== 'string' ||
    typeof c.target !== 'string' ||
    c.target === '' ||
    typeof c.configServer !== 'string' ||
    !urls(c.validators)
  ) {
    throw setupError(
      file,
      `must be {deviceId: "${deviceId}", publicKey, target, configServer, validators: [urls]}; fix it or re-create the network`,
    );
  }
  return json as DeviceConfig;
}

export function readDeviceState(dir: string, deviceId: string): DeviceState {
  const file = deviceFiles.state(dir, deviceId);
  if (!existsSync(file)) return initialDeviceState;
  const text = readFileSync(file, 'utf8');
  let s: Partial<DeviceState>;
  try {
    if (text.length > deviceStateBytesMax) throw new Error(`more than ${deviceStateBytesMax} bytes`);
    s = JSON.parse(text) as Partial<DeviceState>;
  } catch (error) {
    throw setupError(file, `is not a device state (${(error as Error).message}); restore it from a backup`);
  }
  const count = (v: unknown, min: number) => typeof v === 'number' && Number.isSafeInteger(v) && v >= min;
  if (
    !count(s.lastAppliedVersion, 0) ||
    !count(s.nextSeq, 1) ||
    !(s.sha256 === null || isHash32Hex(s.sha256)) ||
    !(s.pendingReport === null || (typeof s.pendingReport === 'object' && s.pendingReport !== undefined)) ||
    !(
      s.previous === undefined ||
      s.previous === null ||
      (count(s.previous.version, 1) && isHash32Hex(s.previous.sha256))
    )
  ) {
    throw setupError(
      file,
      'must be {lastAppliedVersion, sha256, nextSeq, pendingReport}; restore it from a backup (a fresh state would reuse report numbers)',
    );
  }
  return s as DeviceState;
}

/** Writes state.json atomically and durably: temporary file, fsync, rename, fsync the folder. */
export async function writeDeviceState(dir: string, deviceId: string, state: DeviceState): Promise<void> {
  const text = `${JSON.stringify(state, null, 2)}\n`;
  if (text.length > deviceStateBytesMax) {
    throw new Error(`device state of ${text.length} bytes exceeds deviceStateBytesMax`);
  }
  const file = deviceFiles.state(dir, deviceId);
  await writeDurably(file, Buffer.from(text));
}

async function writeDurably(file: string, bytes: Uint8Array): Promise<void> {
  const tmp = `${file}.tmp`;
  const handle = await open(tmp, 'w', 0o600);
  try {
    await handle.writeFile(bytes);
    await handle.sync();
  } finally {
    await handle.close();
  }
  renameSync(tmp, file);
  await syncDir(dirname(file));
}

async function syncDir(path: string): Promise<void> {
  const handle = await open(path, 'r');
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}

// Results ----------------------------------------------------------------------------------------

/** One validator's failure during a fail-over walk: unreachable, an error answer or a refused proof. */
export interface Attempt {
  readonly validator: string;
  readonly code: string;
  readonly reason: string;
}

export interface ReportOutcome {
  /** unsent: no validator took it; it stays in state.json and is sent first next round. */
  readonly status: 'committed' | 'pending' | 'rejected' | 'unsent';
  readonly seq: number;
  readonly txId: string | null;
  readonly validator: string | null;
  readonly reason: string | null;
}

export type RoundResult =
  | {
      readonly kind: 'applied';
      readonly target: string;
      readonly version: number;
      readonly sha256: string;
      readonly path: string;
      readonly report: ReportOutcome;
      /** Validators that failed or were refused before one gave an acceptable answer. */
      readonly attempts: readonly Attempt[];
    }
  | {
      readonly kind: 'nothing-new';
      readonly target: string;
      /** The version applied on the device (0 if none). */
      readonly version: number;
      readonly why: 'current' | 'absent';
      readonly attempts: readonly Attempt[];
    }
  | {
      /**
       * The offered version is the version of the target's staged rollout and this device may
       * not apply it yet: its wave is not open (`wave`), or the rollout is halted, aborted or
       * rolled back. Not an error: the device asks again next round.
       */
      readonly kind: 'waiting';
      readonly target: string;
      /** The version applied on the device (0 if none). */
      readonly version: number;
      readonly offered: number;
      readonly rolloutId: string;
      /** The device's wave, counted from 1. */
      readonly wave: number;
      readonly why: 'wave' | 'halted' | 'aborted' | 'rolled-back';
      readonly reason: string;
      readonly attempts: readonly Attempt[];
    }
  | {
      /** The rollout of the applied version was rolled back: the previous file is restored. */
      readonly kind: 'rolled-back';
      readonly target: string;
      /** The version restored (0 when there was none before and the file was removed). */
      readonly version: number;
      readonly from: number;
      readonly rolloutId: string;
      readonly path: string;
      readonly report: ReportOutcome;
      readonly attempts: readonly Attempt[];
    }
  | {
      readonly kind: 'refused';
      /** The verifier's code (or DEVICE_FORBIDDEN etc.) of the last validator tried. */
      readonly code: string;
      readonly reason: string;
      readonly attempts: readonly Attempt[];
    }
  | {
      readonly kind: 'mismatch';
      readonly target: string;
      readonly version: number;
      readonly code: 'ARTIFACT_HASH' | 'ARTIFACT_SIZE' | 'INVALID';
      readonly reason: string;
      readonly report: ReportOutcome | null;
      readonly attempts: readonly Attempt[];
    }
  | {
      readonly kind: 'failed';
      readonly code: string;
      readonly reason: string;
      readonly attempts: readonly Attempt[];
      readonly report: ReportOutcome | null;
    };

/** `--once` exits 0 for these: the round applied and its report was taken, or nothing was new. */
export function roundSucceeded(result: RoundResult): boolean {
  if (result.kind === 'nothing-new' || result.kind === 'waiting') return true;
  if (result.kind === 'rolled-back')
    return result.report.status === 'committed' || result.report.status === 'pending';
  return (
    result.kind === 'applied' && (result.report.status === 'committed' || result.report.status === 'pending')
  );
}

// The round --------------------------------------------------------------------------------------

export interface RoundOptions {
  /** The network directory (genesis.json, devices/<id>/...). */
  readonly dir: string;
  readonly deviceId: string;
  readonly mode?: 'proof' | 'simple';
  /** A shell command run after the apply with the applied file's path as its argument. */
  readonly hook?: string;
  /** One plain line per step; silent when absent. */
  readonly log?: (line: string) => void;
  readonly nowMs?: () => number;
  /** Replaces some HTTP calls (tests); the rest are the real ones. */
  readonly http?: Partial<DeviceHttp>;
  /** Overrides genesis.policy.headerAgeMsMax. */
  readonly headerAgeMsMax?: number;
  /** Called as an artifact downloads, with the bytes held so far and the release's size. */
  readonly onProgress?: (done: number, total: number) => void;
}

interface Round {
  readonly dir: string;
  readonly id: string;
  readonly config: DeviceConfig;
  readonly genesis: Genesis;
  readonly key: KeyObject;
  readonly identity: DeviceIdentity;
  readonly http: DeviceHttp;
  readonly log: (line: string) => void;
  readonly nowMs: () => number;
  readonly hook: string | undefined;
  /** Every validator that failed or was refused this round, in order. */
  readonly attempts: Attempt[];
  state: DeviceState;
}

function prepare(options: RoundOptions): Round {
  const config = loadDeviceConfig(options.dir, options.deviceId);
  const genesis = loadGenesisFile(options.dir);
  const keyFile = paths.deviceKey(options.dir, options.deviceId);
  let pair: ReturnType<typeof loadPrivateKey>;
  try {
    pair = loadPrivateKey(keyFile);
  } catch (error) {
    throw setupError(
      keyFile,
      `cannot load the device key (${(error as Error).message}); restore the device's own key file, or enroll the device with configchain devices enroll --dir DIR --id ${options.deviceId}, which creates it`,
    );
  }
  if (pair.publicKeyHex !== config.publicKey) {
    throw setupError(
      keyFile,
      `holds another key than device.json's publicKey ${config.publicKey}; restore the key file enrolled with this device (the ledger knows only that key), or revoke the device and enroll it under a new id`,
    );
  }
  const nowMs = options.nowMs ?? (() => Date.now());
  mkdirSync(deviceFiles.appliedDir(options.dir, options.deviceId), { recursive: true });
  return {
    dir: options.dir,
    id: options.deviceId,
    config,
    genesis,
    key: pair.privateKey,
    identity: { chainId: genesis.chainId, deviceId: options.deviceId, key: pair.privateKey, nowMs },
    http: { ...defaultDeviceHttp, ...options.http },
    log: options.log ?? (() => undefined),
    nowMs,
    hook: options.hook,
    attempts: [],
    state: readDeviceState(options.dir, options.deviceId),
  };
}

/** Runs one round (see the file comment) and says what happened. Throws only on a broken setup. */
export async function runRound(options: RoundOptions): Promise<RoundResult> {
  const round = prepare(options);
  const headerAgeMsMax = options.headerAgeMsMax ?? round.genesis.policy.headerAgeMsMax;
  round.log(
    `round: device ${round.id}, target ${round.config.target}, applied version ${round.state.lastAppliedVersion}, mode ${options.mode ?? 'proof'}`,
  );
  await flushPendingReport(round);
  return options.mode === 'simple'
    ? simpleRound(round)
    : proofRound(round, headerAgeMsMax, options.onProgress);
}

async function proofRound(
  round: Round,
  headerAgeMsMax: number,
  onProgress?: (done: number, total: number) => void,
): Promise<RoundResult> {
  const target = round.config.target;
  const attempts = round.attempts;
  let accepted: {
    entry: TargetEntry | null;
    outcome: string;
    validator: string;
    height: number;
    rollout: RolloutEntry | null;
  } | null = null;
  for (const validator of round.config.validators) {
    let proof: unknown;
    try {
      proof = await round.http.fetchTargetProof(validator, target, round.identity);
    } catch (error) {
      const e = error as ConfigChainError<string, { serverCode?: string }>;
      attempts.push({ validator, code: e.data?.serverCode ?? e.code ?? 'ERROR', reason: e.message });
      round.log(`proof: ${validator} failed: ${e.message}; trying the next validator`);
      continue;
    }
    const verdict = verifyTargetProof(proof, {
      genesis: round.genesis,
      target,
      lastAppliedVersion: round.state.lastAppliedVersion,
      nowMs: round.nowMs(),
      headerAgeMsMax,
    });
    if (!verdict.ok) {
      attempts.push({ validator, code: verdict.code, reason: verdict.reason });
      round.log(
        `proof: refused the proof of ${validator}: ${verdict.code}: ${verdict.reason}; trying the next validator`,
      );
      continue;
    }
    accepted = {
      entry: verdict.entry,
      outcome: verdict.outcome,
      validator,
      height: verdict.header.height,
      rollout: verdict.rollout,
    };
    round.log(
      `proof: ${validator} proved ${verdict.entry === null ? 'no entry' : `version ${verdict.entry.version} (${verdict.entry.sha256})`} for ${target} at height ${verdict.header.height}, certified by a quorum`,
    );
    break;
  }
  if (accepted === null) {
    const last = attempts[attempts.length - 1];
    const refusal = [...attempts].reverse().find((a) => isVerifierCode(a.code));
    const reason = `no validator gave an acceptable proof (${attempts.length} tried, each one's error is logged above); the next round tries again, check that the validators in device.json are up`;
    round.log(`round: ${reason}`);
    if (refusal !== undefined)
      return { kind: 'refused', code: refusal.code, reason: refusal.reason, attempts };
    return { kind: 'failed', code: last?.code ?? 'NO_VALIDATORS', reason, attempts, report: null };
  }
  const held = await rolloutDecision(round, accepted.entry, accepted.rollout);
  if (held !== null) return held;
  if (accepted.entry === null || accepted.outcome !== 'newer') {
    const why = accepted.entry === null ? 'absent' : 'current';
    round.log(
      why === 'absent'
        ? `round: nothing new: the ledger has no release for ${target}`
        : `round: nothing new: version ${round.state.lastAppliedVersion} is current`,
    );
    // A partial download of a release that is no longer the newest is never finished.
    removeStalePartials(downloadDir(round), null, round.log);
    return { kind: 'nothing-new', target, version: round.state.lastAppliedVersion, why, attempts };
  }
  const entry = accepted.entry;
  const url = joinUrl(round.config.configServer, `/v1/artifacts/${entry.sha256}`);
  // The real HTTP download resumes in chunks (download.ts); a replaced one (tests) is used as given.
  const fetched =
    round.http.download === defaultDeviceHttp.download
      ? await fetchResumable(round, url, entry, onProgress)
      : await fetchToTemp(round, url, entry.size);
  if (!fetched.ok) return fetched.result;
  const check = fetched.download.exceeded
    ? ({
        ok: false,
        code: 'ARTIFACT_SIZE',
        reason: `the config server sent more than the release's ${entry.size} bytes; the download was aborted at the limit`,
      } as const)
    : verifyArtifact(entry, fetched.download.sha256, fetched.download.size);
  if (!check.ok) {
    rmSync(fetched.tmp, { force: true });
    const code = check.code === 'ARTIFACT_SIZE' ? 'ARTIFACT_SIZE' : 'ARTIFACT_HASH';
    round.log(`download: mismatch: ${check.reason}; not applied, will download again next round`);
    const sent = await report(round, {
      version: entry.version,
      sha256: fetched.download.sha256 as Hash32Hex,
      status: 'mismatch',
      detail: `${code} from ${round.config.configServer}: ${check.reason}`,
    });
    return {
      kind: 'mismatch',
      target,
      version: entry.version,
      code,
      reason: check.reason,
      report: sent,
      attempts,
    };
  }
  round.log(`download: ${entry.size} bytes from ${url}, sha256 matches the certified release`);
  return applyAndReport(round, entry.version, entry.sha256, fetched.tmp);
}

function isVerifierCode(code: string): boolean {
  return [
    'MALFORMED',
    'CHAIN_MISMATCH',
    'WRONG_TARGET',
    'HEADER_HASH',
    'CERT_QUORUM',
    'CERT_UNKNOWN_SIGNER',
    'CERT_SIGNATURE',
    'STATE_PROOF',
    'ROLLBACK',
    'STALE_HEADER',
    'ROLLOUT_PROOF',
  ].includes(code);
}

// Staged rollouts --------------------------------------------------------------------------------

/**
 * The rollout decision, on a proven rollout entry: restore the previous version when the applied
 * one was rolled back; hold back a version under rollout while the device's wave is not open or
 * the rollout is halted or aborted. Null lets the round go on as without a rollout.
 */
async function rolloutDecision(
  round: Round,
  entry: TargetEntry | null,
  rollout: RolloutEntry | null,
): Promise<RoundResult | null> {
  if (rollout === null) return null;
  const state = round.state;
  if (rollout.rollback && state.lastAppliedVersion === rollout.version && state.sha256 === rollout.sha256) {
    return rollBack(round, rollout);
  }
  if (
    entry === null ||
    entry.version !== rollout.version ||
    entry.sha256 !== rollout.sha256 ||
    entry.version <= state.lastAppliedVersion
  ) {
    return null;
  }
  const wave = waveOf(round.id, rollout.rolloutId, rollout.waves);
  if (!rollout.rollback && waveOpen(rollout, wave)) {
    round.log(`rollout: ${rollout.rolloutId} has wave ${wave + 1} of ${rollout.waves.length} open; applying`);
    return null;
  }
  const why = rollout.rollback ? 'rolled-back' : rollout.status === 'running' ? 'wave' : rollout.status;
  if (why === 'done') return null;
  const reason =
    why === 'wave'
      ? `waiting for wave ${wave + 1} of rollout ${rollout.rolloutId}: wave ${rollout.currentWave + 1} of ${rollout.waves.length} is the newest open`
      : `rollout ${rollout.rolloutId} is ${why}${rollout.reason === '' ? '' : ` (${rollout.reason})`}; version ${entry.version} is not applied`;
  round.log(`rollout: ${reason}`);
  return {
    kind: 'waiting',
    target: round.config.target,
    version: state.lastAppliedVersion,
    offered: entry.version,
    rolloutId: rollout.rolloutId,
    wave: wave + 1,
    why,
    reason,
    attempts: round.attempts,
  };
}

/** Puts back the file applied before the rolled-back version (or removes it), and reports. */
async function rollBack(round: Round, rollout: RolloutEntry): Promise<RoundResult> {
  const path = deviceFiles.applied(round.dir, round.id, round.config.target);
  const previous = round.state.previous ?? null;
  const detail = `rollout ${rollout.rolloutId} was rolled back`;
  let report_: ReportOutcome;
  let version: number;
  if (previous !== null && existsSync(`${path}.prev`)) {
    renameSync(`${path}.prev`, path);
    await syncDir(dirname(path));
    version = previous.version;
    round.log(`rollback: ${detail}; ${path} is version ${version} again`);
    round.state = { ...round.state, previous: null };
    report_ = await report(
      round,
      {
        version,
        sha256: previous.sha256 as Hash32Hex,
        status: 'applied',
        detail: `${detail}: restored version ${version} over ${rollout.version}`,
      },
      { lastAppliedVersion: version, sha256: previous.sha256 },
    );
  } else {
    // Nothing was applied before this version: going back means having no file.
    rmSync(path, { force: true });
    await syncDir(dirname(path));
    version = 0;
    round.log(`rollback: ${detail}; ${path} removed, no earlier version was applied`);
    round.state = { ...round.state, previous: null };
    report_ = await report(
      round,
      {
        version: rollout.version,
        sha256: rollout.sha256,
        status: 'failed',
        detail: `${detail}: version ${rollout.version} removed, no earlier version to restore`,
      },
      { lastAppliedVersion: 0, sha256: null },
    );
  }
  return {
    kind: 'rolled-back',
    target: round.config.target,
    version,
    from: rollout.version,
    rolloutId: rollout.rolloutId,
    path,
    report: report_,
    attempts: round.attempts,
  };
}

type Fetched =
  | { readonly ok: true; readonly tmp: string; readonly download: Download }
  | { readonly ok: false; readonly result: RoundResult };

/** Downloads into applied/<target>.tmp (fsynced), at most bytesMax bytes. */
async function fetchToTemp(round: Round, url: string, bytesMax: number): Promise<Fetched> {
  const tmp = `${deviceFiles.applied(round.dir, round.id, round.config.target)}.tmp`;
  const handle = await open(tmp, 'w', 0o644);
  let download: Download;
  try {
    download = await round.http.download(
      url,
      bytesMax,
      async (chunk) => {
        await handle.write(chunk);
      },
      deviceDownloadTimeoutMs,
    );
    await handle.sync();
  } catch (error) {
    await handle.close();
    rmSync(tmp, { force: true });
    return downloadFailed(round, error, 'will try again');
  }
  await handle.close();
  return { ok: true, tmp, download };
}

function downloadDir(round: Round): string {
  return join(deviceFiles.dir(round.dir, round.id), 'download');
}

/**
 * Downloads the release into download/<sha256>.part in chunks, resuming what an interrupted round
 * left there; a network error keeps the partial file for the next round.
 */
async function fetchResumable(
  round: Round,
  url: string,
  entry: TargetEntry,
  onProgress?: (done: number, total: number) => void,
): Promise<Fetched> {
  try {
    const got = await downloadResumable({
      url,
      sha256: entry.sha256,
      size: entry.size,
      dir: downloadDir(round),
      log: round.log,
      ...(onProgress === undefined ? {} : { onProgress }),
    });
    return { ok: true, tmp: got.path, download: got.download };
  } catch (error) {
    return downloadFailed(round, error, 'the partial file is kept, the next round resumes it');
  }
}

/** The round's failure when a download throws; `next` tells the log what the next round does. */
function downloadFailed(round: Round, error: unknown, next: string): Fetched {
  const e = error as ConfigChainError;
  round.log(`download: ${e.message}; ${next}`);
  return {
    ok: false,
    result: {
      kind: 'failed',
      code: e.code ?? 'DOWNLOAD',
      reason: `downloading from the config server failed: ${e.message}`,
      attempts: round.attempts,
      report: null,
    },
  };
}

/** Renames the verified file into place, runs the hook, persists the state and reports. */
async function applyAndReport(
  round: Round,
  version: number,
  sha256: string,
  tmp: string,
): Promise<RoundResult> {
  const target = round.config.target;
  const path = deviceFiles.applied(round.dir, round.id, target);
  // Keep the applied file for a rollback, unless it is a failed earlier try at this very update
  // (then .prev already holds the version that is really applied).
  const applied = round.state;
  if (applied.lastAppliedVersion > 0 && applied.sha256 !== null && existsSync(path)) {
    if ((applied.previous ?? null)?.version !== applied.lastAppliedVersion) {
      rmSync(`${path}.prev`, { force: true });
      linkSync(path, `${path}.prev`);
      round.state = {
        ...applied,
        previous: { version: applied.lastAppliedVersion, sha256: applied.sha256 },
      };
    }
  }
  renameSync(tmp, path);
  await syncDir(dirname(path));
  round.log(`apply: ${path} is now version ${version}`);
  if (round.hook !== undefined) {
    const hook = await runHook(round.hook, path);
    if (!hook.ok) {
      round.log(`hook: failed: ${hook.reason}`);
      const r = await report(round, {
        version,
        sha256: sha256 as Hash32Hex,
        status: 'failed',
        detail: `hook failed: ${hook.reason}`,
      });
      return {
        kind: 'failed',
        code: 'HOOK_FAILED',
        reason: hook.reason,
        attempts: round.attempts,
        report: r,
      };
    }
    round.log(`hook: ${round.hook} succeeded`);
  }
  const r = await report(
    round,
    { version, sha256: sha256 as Hash32Hex, status: 'applied', detail: `applied to ${path}` },
    { lastAppliedVersion: version, sha256 },
  );
  return { kind: 'applied', target, version, sha256, path, report: r, attempts: round.attempts };
}

// Simple mode ------------------------------------------------------------------------------------

async function simpleRound(round: Round): Promise<RoundResult> {
  const target = round.config.target;
  const url = joinUrl(round.config.configServer, `/v1/targets/${encodeURIComponent(target)}/latest`);
  const fetched = await fetchToTemp(round, url, round.genesis.policy.artifactBytesMax);
  if (!fetched.ok) return fetched.result;
  const { sha256, exceeded } = fetched.download;
  if (exceeded) {
    rmSync(fetched.tmp, { force: true });
    const reason = `the config server sent more than policy.artifactBytesMax (${round.genesis.policy.artifactBytesMax}) bytes`;
    round.log(`download: ${reason}; aborted`);
    return {
      kind: 'mismatch',
      target,
      version: 0,
      code: 'ARTIFACT_SIZE',
      reason,
      report: null,
      attempts: round.attempts,
    };
  }
  if (sha256 === round.state.sha256) {
    rmSync(fetched.tmp, { force: true });
    round.log(`round: nothing new: the latest on the config server is the applied ${sha256}`);
    return {
      kind: 'nothing-new',
      target,
      version: round.state.lastAppliedVersion,
      why: 'current',
      attempts: round.attempts,
    };
  }
  round.log(`download: ${fetched.download.size} bytes from ${url}, sha256 ${sha256}`);
  const attempts = round.attempts;
  for (const validator of round.config.validators) {
    let answer: { status: number; text: string };
    try {
      answer = await round.http.validateHash(validator, sha256, target, round.identity);
    } catch (error) {
      attempts.push({
        validator,
        code: (error as ConfigChainError).code ?? 'ERROR',
        reason: (error as Error).message,
      });
      round.log(`validateHash: ${validator} failed: ${(error as Error).message}; trying the next validator`);
      continue;
    }
    if (answer.status === 200 && answer.text.startsWith('Success')) {
      round.log(`validateHash: ${validator} answered "${answer.text}"`);
      const version = fetched.download.versionHeader ?? round.state.lastAppliedVersion + 1;
      return applyAndReport(round, version, sha256, fetched.tmp);
    }
    if (answer.status === 200) {
      // A definite "invalid" from a validator: the network has decided, asking others changes nothing.
      rmSync(fetched.tmp, { force: true });
      round.log(`validateHash: ${validator} answered "${answer.text}"; not applied`);
      const r = await report(round, {
        version: fetched.download.versionHeader ?? 0,
        sha256: sha256 as Hash32Hex,
        status: 'mismatch',
        detail: `validateHash refused ${sha256}: ${answer.text}`.slice(0, reportDetailLengthMax),
      });
      return {
        kind: 'mismatch',
        target,
        version: 0,
        code: 'INVALID',
        reason: answer.text,
        report: r,
        attempts,
      };
    }
    attempts.push({ validator, code: `HTTP_${answer.status}`, reason: answer.text.slice(0, 300) });
    round.log(
      `validateHash: ${validator} answered ${answer.status}: ${answer.text.slice(0, 200)}; trying the next validator`,
    );
  }
  rmSync(fetched.tmp, { force: true });
  return {
    kind: 'failed',
    code: attempts[attempts.length - 1]?.code ?? 'NO_VALIDATORS',
    reason:
      "no validator could decide on the hash (each one's error is logged above); the next round tries again, check that the validators in device.json are up",
    attempts,
    report: null,
  };
}

// Hook -------------------------------------------------------------------------------------------

/** Runs `sh -c '<hook> "$1"' hook <path>`: the path is passed as an argument, never spliced. */
function runHook(command: string, path: string): Promise<{ ok: true } | { ok: false; reason: string }> {
  return new Promise((resolve) => {
    const child = spawn('/bin/sh', ['-c', `${command} "$1"`, 'configchain-hook', path], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let output = '';
    const keep = (chunk: Buffer) => {
      if (output.length < deviceHookOutputBytesMax) output += chunk.toString('utf8');
    };
    child.stdout.on('data', keep);
    child.stderr.on('data', keep);
    const timer = setTimeout(() => child.kill('SIGKILL'), deviceHookTimeoutMs);
    child.once('error', (error) => {
      clearTimeout(timer);
      resolve({ ok: false, reason: `cannot start the hook: ${error.message}` });
    });
    child.once('close', (code, signal) => {
      clearTimeout(timer);
      const tail = output.trim().slice(-300);
      if (code === 0) resolve({ ok: true });
      else
        resolve({
          ok: false,
          reason: `${signal !== null ? `killed by ${signal}` : `exit code ${code}`}${tail === '' ? '' : `: ${tail}`}`,
        });
    });
  });
}

// Reports ----------------------------------------------------------------------------------------

/**
 * Signs a report with the next sequence number, persists the new state (including the signed
 * report, and the applied version when given) BEFORE sending it, then submits it with fail-over.
 * A crash after the write sends the same report next round; a crash before it reuses nothing.
 */
async function report(
  round: Round,
  what: Pick<DeviceReportBody, 'version' | 'sha256' | 'status' | 'detail'>,
  applied?: { readonly lastAppliedVersion: number; readonly sha256: string | null },
): Promise<ReportOutcome> {
  const seq = round.state.nextSeq;
  const body: DeviceReportBody = {
    type: 'device-report',
    chainId: round.genesis.chainId,
    deviceId: round.id as DeviceId,
    seq,
    target: round.config.target as TargetName,
    version: what.version,
    sha256: what.sha256,
    status: what.status,
    detail: what.detail.slice(0, reportDetailLengthMax),
  };
  const tx = signAsDevice(body, round.key);
  round.state = { ...round.state, ...(applied ?? {}), nextSeq: seq + 1, pendingReport: tx };
  await writeDeviceState(round.dir, round.id, round.state);
  const outcome = await sendReport(round, tx);
  if (outcome.status !== 'rejected' || outcome.validator === null || !isReplay(outcome.reason))
    return outcome;
  return resendAfterLostCounter(round, body, outcome.validator, outcome);
}

/** The ledger's reason for a report whose seq is not above the device's last accepted one. */
function isReplay(reason: string | null): boolean {
  return reason !== null && /not above its last accepted seq|replay/i.test(reason);
}

/**
 * A report just signed with state.json's counter was refused as a replay: the device lost its
 * counter (state.json restored from an old backup or re-created). Ask the validator for the last
 * accepted seq, skip past it, and send the report once more under the new number. A lying
 * validator can only make the device skip numbers, which costs nothing. A resent pending report
 * never comes here: its refusal as a replay most likely means it was committed before a crash.
 */
async function resendAfterLostCounter(
  round: Round,
  body: DeviceReportBody,
  validator: string,
  refused: ReportOutcome,
): Promise<ReportOutcome> {
  let lastSeq: number;
  try {
    lastSeq = (await round.http.fetchDevice(validator, round.id, round.identity)).lastSeq;
  } catch (error) {
    round.log(`report: cannot read the last accepted seq from ${validator}: ${(error as Error).message}`);
    return refused;
  }
  if (lastSeq < body.seq || lastSeq >= Number.MAX_SAFE_INTEGER - 1) return refused;
  const seq = lastSeq + 1;
  round.log(
    `report: the ledger has accepted seq ${lastSeq} already (state.json lost its counter); resending as seq ${seq}`,
  );
  const tx = signAsDevice({ ...body, seq }, round.key);
  round.state = { ...round.state, nextSeq: seq + 1, pendingReport: tx };
  await writeDeviceState(round.dir, round.id, round.state);
  return sendReport(round, tx);
}

async function flushPendingReport(round: Round): Promise<void> {
  const tx = round.state.pendingReport;
  if (tx === null) return;
  round.log('report: sending the report a previous round could not deliver');
  await sendReport(round, tx);
}

async function sendReport(round: Round, tx: Transaction): Promise<ReportOutcome> {
  const body = tx.body as DeviceReportBody;
  for (const validator of round.config.validators) {
    let answer: Awaited<ReturnType<DeviceHttp['submitTx']>>;
    try {
      answer = await round.http.submitTx(validator, tx, deviceReportWaitMs, round.identity);
    } catch (error) {
      round.log(`report: ${validator} failed: ${(error as Error).message}; trying the next validator`);
      continue;
    }
    // Taken (committed or pending) or refused for good (a rule every validator applies alike,
    // such as a replayed seq after a crash): either way the report leaves the state.
    round.state = { ...round.state, pendingReport: null };
    await writeDeviceState(round.dir, round.id, round.state);
    const reason =
      answer.status === 'rejected' ? `${answer.code ?? 'REJECTED'}: ${answer.reason ?? ''}` : null;
    round.log(
      `report: seq ${body.seq} (${body.status}, version ${body.version}) ${answer.status} by ${validator}${reason === null ? '' : `: ${reason}`}`,
    );
    return { status: answer.status, seq: body.seq, txId: answer.txId, validator, reason };
  }
  round.log(`report: no validator took report seq ${body.seq}; it stays in state.json for the next round`);
  return { status: 'unsent', seq: body.seq, txId: null, validator: null, reason: 'no validator answered' };
}

// The loop ---------------------------------------------------------------------------------------

/**
 * The pause after `failures` failed rounds in a row: exponential from deviceBackoffMsMin, capped
 * at deviceBackoffMsMax, with jitter in [half, whole] so a fleet does not retry in lockstep.
 */
export function backoffMs(failures: number, random: () => number = Math.random): number {
  const exponent = Math.min(Math.max(failures - 1, 0), 30);
  const ceiling = Math.min(deviceBackoffMsMax, deviceBackoffMsMin * 2 ** exponent);
  return Math.round(ceiling / 2 + random() * (ceiling / 2));
}

export interface AgentOptions extends RoundOptions {
  /** Pause between rounds when the last one succeeded. */
  readonly intervalMs: number;
  /** Stops the loop (between rounds or during a pause). */
  readonly signal?: AbortSignal;
}

/** Runs rounds until the signal aborts: the interval after a good round, back-off after a bad one. */
export async function runAgent(options: AgentOptions): Promise<void> {
  let failures = 0;
  while (options.signal?.aborted !== true) {
    let result: RoundResult;
    try {
      result = await runRound(options);
    } catch (error) {
      if (error instanceof DeviceSetupError) throw error;
      result = {
        kind: 'failed',
        code: 'ERROR',
        reason: (error as Error).message,
        attempts: [],
        report: null,
      };
      options.log?.(`round: failed: ${(error as Error).message}`);
    }
    failures = roundSucceeded(result) ? 0 : failures + 1;
    const pause = failures === 0 ? options.intervalMs : backoffMs(failures);
    options.log?.(
      `round: ${describeResult(result)}; next round in ${pause} ms${failures > 0 ? ` (failure ${failures} in a row)` : ''}`,
    );
    await sleep(pause, options.signal);
  }
}

/** One line for a result, for logs and the CLI. */
export function describeResult(result: RoundResult): string {
  switch (result.kind) {
    case 'applied':
      return `applied ${result.target} version ${result.version}, report seq ${result.report.seq} ${result.report.status}`;
    case 'nothing-new':
      return `nothing new (${result.why}, version ${result.version})`;
    case 'waiting':
      return `waiting: ${result.reason} (version ${result.version} stays applied)`;
    case 'rolled-back':
      return `rolled back ${result.target} from version ${result.from} to ${result.version === 0 ? 'none' : `version ${result.version}`}, report seq ${result.report.seq} ${result.report.status}`;
    case 'refused':
      return `refused: ${result.code}: ${result.reason}`;
    case 'mismatch':
      return `mismatch: ${result.code}: ${result.reason}`;
    case 'failed':
      return `failed: ${result.code}: ${result.reason}`;
  }
}

function sleep(ms: number, signal: AbortSignal | undefined): Promise<void> {
  return new Promise((resolve) => {
    if (signal?.aborted === true) return resolve();
    const timer = setTimeout(done, ms);
    function done() {
      clearTimeout(timer);
      signal?.removeEventListener('abort', done);
      resolve();
    }
    signal?.addEventListener('abort', done, { once: true });
  });
}
