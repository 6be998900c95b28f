/**
 * Staged rollouts: which wave a device falls into, and how a rollout's state moves when it is
 * recorded, when devices of its target report, enroll or are revoked, and when an operator
 * controls it. Everything here is a pure function of its arguments, so every replica computes the
 * same entries; tx.ts decides when to call what and turns refusals into LedgerErrors.
 *
 * The rules:
 * - Wave i holds the devices whose bucket (waveBucket) is below waves[i] and not below waves[i-1].
 * - A wave's threshold is its device count minus the failures it may have
 *   (floor(devices * maxFailuresPercent / 100)); when the successes of the newest open wave reach
 *   its threshold, the next wave opens; when the last wave reaches it, the rollout is done.
 * - When a failure makes a wave's failures exceed maxFailuresPercent of its devices, a running
 *   rollout halts, with the reason. Reports still count while halted or aborted, but no wave opens.
 * - Each device counts once per rollout: its latest report on the rollout's version decides
 *   whether it counts as a success ("applied" with the release's sha256) or a failure (anything
 *   else: "failed", "mismatch", or "applied" with other bytes).
 */
import { sha256 } from '../crypto/hash.ts';
import type { Hash32Hex, Height, TxId } from '../encoding/brand.ts';
import { canonicalBytes } from '../encoding/canonical.ts';
import { assert } from '../errors.ts';
import type { RolloutBody, RolloutControlBody, RolloutEntry, RolloutOutcome, WaveProgress } from './types.ts';

/** Prefix of the hashed bytes, so a wave bucket can never be mistaken for another hash. */
const WAVE_TAG = Buffer.from('configchain/v1/rollout-wave\u0000');

/**
 * The device's bucket in [0, 100) for this rollout: the first 6 bytes of
 * SHA-256("configchain/v1/rollout-wave" || 0x00 || canonical JSON {"deviceId":..,"rolloutId":..})
 * as an integer, scaled down. Canonical JSON keeps the two strings apart without ambiguity, and a
 * new rollout id reshuffles which devices go first.
 */
export function waveBucket(deviceId: string, rolloutId: string): number {
  const digest = sha256(Buffer.concat([WAVE_TAG, canonicalBytes({ deviceId, rolloutId })]));
  // Exact in doubles although x * 100 can exceed 2^53 (x, the 48-bit prefix, is below 2^48):
  // x * 100 = (x * 25) * 2^2 with x * 25 < 2^53, so it is representable; / 2^48 shifts the exponent.
  const bucket = Math.floor((digest.readUIntBE(0, 6) * 100) / 2 ** 48);
  assert(bucket >= 0 && bucket < 100, 'a wave bucket is in [0, 100)');
  return bucket;
}

/** Is this a valid waves list: strictly ascending integers in 1..100, the last one 100? */
export function wavesValid(waves: readonly number[]): boolean {
  if (waves.length === 0 || waves.at(-1) !== 100) return false;
  let previous = 0;
  for (const percent of waves) {
    if (!Number.isSafeInteger(percent) || percent <= previous || percent > 100) return false;
    previous = percent;
  }
  return true;
}

/** The index of the wave this device falls into in this rollout. */
export function waveOf(deviceId: string, rolloutId: string, waves: readonly number[]): number {
  assert(wavesValid(waves), `waves ${JSON.stringify(waves)} are strictly ascending and end at 100`);
  const bucket = waveBucket(deviceId, rolloutId);
  const wave = waves.findIndex((percent) => bucket < percent);
  assert(wave >= 0, 'the last wave (100) takes every bucket');
  return wave;
}

/** The successes that open the next wave: the wave's devices minus the failures it may have. */
export function waveThreshold(progress: WaveProgress, maxFailuresPercent: number): number {
  return progress.devices - Math.floor((progress.devices * maxFailuresPercent) / 100);
}

/** Do the wave's failures exceed maxFailuresPercent of its devices? */
export function waveFailed(progress: WaveProgress, maxFailuresPercent: number): boolean {
  return progress.failures * 100 > maxFailuresPercent * progress.devices;
}

/**
 * May a device of this wave start updating to the rollout's version now? Every wave once done;
 * the open waves while running; none while halted or aborted, which pause the rollout (a device
 * that already updated keeps its version; a rollback tells it to go back).
 */
export function waveOpen(entry: RolloutEntry, wave: number): boolean {
  switch (entry.status) {
    case 'done':
      return true;
    case 'running':
      return wave <= entry.currentWave;
    case 'halted':
    case 'aborted':
      return false;
  }
}

/** Is the rollout under way (running or halted)? Then its target takes no new rollout. */
export function rolloutActive(entry: RolloutEntry): boolean {
  return entry.status === 'running' || entry.status === 'halted';
}

/**
 * Does the rollout still follow its devices (enrollments, revocations, reports)? Also while
 * aborted, because an aborted rollout can be resumed and must then have exact counts; no longer
 * once done or rolled back, which are final.
 */
export function rolloutCounting(entry: RolloutEntry): boolean {
  return entry.status !== 'done' && !entry.rollback;
}

/**
 * A new rollout's entry, given how many enrolled devices of the target fall into each wave.
 * Empty waves open at once, so a rollout to an empty group is done when recorded.
 */
