/**
 * Fault plans: everything bad that will happen in one run, chosen up front from the seed. A plan
 * has a safety phase (faults active: loss, duplication, delay, partitions, crashes, a slow replica,
 * Byzantine replicas) and a liveness phase (the network calms down, partitions heal, crashed
 * replicas restart; only the at most f Byzantine replicas stay faulty). Choosing the plan first
 * makes a failing seed easy to read: the plan is printed with the trace.
 */
import { faultsTolerated } from '../consensus/certificate.ts';
import { assert } from '../errors.ts';
import type { NetworkConditions } from './network.ts';
import type { Rng } from './rng.ts';

/** What a Byzantine replica does; a Byzantine replica gets one or more of these. */
export const byzantineBehaviours = [
  /** As primary, sends different blocks to different backups for the same sequence number. */
  'equivocate',
  /** Sends prepares and commits for different digests to different peers. */
  'conflicting-votes',
  /** Sends messages with garbage signatures or claiming other validators as sender. */
  'bad-signatures',
  /** Sends nothing at all. */
  'silent',
  /** Records messages it sees and resends them much later. */
  'replay',
  /** Sends view-change and new-view messages with forged prepared sets and wrong O sets. */
  'bogus-view-change',
  /** As primary, proposes blocks the application rejects, or whose digest does not match. */
  'invalid-block',
] as const;

export type ByzantineBehaviour = (typeof byzantineBehaviours)[number];

export type ScheduledFault =
  | { readonly atMs: number; readonly kind: 'crash'; readonly replica: number }
  | { readonly atMs: number; readonly kind: 'restart'; readonly replica: number }
  | { readonly atMs: number; readonly kind: 'partition'; readonly isolated: readonly number[] }
  | { readonly atMs: number; readonly kind: 'heal' }
  | { readonly atMs: number; readonly kind: 'slow'; readonly replica: number; readonly extraMs: number }
  | { readonly atMs: number; readonly kind: 'unslow' }
  /** Drops messages of one kind sent to some replicas, with a probability, until 'unfilter'. */
  | {
      readonly atMs: number;
      readonly kind: 'filter';
      readonly messageKind: FilteredKind;
      readonly to: readonly number[];
      readonly probability: number;
    }
  | { readonly atMs: number; readonly kind: 'unfilter' };

export const filteredKinds = [
  'pre-prepare',
  'prepare',
  'commit',
  'checkpoint',
  'view-change',
  'new-view',
] as const;
export type FilteredKind = (typeof filteredKinds)[number];

export type FaultKind =
  | ScheduledFault['kind']
  | 'loss'
  | 'duplicate'
  | 'partition-drop'
  | 'filter-drop'
  | 'crashed-drop'
  | `byzantine:${ByzantineBehaviour}`;

export interface ByzantineReplica {
  readonly id: number;
  readonly behaviours: readonly ByzantineBehaviour[];
}

export interface FaultPlan {
  readonly n: number;
  readonly f: number;
  readonly byzantine: readonly ByzantineReplica[];
  readonly safetyNetwork: NetworkConditions;
  /** Sorted by time; every entry falls inside the safety phase. */
  readonly schedule: readonly ScheduledFault[];
  readonly safetyPhaseMs: number;
  /** Valid requests submitted before the end of the run must commit within this bound after the heal. */
  readonly livenessPhaseMs: number;
}

export interface PlanOptions {
  readonly n: number;
  /** Exact number of Byzantine replicas, or undefined to let the seed choose 0..f. */
  readonly byzantine?: number | undefined;
  /** Restrict Byzantine replicas to these behaviours (tests use it to aim at one path). */
  readonly behaviours?: readonly ByzantineBehaviour[] | undefined;
  readonly safetyPhaseMs: number;
  readonly livenessPhaseMs: number;
}

/** f for n validators: the consensus core's own rule, so the simulator cannot disagree with it. */
export const faultyCount = faultsTolerated;

