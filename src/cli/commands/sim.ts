/**
 * `configchain sim`: runs the deterministic simulator over many seeds and prints a summary. Exits
 * non-zero when any seed finds a violation, printing each failure with the command that
 * reproduces it.
 */
import { availableParallelism } from 'node:os';
import { type Command, InvalidArgumentError, Option } from 'commander';
import { validatorsMax } from '../../constants.ts';
import { type ByzantineBehaviour, byzantineBehaviours, faultyCount } from '../../sim/faults.ts';
import { runPool } from '../../sim/pool.ts';
import { formatSummary, printFailure } from '../../sim/report.ts';
import { type BatchOptions, type BrokenVariant, brokenVariants, simSizes } from '../../sim/runner.ts';
import { wholeNumberOption } from '../args.ts';

/** The most seeds one command runs; a larger sweep is several commands with --seed offsets. */
const seedsPerCommandMax = 10_000_000;
/** Failures printed in full; the summary lists every failed seed. */
const failuresPrintedMax = 10;

function behaviourList(value: string): ByzantineBehaviour[] {
  const list = value.split(',').map((s) => s.trim());
  for (const b of list) {
    if (!(byzantineBehaviours as readonly string[]).includes(b)) {
      throw new InvalidArgumentError(`unknown behaviour ${b}; choose from ${byzantineBehaviours.join(', ')}`);
    }
  }
  return list as ByzantineBehaviour[];
}

interface SimCliOptions {
  seeds?: number;
  seed?: number;
  n?: number;
  byzantine?: number;
  workers?: number;
  broken?: BrokenVariant;
  behaviours?: ByzantineBehaviour[];
  safetyMs?: number;
  livenessMs?: number;
  requests?: number;
  progress: boolean;
}

export function registerSim(program: Command): void {
  program
    .command('sim')
    .description(
      'run the deterministic PBFT simulator: real replicas, a seeded faulty network, Byzantine replicas, ' +
        'and checkers for agreement, validity, certificates, ordering and liveness',
    )
    .option(
      '--seeds <count>',
      'number of seeds to run (default 1 with --seed, else 100)',
      wholeNumberOption('--seeds', 1, seedsPerCommandMax),
    )
    .option(
      '--seed <seed>',
      'first seed (a single seed reproduces a reported failure)',
      wholeNumberOption('--seed', 0, Number.MAX_SAFE_INTEGER),
    )
    .option(
      '--n <validators>',
      'validators per run, usually 4, 7 or 10 (default: a mix of 4, 7 and 10)',
      wholeNumberOption('--n', 4, validatorsMax),
    )
    .option(
      '--byzantine <count>',
      'Byzantine replicas per run, at most f (default: each seed picks 0..f)',
      wholeNumberOption('--byzantine', 0, 21),
    )
    .option(
      '--workers <count>',
      'worker threads (default: one per core; 1 runs in this thread)',
      wholeNumberOption('--workers', 1, 64),
    )
    .addOption(
      new Option(
        '--broken <variant>',
        'TEST-ONLY: run honest replicas with a deliberately broken rule',
      ).choices(Object.keys(brokenVariants)),
    )
    .option(
      '--behaviours <list>',
      `restrict Byzantine behaviours (${byzantineBehaviours.join(',')})`,
      behaviourList,
    )
    .option(
      '--safety-ms <ms>',
      'virtual length of the faulty phase',
      wholeNumberOption('--safety-ms', 100, 600_000),
    )
    .option(
      '--liveness-ms <ms>',
      'bound within which requests must commit after the heal',
      wholeNumberOption('--liveness-ms', 1000, 3_600_000),
    )
    .option(
      '--requests <count>',
      'client requests per seed (default: each seed picks 8..30)',
      wholeNumberOption('--requests', 0, 10_000),
    )
    .option('--no-progress', 'do not print progress')
    .action(async (opts: SimCliOptions) => {
      const first = opts.seed ?? 1;
      const count = opts.seeds ?? (opts.seed === undefined ? 100 : 1);
      if (opts.byzantine !== undefined) {
        const sizes = opts.n === undefined ? simSizes : [opts.n];
        const smallest = Math.min(...sizes.map(faultyCount));
        if (opts.byzantine > smallest) {
          console.error(
            `--byzantine ${opts.byzantine} is more than f = ${smallest} for n = ${Math.min(...sizes)}; ` +
              'PBFT only promises safety up to f Byzantine replicas. Lower it or pick a larger --n.',
          );
          process.exitCode = 2;
          return;
        }
      }
      const batch: BatchOptions = {
        n: opts.n,
        byzantine: opts.byzantine,
        behaviours: opts.behaviours,
        broken: opts.broken,
        safetyPhaseMs: opts.safetyMs,
        livenessPhaseMs: opts.livenessMs,
        requests: opts.requests,
      };
      const workers = opts.workers ?? (count < 50 ? 1 : availableParallelism());
      console.log(
        `configchain sim: seeds ${first}..${first + count - 1}, n=${opts.n ?? 'mixed 4/7/10'}, ` +
          `byzantine=${opts.byzantine ?? 'mixed 0..f'}${opts.broken === undefined ? '' : `, BROKEN replica: ${opts.broken}`}, ` +
          `${workers} worker(s)`,
      );
      const started = performance.now();
      let lastPrint = started;
      let printed = 0;
      const { summary } = await runPool({
        first,
        count,
        batch,
        workers,
        onProgress: (done) => {
          if (!opts.progress) return;
          const now = performance.now();
          const elapsed = ((now - started) / 1000).toFixed(0);
          if (process.stderr.isTTY) {
            if (now - lastPrint > 500 || done === count) {
              lastPrint = now;
              process.stderr.write(`\r  ${done}/${count} seeds, ${printed} failed, ${elapsed} s`);
            }
          } else if (now - lastPrint > 60_000) {
            // A log file gets one line a minute, so a long background run shows it is alive.
            lastPrint = now;
            console.error(`progress: ${done}/${count} seeds, ${printed} failed, ${elapsed} s`);
          }
        },
        onFailure: (result) => {
          printed++;
          if (printed > failuresPrintedMax) return;
          if (process.stderr.isTTY) process.stderr.write('\n');
          printFailure(result, batch);
        },
      });
      if (opts.progress && process.stderr.isTTY) process.stderr.write('\n');
      console.log(formatSummary(summary, performance.now() - started));
      if (summary.failedSeeds.length > 0) {
        console.log(
          `\n${summary.failedSeeds.length} seed(s) found violations; reports are under the OS temp dir (configchain-sim/).`,
        );
        process.exitCode = 1;
      } else {
        console.log('\nno violations');
      }
    });
}
