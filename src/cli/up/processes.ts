/**
 * The child processes of `configchain up`: each validator and config server runs as its own OS
 * process (`node --import tsx src/cli/main.ts <command> ...`), its stdout and stderr appended to
 * a log file. stopAll() sends SIGTERM, waits, then SIGKILLs whatever is left, so no child outlives
 * `up` when it stops normally.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { closeSync, mkdirSync, openSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

export const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..', '..');
const mainTs = join(repoRoot, 'src', 'cli', 'main.ts');

/** How long stopAll() waits after SIGTERM before it uses SIGKILL. */
export const stopGraceMs = 5000;
/** Bytes of a log shown when a child fails. */
const logTailBytes = 4000;

/**
 * Flags for node itself in each validator process when `validatorsOnThisMachine` validators share
 * `cores` cores. With no core to spare, V8's GC helper threads only compete with the other
 * validators' event loops, so each validator collects on its own thread (--single-threaded-gc).
 * Eleven interleaved pairs of `npm run bench -- system` runs over two sessions gave less
 * validator CPU per committed attest with it in seven (by 8-16%), the same in two and 3% more in
 * two; about 7% less on average. With cores to spare the helpers shorten pauses, so nothing
 * changes there.
 */
export function validatorNodeFlags(validatorsOnThisMachine: number, cores: number): string[] {
  return cores > validatorsOnThisMachine ? [] : ['--single-threaded-gc'];
}

export interface Child {
  readonly name: string;
  readonly logFile: string;
  readonly process: ChildProcess;
  /** Set when the process has exited: its code, or the signal that ended it. */
  exit: { code: number | null; signal: NodeJS.Signals | null } | null;
}

export class ProcessGroup {
  private readonly children: Child[] = [];
  private stopping = false;
  /** Called when a child exits while the group is not stopping. */
  onUnexpectedExit: (child: Child) => void = () => {};

  /** Starts `configchain <args>` as a child, logging to logFile; nodeFlags go to node itself (e.g. --cpu-prof). */
  start(name: string, args: readonly string[], logFile: string, nodeFlags: readonly string[] = []): Child {
    mkdirSync(dirname(logFile), { recursive: true });
    const fd = openSync(logFile, 'a');
    let proc: ChildProcess;
    try {
      proc = spawn(process.execPath, [...nodeFlags, '--import', 'tsx', mainTs, ...args], {
        cwd: repoRoot,
        stdio: ['ignore', fd, fd],
        env: process.env,
      });
    } finally {
      // The child has its own copy of the descriptor.
      closeSync(fd);
    }
    const child: Child = { name, logFile, process: proc, exit: null };
    proc.once('exit', (code, signal) => {
      child.exit = { code, signal };
      if (!this.stopping) this.onUnexpectedExit(child);
    });
    proc.once('error', () => {
      child.exit ??= { code: null, signal: null };
    });
    this.children.push(child);
    return child;
  }

  /**
   * From now on exits are expected. Ctrl-C in a terminal signals the children directly too, so
   * they may exit before stopAll() runs; that is not worth a warning.
   */
  markStopping(): void {
    this.stopping = true;
  }

  get all(): readonly Child[] {
    return this.children;
  }

  /** SIGTERM to every running child, then SIGKILL to those still running after the grace period. */
  async stopAll(graceMs = stopGraceMs): Promise<void> {
    this.stopping = true;
    const running = this.children.filter((c) => c.exit === null);
    const exited = running.map(
      (c) =>
        new Promise<void>((done) => {
          if (c.exit !== null) return done();
          c.process.once('exit', () => done());
        }),
    );
    for (const c of running) c.process.kill('SIGTERM');
    const timer = new Promise<'timeout'>((done) => setTimeout(() => done('timeout'), graceMs).unref());
    const result = await Promise.race([Promise.all(exited).then(() => 'done' as const), timer]);
    if (result === 'timeout') {
      for (const c of running) if (c.exit === null) c.process.kill('SIGKILL');
      await Promise.all(exited);
    }
  }

  /** Synchronous last resort on process exit: SIGKILL whatever still runs. */
  killAllNow(): void {
    this.stopping = true;
    for (const c of this.children) if (c.exit === null) c.process.kill('SIGKILL');
  }
}

/** The end of a log file, for error messages. */
export function logTail(file: string): string {
  try {
    const size = statSync(file).size;
    const text = readFileSync(file, 'utf8');
    return size > logTailBytes ? `...${text.slice(-logTailBytes)}` : text;
  } catch {
    return '(no log)';
  }
}
