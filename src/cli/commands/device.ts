/**
 * `configchain device --dir DIR --id ID [--once] [--mode proof|simple] [--hook CMD]
 * [--interval-ms MS] [--json]`: the device agent (src/device/agent.ts). Each step is one plain
 * line on stderr. With --once it runs one round, prints the result (a line, or JSON with --json)
 * on stdout and exits 0 only if the round applied a version whose report was taken, or there was
 * nothing new; otherwise 1. Without --once it runs until SIGINT/SIGTERM.
 */
import { resolve } from 'node:path';
import type { Command } from 'commander';
import { deviceIntervalMsDefault, deviceIntervalMsMax } from '../../constants.ts';
import {
  DeviceSetupError,
  describeResult,
  type RoundResult,
  roundSucceeded,
  runAgent,
  runRound,
} from '../../device/agent.ts';
import { wholeNumberOption } from '../args.ts';
import { progressCallback } from '../progress.ts';

interface DeviceCliOptions {
  readonly dir: string;
  readonly id: string;
  readonly once?: boolean;
  readonly mode: string;
  readonly hook?: string;
  readonly intervalMs: number;
  readonly json?: boolean;
}

export function registerDevice(program: Command): void {
  program
    .command('device')
    .description(
      'run a device agent: verify the certified release of its target, download, apply atomically and report',
    )
    .requiredOption('--dir <dir>', 'the network directory (genesis.json and devices/<id>/)')
    .requiredOption('--id <id>', 'the device id (devices/<id>/device.json and device.key)')
    .option('--once', 'run one round and exit (0: applied and reported, or nothing new)')
    .option('--mode <mode>', 'proof (verify a light-client proof) or simple (POST /validateHash)', 'proof')
    .option(
      '--hook <command>',
      'a shell command run after each apply, with the applied file path as its argument',
    )
    .option(
      '--interval-ms <ms>',
      'pause between rounds when all is well',
      wholeNumberOption('--interval-ms', 0, deviceIntervalMsMax),
      deviceIntervalMsDefault,
    )
    .option('--json', 'with --once, print the round result as JSON')
    .action(async (opts: DeviceCliOptions) => {
      if (opts.mode !== 'proof' && opts.mode !== 'simple') {
        console.error(`configchain device: --mode must be proof or simple, got "${opts.mode}"`);
        process.exitCode = 2;
        return;
      }
      const log = (line: string) => console.error(`${new Date().toISOString()} device ${opts.id}: ${line}`);
      const round = {
        dir: resolve(opts.dir),
        deviceId: opts.id,
        mode: opts.mode,
        log,
        // The download's progress joins the log on stderr (a bar on a terminal, else tenths), with
        // or without --json, which only shapes the result on stdout.
        onProgress: progressCallback('download', process.stderr, log),
        ...(opts.hook === undefined ? {} : { hook: opts.hook }),
      } as const;
      try {
        if (opts.once === true) {
          const result: RoundResult = await runRound(round);
          console.log(opts.json === true ? JSON.stringify(result) : describeResult(result));
          process.exitCode = roundSucceeded(result) ? 0 : 1;
          return;
        }
        const stop = new AbortController();
        for (const signal of ['SIGINT', 'SIGTERM'] as const) {
          process.once(signal, () => {
            log(`${signal}: stopping after the current round`);
            stop.abort();
          });
        }
        await runAgent({ ...round, intervalMs: opts.intervalMs, signal: stop.signal });
      } catch (error) {
        if (error instanceof DeviceSetupError) {
          console.error(`configchain device: ${error.message}`);
          process.exitCode = 2;
          return;
        }
        console.error(`configchain device: ${(error as Error).message}`);
        process.exitCode = 1;
      }
    });
}
