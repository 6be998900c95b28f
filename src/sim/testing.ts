/**
 * Test helpers for the simulator's seed suites: run a fixed range of seeds in this process and
 * fail with the full reports (seed, reproduce command, plan, trace) of the seeds that broke a rule.
 */
import assert from 'node:assert/strict';
import type { ViolationKind } from './checkers.ts';
import { formatFailure } from './report.ts';
import { type BatchOptions, type RunSummary, runBatch, seedOptions } from './runner.ts';
import { runSeed, type SeedResult } from './simulator.ts';

export function assertSeedsPass(first: number, count: number, batch: BatchOptions): RunSummary {
  const { summary, failures } = runBatch(first, count, batch);
  assert.equal(summary.seeds, count);
  const reports = failures.slice(0, 3).map((f) => formatFailure(f, batch));
  assert.deepEqual(
    summary.failedSeeds,
    [],
    `seeds ${summary.failedSeeds.join(', ')} found violations:\n\n${reports.join('\n\n')}`,
  );
  return summary;
}

/**
 * The first seed in first..first+limit-1 that finds a violation of one of `kinds`, or undefined.
 * Other violations (a liveness failure while hunting a safety bug) do not count as found.
 */
export function firstFailingSeed(
  first: number,
  limit: number,
  batch: BatchOptions,
  kinds: readonly ViolationKind[],
): { result: SeedResult | undefined; seedsRun: number; otherFailures: number[] } {
  const otherFailures: number[] = [];
  for (let seed = first; seed < first + limit; seed++) {
    const result = runSeed(seedOptions(seed, batch));
    if (result.violations.some((v) => kinds.includes(v.kind))) {
      return { result, seedsRun: seed - first + 1, otherFailures };
    }
    if (result.violations.length > 0) otherFailures.push(seed);
  }
  return { result: undefined, seedsRun: limit, otherFailures };
}