/** Draws a fault plan from the seed's generator. */
export function choosePlan(rng: Rng, options: PlanOptions): FaultPlan {
  const { n, safetyPhaseMs, livenessPhaseMs } = options;
  assert(n >= 4, `PBFT needs n >= 4, got ${n}`);
  const f = faultyCount(n);
  // The draw happens even when the count is given, so that `--byzantine K` with the count a
  // mixed run chose reproduces that run exactly.
  const drawn = rng.int(0, f);
  const k = options.byzantine ?? drawn;
  assert(k >= 0 && k <= f, `at most f = ${f} Byzantine replicas for n = ${n}, asked for ${k}`);
  const allowed = options.behaviours ?? byzantineBehaviours;
  assert(allowed.length > 0, 'at least one Byzantine behaviour must be allowed');

  const ids = Array.from({ length: n }, (_, i) => i);
  const byzantine = rng
    .sample(ids, k)
    .sort((a, b) => a - b)
    .map((id) => ({ id, behaviours: chooseBehaviours(rng, allowed) }));

  // Each seed picks an intensity so the set mixes calm runs, lossy runs and chaotic ones.
  const intensity = rng.pick(['calm', 'lossy', 'chaotic'] as const);
  const safetyNetwork: NetworkConditions =
    intensity === 'calm'
      ? { lossProbability: 0, duplicateProbability: 0.02, delayMsMin: 1, delayMsMax: 20 }
      : intensity === 'lossy'
        ? {
            lossProbability: rng.int(1, 10) / 100,
            duplicateProbability: rng.int(0, 10) / 100,
            delayMsMin: 1,
            delayMsMax: rng.int(20, 100),
          }
        : {
            lossProbability: rng.int(5, 30) / 100,
            duplicateProbability: rng.int(5, 30) / 100,
            delayMsMin: 0,
            delayMsMax: rng.int(50, 400),
          };

  const schedule: ScheduledFault[] = [];
  const eventCount = intensity === 'calm' ? rng.int(0, 2) : rng.int(1, 6);
  const end = safetyPhaseMs - 1;
  for (let i = 0; i < eventCount; i++) {
    const atMs = rng.int(0, Math.max(0, end - 1));
    const kind = rng.pick(['crash', 'partition', 'slow', 'filter'] as const);
    if (kind === 'crash') {
      const replica = rng.int(0, n - 1);
      schedule.push({ atMs, kind: 'crash', replica });
      // Most crashed replicas come back during the safety phase; the rest at the heal.
      if (rng.chance(0.7)) schedule.push({ atMs: rng.int(atMs + 1, end), kind: 'restart', replica });
    } else if (kind === 'partition') {
      const size = rng.int(1, Math.max(1, Math.floor(n / 2)));
      const isolated = rng.sample(ids, size).sort((a, b) => a - b);
      schedule.push({ atMs, kind: 'partition', isolated });
      if (rng.chance(0.7)) schedule.push({ atMs: rng.int(atMs + 1, end), kind: 'heal' });
    } else if (kind === 'filter') {
      const to = rng.sample(ids, rng.int(1, n - 1)).sort((a, b) => a - b);
      // Lost commits are weighted up: a sequence number committed at some replicas and only
      // prepared at the others, then a view change, is where PBFT's subtle rules matter.
      const messageKind = rng.chance(0.5) ? 'commit' : rng.pick(filteredKinds);
      schedule.push({ atMs, kind: 'filter', messageKind, to, probability: rng.pick([0.5, 0.9, 1]) });
      schedule.push({ atMs: rng.int(atMs + 1, end), kind: 'unfilter' });
    } else {
      schedule.push({ atMs, kind: 'slow', replica: rng.int(0, n - 1), extraMs: rng.int(50, 1000) });
      if (rng.chance(0.5)) schedule.push({ atMs: rng.int(atMs + 1, end), kind: 'unslow' });
    }
  }
  // A stable sort by time keeps each crash before its own restart when both fall on one ms.
  schedule.sort((a, b) => a.atMs - b.atMs);
  for (const fault of schedule) assert(fault.atMs < safetyPhaseMs, 'faults belong to the safety phase');

  return { n, f, byzantine, safetyNetwork, schedule, safetyPhaseMs, livenessPhaseMs };
}

function chooseBehaviours(rng: Rng, allowed: readonly ByzantineBehaviour[]): ByzantineBehaviour[] {
  const count = rng.int(1, Math.min(3, allowed.length));
  return rng.sample(allowed, count).sort();
}

/** One line per plan element, for the failure report. */
export function describePlan(plan: FaultPlan): string[] {
  const lines = [
    `n=${plan.n} f=${plan.f} safety=${plan.safetyPhaseMs}ms liveness=${plan.livenessPhaseMs}ms`,
    `network (safety phase): loss=${plan.safetyNetwork.lossProbability} dup=${plan.safetyNetwork.duplicateProbability} delay=${plan.safetyNetwork.delayMsMin}..${plan.safetyNetwork.delayMsMax}ms`,
  ];
  for (const b of plan.byzantine) lines.push(`byzantine replica ${b.id}: ${b.behaviours.join(', ')}`);
  for (const s of plan.schedule) lines.push(`at ${s.atMs}ms: ${describeFault(s)}`);
  return lines;
}

export function describeFault(fault: ScheduledFault): string {
  switch (fault.kind) {
    case 'crash':
    case 'restart':
      return `${fault.kind} replica ${fault.replica}`;
    case 'partition':
      return `partition {${fault.isolated.join(',')}} from the rest`;
    case 'heal':
      return 'heal partition';
    case 'slow':
      return `replica ${fault.replica} slow by +${fault.extraMs}ms`;
    case 'unslow':
      return 'no slow replica';
    case 'filter':
      return `drop ${fault.messageKind} messages to {${fault.to.join(',')}} with p=${fault.probability}`;
    case 'unfilter':
      return 'stop dropping by kind';
  }
}
