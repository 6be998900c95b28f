/**
 * Human-readable output of the simulator: the run summary and, for a failed seed, the seed, the
 * command that reproduces it, its fault plan, its violations and the last trace entries. Failure
 * reports are also written to a file under the OS temp directory so a long run's output can be
 * read later. The one module of src/sim allowed to print.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type BatchOptions, type RunSummary, reproduceCommand } from './runner.ts';
import type { SeedResult } from './simulator.ts';

export function formatFailure(result: SeedResult, batch: BatchOptions): string {
  const lines = [
    `=== seed ${result.seed} FAILED (n=${result.n}, byzantine=[${result.byzantine.join(',')}])`,
    `reproduce: ${reproduceCommand(result, batch)}`,
    '',
    'violations:',
    ...result.violations.map(
      (v) => `  ${v.kind} at replica ${v.replica}, height ${v.height}, t=${v.timeMs}ms: ${v.detail}`,
    ),
    '',
    'fault plan:',
    ...result.plan.map((l) => `  ${l}`),
    '',
    `last ${result.milestones.length} milestones (faults, crashes, restarts, views, deliveries):`,
    ...result.milestones.map((l) => `  ${l}`),
    '',
    `last ${result.trace.length} trace entries (every message as it arrives):`,
    ...result.trace.map((l) => `  ${l}`),
  ];
  return lines.join('\n');
}

/** Writes a failure report file and returns its path. */
export function writeFailureFile(result: SeedResult, batch: BatchOptions): string {
  const dir = join(tmpdir(), 'configchain-sim');
  mkdirSync(dir, { recursive: true });
  const path = join(
    dir,
    `seed-${result.seed}-n${result.n}${batch.broken === undefined ? '' : `-${batch.broken}`}.txt`,
  );
  writeFileSync(path, `${formatFailure(result, batch)}\n`);
  return path;
}

export function printFailure(result: SeedResult, batch: BatchOptions): void {
  const path = writeFailureFile(result, batch);
  console.error(formatFailure(result, batch));
  console.error(`(report written to ${path})\n`);
}

export function formatSummary(summary: RunSummary, elapsedMs: number): string {
  const faults = Object.entries(summary.faults)
    .sort(([a], [b]) => a.localeCompare(b))
    .map(([k, c]) => `    ${k.padEnd(30)} ${c}`);
  const violations = Object.entries(summary.violations).map(([k, c]) => `    ${k.padEnd(30)} ${c}`);
  const byN = Object.entries(summary.seedsByN)
    .map(([n, c]) => `n=${n}: ${c}`)
    .join(', ');
  const byK = Object.entries(summary.seedsByByzantine)
    .map(([k, c]) => `${k}: ${c}`)
    .join(', ');
  const failed = summary.failedSeeds;
  const lines = [
    'simulation summary',
    `  seeds                 ${summary.seeds} (${byN}; byzantine replicas ${byK})`,
    `  blocks committed      ${summary.blocksCommitted}`,
    `  view changes          ${summary.viewChanges}`,
    `  requests submitted    ${summary.requestsSubmitted}`,
    `  events simulated      ${summary.events}`,
    `  virtual time          ${(summary.virtualMs / 1000).toFixed(1)} s`,
    `  signature checks      ${summary.signatureChecks}`,
    '  faults injected',
    ...(faults.length > 0 ? faults : ['    none']),
    `  violations            ${violations.length === 0 ? 0 : ''}`,
    ...violations,
    `  failed seeds          ${failed.length === 0 ? 'none' : `${failed.length}: ${failed.slice(0, 30).join(', ')}${failed.length > 30 ? ', ...' : ''}`}`,
    `  elapsed               ${(elapsedMs / 1000).toFixed(1)} s (${summary.seeds > 0 ? (elapsedMs / summary.seeds).toFixed(1) : '-'} ms/seed)`,
  ];
  return lines.join('\n');
}
