/**
 * `configchain rollout`: staged rollouts of a group target's current release (issue 6, item 4).
 *
 *   configchain rollout --target group:G --version V --waves 10,50,100 --max-failures 5% [--id ID]
 *       records the rollout on the ledger, approved by genesis.releaseThreshold admins (like a
 *       release, in Domain.releaseApproval);
 *   configchain rollout abort|resume|rollback --id ID
 *       one admin's control; it reads the rollout's controlSeq and sends controlSeq + 1, so a
 *       replayed control can never apply twice;
 *   configchain rollout show --id ID [--watch]
 *       the waves with their devices, successes and failures, the status and the reason; --watch
 *       redraws in place on a terminal (plain lines when the output is not one) until the rollout
 *       is done, halted or aborted, or Ctrl-C. It reads the rollout from the chain verified from
 *       genesis (src/ops openChain), not from the node's say-so; each redraw verifies the new blocks.
 *
 * The ledger does the rest (src/ledger/rollout.ts): devices fall into waves by a hash of their id,
 * a wave opens when the previous one has enough successes, a wave with too many failures halts
 * the rollout. Devices apply a version under rollout only when their wave is open
 * (src/device/agent.ts).
 */
import { resolve } from 'node:path';
import type { Command } from 'commander';
import { ApiRequestError } from '../../api/client.ts';
import { newestRollouts } from '../../api/rollouts.ts';
import { rolloutIdLengthMax, rolloutsPageMax, rolloutWavesMax, versionMax } from '../../constants.ts';
import type { Height, TargetName, TxId } from '../../encoding/brand.ts';
import {
  type LedgerState,
  type RolloutBody,
  type RolloutControlBody,
  type RolloutEntry,
  signAsAdmin,
  signRelease,
} from '../../ledger/index.ts';
import { wavesValid, waveThreshold } from '../../ledger/rollout.ts';
import { paths } from '../../node/layout.ts';
import {
  addOpsOptions,
  type OpsOptions,
  openChain,
  processIo,
  reportOpsError,
  terminalProgress,
} from '../../ops/command.ts';
import { ArgumentError, percent, percentList, wholeNumberOption } from '../args.ts';
import {
  adminKeyIds,
  loadAdminKey,
  loadNetworkGenesis,
  loadSigningAdmin,
  OperatorError,
  type Print,
  parseAdminList,
  runWrite,
  submitAndWait,
  Validators,
} from './publish.ts';
import { defaultNetworkDir } from './up.ts';

/** How often `rollout show --watch` asks a validator again. */
const watchIntervalMs = 1000;

const ID_PATTERN = /^[A-Za-z0-9][A-Za-z0-9._:@-]*$/;

export type RolloutAction = RolloutControlBody['action'];

export interface RecordRolloutOptions {
  readonly dir: string;
  readonly target: string;
  readonly version: number;
  readonly waves: readonly number[];
  readonly maxFailuresPercent: number;
  /** Default: "<group>-v<version>-<time in base 36>". */
  readonly id?: string;
  /** Admins to sign with; default: the admin keys in DIR/admins, up to the threshold. */
  readonly admins?: readonly string[];
  readonly node?: string;
  readonly print: Print;
}

export interface RecordRolloutResult {
  readonly rolloutId: string;
  readonly target: string;
  readonly version: number;
  readonly waves: readonly number[];
  readonly maxFailuresPercent: number;
  readonly signers: readonly string[];
  readonly txId: TxId;
  readonly height: Height;
  /** The rollout's entry right after the commit (from the validator that answered). */
  readonly rollout: RolloutEntry | null;
}

