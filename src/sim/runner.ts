/**
 * Runs many seeds and folds their results into one summary. Which n and how many Byzantine
 * replicas a seed uses is a pure function of the seed and the options, so a seed reproduces alone
 * (`--seed S --n N --byzantine K`) whatever batch or worker it first ran in, and a summary does
 * not depend on how seeds were spread over workers.
 */

import type { ReplicaFaults } from '../consensus/types.ts';
import { simFailuresKeptMax } from '../constants.ts';
import { sha256 } from '../crypto/hash.ts';
import { assert } from '../errors.ts';
import type { ViolationKind } from './checkers.ts';
import type { ByzantineBehaviour } from './faults.ts';
import { runSeed, type SeedResult, type SimOptions } from './simulator.ts';

export const simSizes = [4, 7, 10] as const;

/** The broken replica variants the CLI and tests can switch on (TEST-ONLY fault switches). */
export const brokenVariants = {
  'commit-on-2f': { commitOnTwoF: true },
  'new-view-ignores-prepared': { newViewIgnoresPrepared: true },
  'skip-digest-check': { skipPrePrepareDigestCheck: true },
} as const satisfies Record<string, ReplicaFaults>;

export type BrokenVariant = keyof typeof brokenVariants;

export interface BatchOptions {
  /** Validators per run; undefined mixes 4, 7 and 10 by seed. */
  readonly n?: number | undefined;
  /** Byzantine replicas per run; undefined lets each seed choose 0..f. */
  readonly byzantine?: number | undefined;
  readonly behaviours?: readonly ByzantineBehaviour[] | undefined;
  readonly broken?: BrokenVariant | undefined;
  readonly safetyPhaseMs?: number | undefined;
  readonly livenessPhaseMs?: number | undefined;
  readonly requests?: number | undefined;
}

/** The simulator options of one seed in a batch. */
export function seedOptions(seed: number, batch: BatchOptions): SimOptions {
  const n = batch.n ?? simSizes[(sha256(`configchain/sim/n/${seed}`)[0] ?? 0) % simSizes.length];
  assert(n !== undefined, 'a size was chosen');
  return {
    seed,
    n,
    byzantine: batch.byzantine,
    behaviours: batch.behaviours,
    replicaFaults: batch.broken === undefined ? undefined : brokenVariants[batch.broken],
    safetyPhaseMs: batch.safetyPhaseMs,
    livenessPhaseMs: batch.livenessPhaseMs,
    requests: batch.requests,
  };
}

/** The command that reruns one seed exactly. */
export function reproduceCommand(result: SeedResult, batch: BatchOptions): string {
  const parts = [
    'npm run sim --',
    `--seed ${result.seed}`,
    `--n ${result.n}`,
    `--byzantine ${result.byzantine.length}`,
  ];
  if (batch.broken !== undefined) parts.push(`--broken ${batch.broken}`);
  if (batch.behaviours !== undefined) parts.push(`--behaviours ${batch.behaviours.join(',')}`);
  if (batch.safetyPhaseMs !== undefined) parts.push(`--safety-ms ${batch.safetyPhaseMs}`);
  if (batch.livenessPhaseMs !== undefined) parts.push(`--liveness-ms ${batch.livenessPhaseMs}`);
  if (batch.requests !== undefined) parts.push(`--requests ${batch.requests}`);
  return parts.join(' ');
}

export interface RunSummary {
  seeds: number;
  failedSeeds: number[];
  blocksCommitted: number;
  viewChanges: number;
  events: number;
  virtualMs: number;
  signatureChecks: number;
  requestsSubmitted: number;
  faults: Record<string, number>;
  violations: Partial<Record<ViolationKind, number>>;
  seedsByN: Record<string, number>;
  seedsByByzantine: Record<string, number>;
}

/** Failures kept in full (plan and trace) in a summary; the rest are listed by seed only. */
export const failuresKeptMax = simFailuresKeptMax;

export function emptySummary(): RunSummary {
  return {
    seeds: 0,
    failedSeeds: [],
    blocksCommitted: 0,
    viewChanges: 0,
    events: 0,
    virtualMs: 0,
    signatureChecks: 0,
    requestsSubmitted: 0,
    faults: {},
    violations: {},
    seedsByN: {},
    seedsByByzantine: {},
  };
}

/** Adds one seed's result to a summary (order-independent: sums, and a sorted failure list). */
export function addResult(summary: RunSummary, r: SeedResult): void {
  summary.seeds++;
  summary.blocksCommitted += r.blocksCommitted;
  summary.viewChanges += r.viewChanges;
  summary.events += r.events;
  summary.virtualMs += r.virtualMs;
  summary.signatureChecks += r.signatureChecks;
  summary.requestsSubmitted += r.requestsSubmitted;
  for (const [kind, count] of Object.entries(r.faults))
    summary.faults[kind] = (summary.faults[kind] ?? 0) + count;
  for (const v of r.violations) summary.violations[v.kind] = (summary.violations[v.kind] ?? 0) + 1;
  summary.seedsByN[r.n] = (summary.seedsByN[r.n] ?? 0) + 1;
  const k = r.byzantine.length;
  summary.seedsByByzantine[k] = (summary.seedsByByzantine[k] ?? 0) + 1;
  if (r.violations.length > 0) {
    summary.failedSeeds.push(r.seed);
    summary.failedSeeds.sort((a, b) => a - b);
  }
}

export function mergeSummaries(into: RunSummary, from: RunSummary): void {
  into.seeds += from.seeds;
  into.blocksCommitted += from.blocksCommitted;
  into.viewChanges += from.viewChanges;
  into.events += from.events;
  into.virtualMs += from.virtualMs;
  into.signatureChecks += from.signatureChecks;
  into.requestsSubmitted += from.requestsSubmitted;
  for (const [k, c] of Object.entries(from.faults)) into.faults[k] = (into.faults[k] ?? 0) + c;
  for (const [k, c] of Object.entries(from.violations)) {
    const kind = k as ViolationKind;
    into.violations[kind] = (into.violations[kind] ?? 0) + (c ?? 0);
  }
  for (const [k, c] of Object.entries(from.seedsByN)) into.seedsByN[k] = (into.seedsByN[k] ?? 0) + c;
  for (const [k, c] of Object.entries(from.seedsByByzantine))
    into.seedsByByzantine[k] = (into.seedsByByzantine[k] ?? 0) + c;
  into.failedSeeds.push(...from.failedSeeds);
  into.failedSeeds.sort((a, b) => a - b);
}

/**
 * Runs seeds first..first+count-1 in this thread. `onResult` sees every result (progress bars,
 * failure reports); failures beyond failuresKeptMax are counted but not kept.
 */
export function runBatch(
  first: number,
  count: number,
  batch: BatchOptions,
  onResult?: (result: SeedResult) => void,
): { summary: RunSummary; failures: SeedResult[] } {
  assert(Number.isSafeInteger(first) && first >= 0, 'the first seed must be a non-negative integer');
  assert(Number.isSafeInteger(count) && count >= 0, 'the seed count must be a non-negative integer');
  const summary = emptySummary();
  const failures: SeedResult[] = [];
  for (let seed = first; seed < first + count; seed++) {
    const result = runSeed(seedOptions(seed, batch));
    addResult(summary, result);
    if (result.violations.length > 0 && failures.length < failuresKeptMax) failures.push(result);
    onResult?.(result);
  }
  return { summary, failures };
}
