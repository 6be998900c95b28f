/**
 * System-test harness: a real network of OS processes on loopback.
 *
 * startNetwork() inits a network in a temporary directory with a random base port, spawns the
 * validators and both config servers as `node --import tsx src/cli/main.ts ...` children, and
 * waits until every validator answers /ready. stop() kills every child (SIGKILL after SIGTERM) and
 * removes the directory; an exit hook kills leftovers even when a test throws or times out.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { type InitResult, initNetwork } from '../../src/cli/commands/init.ts';
import { seedArtifact } from '../../src/configserver/store.ts';
import { sha256Hex } from '../../src/crypto/hash.ts';
import { findFreeBasePort, paths } from '../../src/node/layout.ts';

export const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
const mainTs = join(repoRoot, 'src', 'cli', 'main.ts');

/** Children of every network in this test process, so the exit hook can kill them all. */
const allChildren = new Set<ChildProcess>();
function killAll(): void {
  for (const child of allChildren) {
    child.kill('SIGCONT');
    child.kill('SIGKILL');
  }
}
process.once('exit', killAll);
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.once(signal, () => {
    killAll();
    process.exit(130);
  });
}

export interface NetworkOptions {
  readonly validators?: number;
  readonly demo?: boolean;
  /** Extra environment for the validator processes. */
  readonly env?: Record<string, string>;
  readonly heartbeatIntervalMs?: number;
  /** Overrides genesis policy.headerAgeMsMax (before any process starts), for fast freeze tests. */
  readonly headerAgeMsMax?: number;
  /** Seeds versions 1..N of target "default" (contents "1".."N") on both config servers. */
  readonly versions?: number;
}

interface Proc {
  child: ChildProcess | null;
  /** The last few KiB of the child's output, for failure messages. */
  output: string;
}

const OUTPUT_TAIL_BYTES = 16 * 1024;

export class TestNetwork {
  readonly dir: string;
  readonly init: InitResult;
  private readonly validators: Proc[];
  private readonly configServers = new Map<'A' | 'B', Proc>();
  private readonly env: Record<string, string>;

  constructor(dir: string, init: InitResult, env: Record<string, string>) {
    this.dir = dir;
    this.init = init;
    this.env = env;
    this.validators = init.network.validators.map(() => ({ child: null, output: '' }));
  }

  get n(): number {
    return this.validators.length;
  }

  apiUrl(id: number): string {
    const v = this.init.network.validators[id];
    if (v === undefined) throw new Error(`no validator ${id}`);
    return `http://${v.host}:${v.apiPort}`;
  }

  configServerUrl(id: 'A' | 'B'): string {
    const s = this.init.network.configServers.find((c) => c.id === id);
    if (s === undefined) throw new Error(`no config server ${id}`);
    return `http://${s.host}:${s.port}`;
  }

  startConfigServer(id: 'A' | 'B'): void {
    const proc: Proc = { child: null, output: '' };
    proc.child = this.spawnCli(['config-server', '--dir', this.dir, '--id', id], proc);
    this.configServers.set(id, proc);
  }

  startValidator(id: number): void {
    const proc = this.validators[id];
    if (proc === undefined) throw new Error(`no validator ${id}`);
    if (proc.child !== null && proc.child.exitCode === null && proc.child.signalCode === null) {
      throw new Error(`validator ${id} is already running`);
    }
    proc.output = '';
    proc.child = this.spawnCli(['node', '--dir', this.dir, '--id', String(id)], proc);
  }