/** Records a staged rollout on the ledger, signed by the release threshold of admins. */
export async function recordRollout(options: RecordRolloutOptions): Promise<RecordRolloutResult> {
  const dir = resolve(options.dir);
  const genesis = loadNetworkGenesis(dir);
  if (!options.target.startsWith('group:') || options.target.length === 'group:'.length) {
    throw new OperatorError(
      'TARGET_INVALID',
      `--target must be a group target "group:<group>" (devices enrolled with --group follow it), got ${JSON.stringify(options.target)}`,
    );
  }
  if (!Number.isSafeInteger(options.version) || options.version < 1) {
    throw new OperatorError(
      'VERSION_INVALID',
      `--version must be a positive integer: the target's current release version, got ${options.version}`,
    );
  }
  if (!wavesValid(options.waves) || options.waves.length > rolloutWavesMax) {
    throw wavesInvalid(options.waves.join(','));
  }
  const rolloutId = checkRolloutId(
    options.id ??
      `${options.target.slice('group:'.length)}-v${options.version}-${Date.now().toString(36)}`.slice(
        0,
        rolloutIdLengthMax,
      ),
  );
  const adminIds = options.admins ?? adminKeyIds(dir, genesis).slice(0, genesis.releaseThreshold);
  if (adminIds.length < genesis.releaseThreshold) {
    throw new OperatorError(
      'APPROVALS_MISSING',
      `a rollout needs ${genesis.releaseThreshold} admin approvals, and only ${adminIds.length} admin key(s) are at hand (${adminIds.join(', ') || 'none'} in ${paths.adminsDir(dir)}); put the keys there or name them with --admin`,
    );
  }
  const keys = adminIds.map((id) => loadAdminKey(dir, genesis, id));
  const body: RolloutBody = {
    type: 'rollout',
    chainId: genesis.chainId,
    rolloutId,
    target: options.target as TargetName,
    version: options.version,
    waves: [...options.waves],
    maxFailuresPercent: options.maxFailuresPercent,
  };
  const validators = new Validators(genesis, options.node);
  options.print(
    `Recording rollout ${rolloutId}: ${options.target} version ${options.version} in waves ${options.waves.map((w) => `${w}%`).join(', ')}, halting when more than ${options.maxFailuresPercent}% of a wave fail; signed by ${adminIds.join(', ')}`,
  );
  const committed = await submitAndWait(validators, signRelease(body, keys), `rollout ${rolloutId}`);
  options.print(`  committed in block ${committed.height}, tx ${committed.txId}`);
  const rollout = await readRollout(validators, rolloutId).catch(() => null);
  if (rollout !== null) for (const line of rolloutLines(rollout)) options.print(`  ${line}`);
  return {
    rolloutId,
    target: options.target,
    version: options.version,
    waves: body.waves,
    maxFailuresPercent: options.maxFailuresPercent,
    signers: adminIds,
    txId: committed.txId,
    height: committed.height,
    rollout,
  };
}

export interface ControlRolloutOptions {
  readonly dir: string;
  readonly id: string;
  readonly action: RolloutAction;
  /** The admin who signs; default: the first admin key in DIR/admins. */
  readonly admin?: string;
  readonly node?: string;
  readonly print: Print;
}

export interface ControlRolloutResult {
  readonly rolloutId: string;
  readonly action: RolloutAction;
  readonly seq: number;
  readonly signer: string;
  readonly txId: TxId;
  readonly height: Height;
  /** The rollout after the control (null if no validator answered the read). */
  readonly rollout: RolloutEntry | null;
}

/** Sends one admin's abort, resume or rollback with seq = the rollout's controlSeq + 1. */
export async function controlRollout(options: ControlRolloutOptions): Promise<ControlRolloutResult> {
  const dir = resolve(options.dir);
  const genesis = loadNetworkGenesis(dir);
  const rolloutId = checkRolloutId(options.id);
  const admin = loadSigningAdmin(dir, genesis, options.admin);
  const validators = new Validators(genesis, options.node);
  const before = await readRollout(validators, rolloutId);
  const seq = before.controlSeq + 1;
  const body: RolloutControlBody = {
    type: 'rollout-control',
    chainId: genesis.chainId,
    rolloutId,
    action: options.action,
    seq,
  };
  options.print(
    `Sending ${options.action} of rollout ${rolloutId} (now ${before.status}${before.rollback ? ', rolled back' : ''}), control ${seq}, signed by ${admin.id}`,
  );
  const committed = await submitAndWait(
    validators,
    signAsAdmin(body, admin.id, admin.privateKey),
    `${options.action} of rollout ${rolloutId}`,
  );
  options.print(`  committed in block ${committed.height}, tx ${committed.txId}`);
  const rollout = await readRollout(validators, rolloutId).catch(() => null);
  if (rollout !== null) for (const line of rolloutLines(rollout)) options.print(`  ${line}`);
  return {
    rolloutId,
    action: options.action,
    seq,
    signer: admin.id,
    txId: committed.txId,
    height: committed.height,
    rollout,
  };
}