export function startRollout(
  body: RolloutBody,
  sha256: Hash32Hex,
  devicesPerWave: readonly number[],
  txId: TxId,
  height: Height,
): RolloutEntry {
  assert(devicesPerWave.length === body.waves.length, 'one device count per wave');
  const entry: RolloutEntry = {
    kind: 'rollout',
    rolloutId: body.rolloutId,
    target: body.target,
    version: body.version,
    sha256,
    waves: body.waves,
    maxFailuresPercent: body.maxFailuresPercent,
    status: 'running',
    rollback: false,
    reason: '',
    currentWave: 0,
    progress: devicesPerWave.map((devices) => ({ devices, successes: 0, failures: 0 })),
    controlSeq: 0,
    createdAt: height,
    txId,
  };
  return settle(entry);
}

/**
 * Counts a device's report on the rollout's version. `previous` is how the device counted before
 * in this rollout (null if it never reported on it); the device moves from that count to the new
 * one, so repeating a report changes nothing.
 */
export function countReport(
  entry: RolloutEntry,
  wave: number,
  previous: RolloutOutcome | null,
  outcome: RolloutOutcome,
): RolloutEntry {
  assert(rolloutCounting(entry), 'only a rollout that is not done or rolled back counts reports');
  if (previous === outcome) return entry;
  const moved = adjust(entry, wave, (p) => ({
    devices: p.devices,
    successes: p.successes + (outcome === 'success' ? 1 : 0) - (previous === 'success' ? 1 : 0),
    failures: p.failures + (outcome === 'failure' ? 1 : 0) - (previous === 'failure' ? 1 : 0),
  }));
  const progress = moved.progress[wave];
  assert(progress !== undefined, 'the wave exists');
  if (outcome === 'failure' && moved.status === 'running' && waveFailed(progress, moved.maxFailuresPercent)) {
    return {
      ...moved,
      status: 'halted',
      reason: `wave ${wave + 1} of ${moved.waves.length}: ${progress.failures} of its ${progress.devices} device(s) failed, more than ${moved.maxFailuresPercent}%; fix the release and resume, or roll back`,
    };
  }
  return settle(moved);
}

/**
 * A device of the target joins (delta +1, enrolled) or leaves (delta -1, revoked) the rollout's
 * wave; a leaving device's counted report leaves with it.
 */
export function changeMembership(
  entry: RolloutEntry,
  wave: number,
  delta: 1 | -1,
  counted: RolloutOutcome | null,
): RolloutEntry {
  assert(rolloutCounting(entry), 'only a rollout that is not done or rolled back follows its devices');
  assert(delta === -1 || counted === null, 'a joining device has no counted report');
  const moved = adjust(entry, wave, (p) => ({
    devices: p.devices + delta,
    successes: p.successes - (counted === 'success' ? 1 : 0),
    failures: p.failures - (counted === 'failure' ? 1 : 0),
  }));
  return settle(moved);
}

/**
 * An operator's control, or the reason it does not apply to a rollout in this status (returned as
 * a string, for tx.ts to refuse with). abort: running or halted -> aborted. resume: halted or
 * aborted -> running, and waves open again by the rules. rollback: any status except rolled back
 * -> aborted with rollback set; final.
 */
export function controlRollout(
  entry: RolloutEntry,
  body: RolloutControlBody,
  admin: string,
): RolloutEntry | string {
  if (entry.rollback) return `rollout ${entry.rolloutId} was rolled back; a rollback is final`;
  const base = { ...entry, controlSeq: entry.controlSeq + 1 };
  switch (body.action) {
    case 'abort':
      if (!rolloutActive(entry))
        return `rollout ${entry.rolloutId} is ${entry.status}; only a running or halted rollout can be aborted`;
      return { ...base, status: 'aborted', reason: `aborted by admin ${admin}` };
    case 'resume':
      if (entry.status !== 'halted' && entry.status !== 'aborted') {
        return `rollout ${entry.rolloutId} is ${entry.status}; only a halted or aborted rollout can be resumed`;
      }
      return settle({ ...base, status: 'running', reason: '' });
    case 'rollback':
      return { ...base, status: 'aborted', rollback: true, reason: `rolled back by admin ${admin}` };
  }
}

function adjust(entry: RolloutEntry, wave: number, change: (p: WaveProgress) => WaveProgress): RolloutEntry {
  const progress = entry.progress.map((p, i) => (i === wave ? change(p) : p));
  const next = progress[wave];
  assert(next !== undefined, `wave ${wave} exists in a rollout of ${entry.progress.length} waves`);
  assert(
    next.devices >= 0 && next.successes >= 0 && next.failures >= 0,
    `wave ${wave} counts stay non-negative: ${JSON.stringify(next)}`,
  );
  return { ...entry, progress };
}

/** Opens waves while a running rollout's newest open wave has reached its threshold. */
function settle(entry: RolloutEntry): RolloutEntry {
  if (entry.status !== 'running') return entry;
  let wave = entry.currentWave;
  for (;;) {
    const progress = entry.progress[wave];
    assert(progress !== undefined, 'the current wave exists');
    if (progress.successes < waveThreshold(progress, entry.maxFailuresPercent)) {
      return wave === entry.currentWave ? entry : { ...entry, currentWave: wave };
    }
    if (wave === entry.progress.length - 1) {
      return { ...entry, currentWave: wave, status: 'done', reason: 'every wave reached its threshold' };
    }
    wave += 1;
  }
}