  private spawnCli(args: string[], proc: Proc): ChildProcess {
    const child = spawn(process.execPath, ['--import', 'tsx', mainTs, ...args], {
      cwd: repoRoot,
      env: { ...process.env, ...this.env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const append = (chunk: Buffer) => {
      proc.output = (proc.output + chunk.toString('utf8')).slice(-OUTPUT_TAIL_BYTES);
    };
    child.stdout?.on('data', append);
    child.stderr?.on('data', append);
    allChildren.add(child);
    child.once('exit', () => allChildren.delete(child));
    return child;
  }

  /** Sends a signal to a validator (SIGKILL, SIGSTOP, SIGCONT, ...). */
  signal(id: number, signal: NodeJS.Signals): void {
    const child = this.validators[id]?.child;
    if (child === null || child === undefined) throw new Error(`validator ${id} was never started`);
    child.kill(signal);
  }

  /** Kills a validator with SIGKILL and waits until the process is gone. */
  async kill9(id: number): Promise<void> {
    const child = this.validators[id]?.child;
    if (child === null || child === undefined) return;
    if (child.exitCode !== null || child.signalCode !== null) return;
    const gone = new Promise<void>((done) => child.once('exit', () => done()));
    child.kill('SIGKILL');
    await gone;
  }

  /** Waits until a validator process exits; resolves its exit code. */
  async waitExit(id: number, timeoutMs: number): Promise<number | null> {
    const child = this.validators[id]?.child;
    if (child === null || child === undefined) throw new Error(`validator ${id} was never started`);
    if (child.exitCode !== null || child.signalCode !== null) return child.exitCode;
    return new Promise((done, fail) => {
      const timer = setTimeout(
        () => fail(new Error(`validator ${id} still running after ${timeoutMs} ms`)),
        timeoutMs,
      );
      child.once('exit', (code) => {
        clearTimeout(timer);
        done(code);
      });
    });
  }

  output(id: number): string {
    return this.validators[id]?.output ?? '';
  }

  /** Waits until every listed validator answers GET /ready with 200 (bounded). */
  async waitReady(
    ids: readonly number[] = this.validators.map((_, i) => i),
    timeoutMs = 60_000,
  ): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    for (const id of ids) {
      for (;;) {
        const child = this.validators[id]?.child;
        if (child !== null && child !== undefined && child.exitCode !== null) {
          throw new Error(`validator ${id} exited with ${child.exitCode}:\n${this.output(id)}`);
        }
        const ok = await fetch(`${this.apiUrl(id)}/ready`, { signal: AbortSignal.timeout(1000) })
          .then((r) => r.status === 200)
          .catch(() => false);
        if (ok) break;
        if (Date.now() > deadline) {
          throw new Error(`validator ${id} not ready after ${timeoutMs} ms:\n${this.output(id)}`);
        }
        await sleep(100);
      }
    }
  }

  async waitConfigServers(timeoutMs = 30_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    for (const [id, proc] of this.configServers) {
      for (;;) {
        if (proc.child !== null && proc.child.exitCode !== null) {
          throw new Error(`config server ${id} exited with ${proc.child.exitCode}:\n${proc.output}`);
        }
        const ok = await fetch(`${this.configServerUrl(id)}/v1/targets/default/versions`, {
          signal: AbortSignal.timeout(1000),
        })
          .then((r) => r.status < 500)
          .catch(() => false);
        if (ok) break;
        if (Date.now() > deadline) {
          throw new Error(
            `config server ${id} not up after ${timeoutMs} ms:\n${this.configServers.get(id)?.output}`,
          );
        }
        await sleep(100);
      }
    }
  }

  /** POST /validateHash as the article's client does. */
  async validateHash(
    id: number,
    hash: unknown,
    extra: Record<string, unknown> = {},
  ): Promise<{ status: number; body: string }> {
    const response = await fetch(`${this.apiUrl(id)}/validateHash`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ hash, ...extra }),
      signal: AbortSignal.timeout(30_000),
    });
    return { status: response.status, body: await response.text() };
  }

  async chain(id: number): Promise<ChainEntry[]> {
    const response = await fetch(`${this.apiUrl(id)}/chain`, { signal: AbortSignal.timeout(10_000) });
    if (response.status !== 200) throw new Error(`GET /chain on ${id} answered ${response.status}`);
    const body = (await response.json()) as { chain: ChainEntry[] };
    return body.chain;
  }

  async status(id: number): Promise<{ height: number; view: number; primary: number }> {
    const response = await fetch(`${this.apiUrl(id)}/v1/status`, { signal: AbortSignal.timeout(5000) });
    if (response.status !== 200) throw new Error(`GET /v1/status on ${id} answered ${response.status}`);
    return (await response.json()) as { height: number; view: number; primary: number };
  }

  /** Waits until every listed validator's chain has at least `height` blocks above genesis. */
  async waitHeight(ids: readonly number[], height: number, timeoutMs = 30_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    for (const id of ids) {
      for (;;) {
        const h = await this.status(id)
          .then((s) => s.height)
          .catch(() => -1);
        if (h >= height) break;
        if (Date.now() > deadline) {
          throw new Error(
            `validator ${id} at height ${h}, not ${height}, after ${timeoutMs} ms:\n${this.output(id)}`,
          );
        }
        await sleep(100);
      }
    }
  }

  /** Waits until the listed validators report identical chains (same length and hashes). */
  async waitSameChains(ids: readonly number[], timeoutMs = 30_000): Promise<ChainEntry[]> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const chains = await Promise.all(ids.map((id) => this.chain(id).catch(() => null)));
      const first = chains[0];
      if (first !== null && first !== undefined) {
        const key = (c: ChainEntry[]) => c.map((e) => e.hash).join(',');
        if (chains.every((c) => c !== null && key(c) === key(first))) return first;
      }
      if (Date.now() > deadline) {
        const heights = chains.map((c) => (c === null ? 'unreachable' : String(c.length)));
        throw new Error(`chains differ after ${timeoutMs} ms (lengths ${heights.join(', ')})`);
      }
      await sleep(200);
    }
  }

  async stop(): Promise<void> {
    const procs = [...this.validators, ...this.configServers.values()];
    const exits: Promise<void>[] = [];
    for (const proc of procs) {
      const child = proc.child;
      if (child === null || child.exitCode !== null || child.signalCode !== null) continue;
      exits.push(new Promise<void>((done) => child.once('exit', () => done())));
      // A stopped process cannot handle SIGTERM: continue it first, then kill it hard.
      child.kill('SIGCONT');
      child.kill('SIGKILL');
    }
    await Promise.all(exits);
    rmSync(this.dir, { recursive: true, force: true });
  }
}