/** GET /v1/rollouts/:id from the first validator that answers; a missing rollout is an operator error. */
export async function readRollout(validators: Validators, id: string): Promise<RolloutEntry> {
  try {
    return await validators.use(`reading rollout ${id}`, (c) => c.rollout(id));
  } catch (err) {
    if (err instanceof ApiRequestError && err.status === 404) {
      throw new OperatorError(
        'ROLLOUT_NOT_FOUND',
        `there is no rollout "${id}" on the ledger; configchain rollout show --dir DIR lists the rollouts`,
        { rolloutId: id },
      );
    }
    throw err;
  }
}

/** One wave of a rollout, as `show` prints and --json gives it. */
export interface WaveView {
  /** Counted from 1. */
  readonly wave: number;
  /** The cumulative percentage of buckets this wave reaches. */
  readonly upToPercent: number;
  readonly devices: number;
  readonly successes: number;
  readonly failures: number;
  /** Successes that open the next wave (or finish the rollout). */
  readonly threshold: number;
  readonly open: boolean;
}

export interface RolloutView {
  readonly rolloutId: string;
  readonly target: string;
  readonly version: number;
  readonly status: RolloutEntry['status'];
  readonly rollback: boolean;
  readonly reason: string;
  readonly maxFailuresPercent: number;
  readonly currentWave: number;
  readonly controlSeq: number;
  readonly createdAt: number;
  readonly waves: readonly WaveView[];
}

export function rolloutView(entry: RolloutEntry): RolloutView {
  return {
    rolloutId: entry.rolloutId,
    target: entry.target,
    version: entry.version,
    status: entry.status,
    rollback: entry.rollback,
    reason: entry.reason,
    maxFailuresPercent: entry.maxFailuresPercent,
    currentWave: entry.currentWave + 1,
    controlSeq: entry.controlSeq,
    createdAt: entry.createdAt,
    waves: entry.progress.map((p, i) => ({
      wave: i + 1,
      upToPercent: entry.waves[i] ?? 100,
      devices: p.devices,
      successes: p.successes,
      failures: p.failures,
      threshold: waveThreshold(p, entry.maxFailuresPercent),
      open: entry.status === 'done' || i <= entry.currentWave,
    })),
  };
}

/** The rollout in words: a title line, one line per wave, and the reason when there is one. */
export function rolloutLines(entry: RolloutEntry): string[] {
  const view = rolloutView(entry);
  const status = `${view.status}${view.rollback ? ' (rolled back)' : ''}`;
  const lines = [
    `rollout ${view.rolloutId}: ${view.target} version ${view.version}, ${status}, wave ${view.currentWave} of ${view.waves.length}, max failures ${view.maxFailuresPercent}%`,
  ];
  for (const w of view.waves) {
    const bar = progressBar(w.successes, w.failures, w.devices, 20);
    lines.push(
      `  wave ${w.wave} (to ${String(w.upToPercent).padStart(3)}%) ${bar} ${w.devices} devices, ${w.successes} ok, ${w.failures} failed, needs ${w.threshold}${w.open ? '' : ' (closed)'}`,
    );
  }
  if (view.reason !== '') lines.push(`  reason: ${view.reason}`);
  return lines;
}

function progressBar(ok: number, failed: number, total: number, width: number): string {
  if (total === 0) return `[${' '.repeat(width)}]`;
  const okCells = Math.round((ok * width) / total);
  const failedCells = Math.min(width - okCells, Math.round((failed * width) / total));
  return `[${'#'.repeat(okCells)}${'x'.repeat(failedCells)}${' '.repeat(width - okCells - failedCells)}]`;
}

/** Is the rollout at rest: nothing will change without an operator (done, halted, aborted)? */
export function rolloutSettled(entry: RolloutEntry): boolean {
  return entry.status !== 'running';
}

export interface ShowOptions {
  readonly dir: string;
  /** A genesis file to trust instead of DIR/genesis.json. */
  readonly genesis?: string;
  readonly id?: string;
  readonly node?: string;
  readonly watch: boolean;
  readonly json: boolean;
  readonly out: NodeJS.WriteStream | { readonly isTTY?: boolean; write(text: string): unknown };
  readonly signal?: AbortSignal;
}

/** The rollout in a verified state; a missing rollout is an operator error. */
export function verifiedRollout(state: LedgerState, id: string): RolloutEntry {
  const entry = state.rollout(id);
  if (entry === undefined) {
    throw new OperatorError(
      'ROLLOUT_NOT_FOUND',
      `there is no rollout "${id}" on the verified chain; configchain rollout show --dir DIR lists the rollouts`,
      { rolloutId: id },
    );
  }
  return entry;
}