export interface ChainEntry {
  readonly index: number;
  readonly hash: string;
  readonly prev_hash: string;
  readonly timestamp: number;
  readonly transactions: readonly unknown[];
}

/** Inits and starts a whole network (validators + config servers A and B), ready to use. */
export async function startNetwork(options: NetworkOptions = {}): Promise<TestNetwork> {
  for (let attempt = 0; ; attempt++) {
    const n = options.validators ?? 4;
    const basePort = await findFreeBasePort(n);
    const dir = mkdtempSync(join(tmpdir(), 'configchain-system-'));
    const made = await initNetwork({
      dir,
      validators: n,
      basePort,
      demo: options.demo ?? true,
      ...(options.heartbeatIntervalMs === undefined
        ? {}
        : { heartbeatIntervalMs: options.heartbeatIntervalMs }),
    });
    const init = options.headerAgeMsMax === undefined ? made : withHeaderAge(made, options.headerAgeMsMax);
    for (let v = 6; v <= (options.versions ?? 5); v++) {
      for (const id of ['A', 'B'] as const) {
        await seedArtifact(paths.configServerDir(dir, id), 'default', v, Buffer.from(String(v), 'utf8'));
      }
    }
    const net = new TestNetwork(dir, init, options.env ?? {});
    try {
      net.startConfigServer('A');
      net.startConfigServer('B');
      await net.waitConfigServers();
      for (let i = 0; i < n; i++) net.startValidator(i);
      await net.waitReady();
      return net;
    } catch (error) {
      const text = String((error as Error).message);
      await net.stop();
      if (attempt < 2 && text.includes('EADDRINUSE')) continue;
      throw error;
    }
  }
}

/** Rewrites genesis.json with another policy.headerAgeMsMax; nothing has read it yet. */
function withHeaderAge(init: InitResult, headerAgeMsMax: number): InitResult {
  const genesis = { ...init.genesis, policy: { ...init.genesis.policy, headerAgeMsMax } };
  writeFileSync(paths.genesis(init.dir), `${JSON.stringify(genesis, null, 2)}\n`);
  return { ...init, genesis };
}

/** What a finished `configchain` process printed, and how it exited. */
export interface CliRun {
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

/**
 * Spawns `configchain ...args` as a real process (asynchronously, so several can run at once).
 * `done` resolves once it exits, or rejects (after SIGKILL) when it runs longer than timeoutMs;
 * `child` is there for tests that signal it or watch its memory while it runs.
 */
export function spawnCli(
  args: readonly string[],
  timeoutMs = 60_000,
): { readonly child: ChildProcess; readonly done: Promise<CliRun> } {
  const child = spawn(process.execPath, ['--import', 'tsx', mainTs, ...args], {
    cwd: repoRoot,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout?.on('data', (c: Buffer) => {
    stdout += c.toString();
  });
  child.stderr?.on('data', (c: Buffer) => {
    stderr += c.toString();
  });
  const done = new Promise<CliRun>((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(
        new Error(`configchain ${args.join(' ')} did not finish in ${timeoutMs} ms:\n${stdout}\n${stderr}`),
      );
    }, timeoutMs);
    child.once('exit', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
  return { child, done };
}

/** Runs `configchain ...args` as a real process and resolves how it exited and what it printed. */
export function runCli(args: readonly string[], timeoutMs = 60_000): Promise<CliRun> {
  return spawnCli(args, timeoutMs).done;
}

export function sleep(ms: number): Promise<void> {
  return new Promise((done) => setTimeout(done, ms));
}

export function sha256OfText(text: string): string {
  return sha256Hex(Buffer.from(text, 'utf8'));
}

export const answers = {
  current: 'Success: Current hash is valid',
  added: 'Success: Hash is valid. New block was added to the chain.',
  failure: 'Failure: Hash is invalid. Please try again.',
} as const;