/**
 * `rollout show`: one rollout (or every rollout without --id), once or watched, read from the
 * chain verified from genesis; a node serving a block that does not verify makes it fail.
 */
export async function showRollout(options: ShowOptions): Promise<void> {
  const { reader } = await openChain(
    { dir: options.dir, genesis: options.genesis, node: options.node, json: options.json },
    options.watch ? undefined : terminalProgress(),
  );
  const write = (line: string) => options.out.write(`${line}\n`);
  await reader.sync();
  if (options.id === undefined) {
    const all = newestRollouts(reader.verifier.state.entries(), rolloutsPageMax);
    if (options.json) {
      write(JSON.stringify(all.map(rolloutView), null, 2));
      return;
    }
    if (all.length === 0)
      write('No rollouts on the ledger; record one with configchain rollout --target group:G ...');
    for (const entry of all) for (const line of rolloutLines(entry)) write(line);
    return;
  }
  const id = checkRolloutId(options.id);
  let entry = verifiedRollout(reader.verifier.state, id);
  if (!options.watch) {
    if (options.json) write(JSON.stringify(rolloutView(entry), null, 2));
    else for (const line of rolloutLines(entry)) write(line);
    return;
  }
  const tty = options.out.isTTY === true && !options.json;
  // A function, so the compiler does not narrow the flag across the awaits below.
  const stopped = (): boolean => options.signal?.aborted === true;
  let drawn = 0;
  let last = '';
  for (;;) {
    const text = options.json ? JSON.stringify(rolloutView(entry)) : rolloutLines(entry).join('\n');
    if (tty) {
      // Move up over the previous drawing and clear it, so the display updates in place.
      if (drawn > 0) options.out.write(`\u001b[${drawn}F\u001b[J`);
      options.out.write(`${text}\n`);
      drawn = text.split('\n').length;
    } else if (text !== last) {
      write(text);
    }
    last = text;
    if (rolloutSettled(entry) || stopped()) return;
    await new Promise<void>((done) => {
      const timer = setTimeout(done, watchIntervalMs);
      options.signal?.addEventListener(
        'abort',
        () => {
          clearTimeout(timer);
          done();
        },
        { once: true },
      );
    });
    if (stopped()) return;
    // Only the blocks added since the last redraw are fetched and verified.
    await reader.sync();
    entry = verifiedRollout(reader.verifier.state, id);
  }
}

/** "10,50,100" (or "10%,50%,100%") -> [10, 50, 100]. */
export function parseWaves(value: string): number[] {
  let waves: number[];
  try {
    waves = percentList(value, '--waves', rolloutWavesMax);
  } catch (error) {
    throw error instanceof ArgumentError ? wavesInvalid(value) : error;
  }
  if (!wavesValid(waves)) throw wavesInvalid(value);
  return waves;
}

/** The one refusal of a wave list, from the command line or from recordRollout's caller. */
function wavesInvalid(got: string): OperatorError {
  return new OperatorError(
    'WAVES_INVALID',
    `--waves must be at most ${rolloutWavesMax} strictly ascending whole percentages ending at 100, e.g. 10,50,100; got ${JSON.stringify(got)}`,
  );
}

/** "5%" or "5" -> 5: a whole percentage of a wave's devices, 0 to 100. */
export function parsePercent(value: string): number {
  try {
    return percent(value, '--max-failures');
  } catch (error) {
    if (!(error instanceof ArgumentError)) throw error;
    throw new OperatorError(
      'MAX_FAILURES_INVALID',
      `--max-failures must be a whole percentage from 0% to 100%, e.g. 5%; got ${JSON.stringify(value)}`,
    );
  }
}

function checkRolloutId(id: string): string {
  if (id.length < 1 || id.length > rolloutIdLengthMax || !ID_PATTERN.test(id)) {
    throw new OperatorError(
      'ROLLOUT_ID_INVALID',
      `a rollout id is 1-${rolloutIdLengthMax} characters of letters, digits and . _ : @ - (starting with a letter or digit), got ${JSON.stringify(id)}`,
    );
  }
  return id;
}

interface CommonOpts {
  dir: string;
  node?: string;
  json: boolean;
}

export function registerRollout(program: Command): void {
  // Program options count only before the subcommand, so `rollout --version N` is the release
  // version, not the CLI's (publish.ts enables the same).
  program.enablePositionalOptions();
  const rollout = program
    .command('rollout')
    .description(
      "record a staged rollout of a group target's current release (with --target, --version, --waves, --max-failures), or control and show one",
    )
    .option('--dir <dir>', 'the network directory (its genesis.json and admins/)', defaultNetworkDir)
    .option('--target <target>', 'the group target, e.g. group:cameras')
    .option(
      '--version <n>',
      "the target's current release version",
      wholeNumberOption('--version', 1, versionMax),
    )
    .option('--waves <list>', 'cumulative percentages of the group per wave, ending at 100', '10,50,100')
    .option('--max-failures <percent>', 'halt when more than this share of a wave fails', '5%')
    .option('--id <id>', 'the rollout id; default: <group>-v<version>-<time>')
    .option(
      '--admin <ids>',
      'admins to sign with, comma-separated; default: the keys in DIR/admins, up to the threshold',
    )
    .option('--node <url>', 'a validator API URL; default: every validator of genesis, in turn')
    .option('--json', 'print the result as JSON only', false)
    .action(
      (
        opts: CommonOpts & {
          target?: string;
          version?: number;
          waves: string;
          maxFailures: string;
          id?: string;
          admin?: string;
        },
      ) =>
        runWrite('rollout', opts.json, (print) => {
          if (opts.target === undefined || opts.version === undefined) {
            throw new OperatorError(
              'USAGE',
              'record a rollout with --target group:G --version V [--waves 10,50,100] [--max-failures 5%], or use rollout show|abort|resume|rollback --id ID',
            );
          }
          const admins = parseAdminList(opts.admin);
          return recordRollout({
            dir: opts.dir,
            target: opts.target,
            version: opts.version,
            waves: parseWaves(opts.waves),
            maxFailuresPercent: parsePercent(opts.maxFailures),
            ...(opts.id !== undefined ? { id: opts.id } : {}),
            ...(admins !== undefined ? { admins } : {}),
            ...(opts.node !== undefined ? { node: opts.node } : {}),
            print,
          });
        }),
    );

  for (const action of ['abort', 'resume', 'rollback'] as const) {
    const what = {
      abort: 'pause a running or halted rollout: no wave opens, devices that updated keep the version',
      resume: 'let a halted or aborted rollout go on: waves open again by the rules',
      rollback: 'end the rollout for good: devices that applied its version restore the one before',
    }[action];
    rollout
      .command(action)
      .description(`${what} (a transaction signed by one admin)`)
      .requiredOption('--id <id>', 'the rollout id')
      .option('--dir <dir>', 'the network directory (its genesis.json and admins/)', defaultNetworkDir)
      .option('--admin <id>', 'the admin who signs; default: the first admin key in DIR/admins')
      .option('--node <url>', 'a validator API URL; default: every validator of genesis, in turn')
      .option('--json', 'print the result as JSON only', false)
      .action((opts: CommonOpts & { id: string; admin?: string }) =>
        runWrite(`rollout ${action}`, opts.json, (print) =>
          controlRollout({
            dir: opts.dir,
            id: opts.id,
            action,
            ...(opts.admin !== undefined ? { admin: opts.admin } : {}),
            ...(opts.node !== undefined ? { node: opts.node } : {}),
            print,
          }),
        ),
      );
  }

  addOpsOptions(
    rollout
      .command('show')
      .description(
        'the waves of a rollout (devices, successes, failures), its status and reason; every rollout without --id',
      )
      .option('--id <id>', 'the rollout id')
      .option('--watch', 'redraw live until the rollout is done, halted or aborted (Ctrl-C stops)', false),
    defaultNetworkDir,
  ).action(async (opts: OpsOptions & { id?: string; watch: boolean }) => {
    // A chain-reading command like status or history: their exit statuses, and their advice when
    // a block does not verify.
    const stop = new AbortController();
    const onInt = () => stop.abort();
    process.once('SIGINT', onInt);
    try {
      await showRollout({
        dir: opts.dir,
        ...(opts.genesis !== undefined ? { genesis: opts.genesis } : {}),
        ...(opts.id !== undefined ? { id: opts.id } : {}),
        ...(opts.node !== undefined ? { node: opts.node } : {}),
        watch: opts.watch,
        json: opts.json,
        out: process.stdout,
        signal: stop.signal,
      });
    } catch (error) {
      process.exitCode = reportOpsError('rollout show', processIo, opts.json, error);
    } finally {
      process.removeListener('SIGINT', onInt);
    }
  });
}
