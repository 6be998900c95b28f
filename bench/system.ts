/**
 * `npm run bench -- system [--clients N[,N...]] [--seconds S] [--versions V]
 *   [--verify-on thread-pool|event-loop] [--profile [--profile-out DIR]]`
 *
 * Starts a real 4-validator network (separate OS processes, temporary directory, random base
 * port) with both config servers, and measures side by side in the same run:
 *   1. a minimal fastify hello-world server: the machine's ceiling for this load generator;
 *   2. POST /validateHash of the CURRENT hash (the hot read path) on one validator;
 *   3. p50/p99 latency of POST /validateHash for a single new hash at a time, on an idle network;
 *   4. committed attest transactions per second with N concurrent clients spread over the four
 *      validators, each client validating the next version of its own target (versions of one
 *      target must increase, so a client's requests are sequential), with p50/p99 latency. One
 *      phase per client count (128 and 256 by default, each on targets of its own), and the peak:
 *      the closed-loop clients set how many requests wait while a block is decided, so more of
 *      them fill bigger blocks until the validators' CPU per transaction, not per block, limits.
 * Config server B is seeded with every version before anything starts. The load generator runs
 * in its own process (this file with --role load), so it does not share an event loop with the
 * servers it measures; it is bounded in requests and time.
 */
import { spawn } from 'node:child_process';
import { cpSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { availableParallelism, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ApiClient } from '../src/api/client.ts';
import { initNetwork } from '../src/cli/commands/init.ts';
import { type Child, logTail, ProcessGroup, validatorNodeFlags } from '../src/cli/up/processes.ts';
import { ArtifactStore } from '../src/configserver/store.ts';
import { sha256Hex } from '../src/crypto/hash.ts';
import type { Hash32Hex, TargetName } from '../src/encoding/brand.ts';
import { apiUrlOf, configServerUrl, findFreeBasePort, paths } from '../src/node/layout.ts';
import { defaultVerifyOn, type VerifyOn, verifyOnChoices } from '../src/node/verifier.ts';
import { describeAnswer, LoadConnection } from './lib/http-load.ts';

const thisFile = fileURLToPath(import.meta.url);

// The load generator ------------------------------------------------------------------------------

interface LoadSpec {
  readonly urls: readonly string[];
  readonly concurrency: number;
  readonly durationMs: number;
  readonly requestsMax: number;
  /** fixed: every request posts `body`; attest: client c posts the next version of target bench-c. */
  readonly mode: 'fixed' | 'attest';
  readonly body?: string;
  readonly versionsPerClient?: number;
  /** attest: the first client's number, so each phase validates targets of its own. */
  readonly firstClient?: number;
  readonly path: string;
}

interface LoadResult {
  readonly requests: number;
  readonly elapsedMs: number;
  readonly perSecond: number;
  readonly answers: Record<string, number>;
  readonly p50Ms: number;
  readonly p99Ms: number;
  /** CPU time (user + system) the load generator itself used during the run. */
  readonly cpuMs: number;
}

/** The target client number `client` validates versions of. */
function benchTarget(client: number): TargetName {
  return `bench-${client}` as TargetName;
}

/** The content of that target's version `version` on both config servers. */
function benchContent(client: number, version: number): string {
  return `bench-${client}-${version}`;
}

function percentile(sorted: readonly number[], p: number): number {
  if (sorted.length === 0) return Number.NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? Number.NaN;
}

async function runLoad(spec: LoadSpec): Promise<LoadResult> {
  const latencies: number[] = [];
  const answers: Record<string, number> = {};
  let started = 0;
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  const deadline = t0 + spec.durationMs;

  const connections: LoadConnection[] = [];
  const worker = async (client: number) => {
    const connection = new LoadConnection(new URL(spec.urls[client % spec.urls.length] as string));
    connections.push(connection);
    const id = (spec.firstClient ?? 0) + client;
    let version = 0;
    while (performance.now() < deadline && started < spec.requestsMax) {
      let body: string;
      if (spec.mode === 'attest') {
        version++;
        if (version > (spec.versionsPerClient ?? 0)) return;
        body = JSON.stringify({ hash: sha256Hex(benchContent(id, version)), target: benchTarget(id) });
      } else {
        body = spec.body ?? '{}';
      }
      started++;
      const t = performance.now();
      const answer = describeAnswer(await connection.post(spec.path, body));
      latencies.push(performance.now() - t);
      answers[answer] = (answers[answer] ?? 0) + 1;
    }
  };
  await Promise.all(Array.from({ length: spec.concurrency }, (_, c) => worker(c)));
  const elapsedMs = performance.now() - t0;
  const cpu = process.cpuUsage(cpu0);
  for (const connection of connections) connection.close();
  latencies.sort((a, b) => a - b);
  return {
    requests: latencies.length,
    elapsedMs,
    perSecond: (latencies.length * 1000) / elapsedMs,
    answers,
    p50Ms: percentile(latencies, 50),
    p99Ms: percentile(latencies, 99),
    cpuMs: (cpu.user + cpu.system) / 1000,
  };
}

/** Runs the load generator in its own process and returns its result. */
function loadInChild(spec: LoadSpec): Promise<LoadResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(
      process.execPath,
      ['--import', 'tsx', thisFile, '--role', 'load', JSON.stringify(spec)],
      {
        stdio: ['ignore', 'pipe', 'inherit'],
      },
    );
    let out = '';
    child.stdout.on('data', (c: Buffer) => {
      out += c.toString();
    });
    child.once('exit', (code) => {
      if (code !== 0) return reject(new Error(`load generator exited with ${code}: ${out}`));
      resolve(JSON.parse(out) as LoadResult);
    });
  });
}

// The hello-world ceiling -----------------------------------------------------------------------

async function helloServer(port: number): Promise<void> {
  const { default: Fastify } = await import('fastify');
  const app = Fastify({ logger: false });
  app.post('/validateHash', (_req, reply) => reply.type('text/plain; charset=utf-8').send('hello'));
  await app.listen({ host: '127.0.0.1', port });
  process.stdout.write('ready\n');
  process.on('SIGTERM', () => void app.close().then(() => process.exit(0)));
}

// The benchmark ---------------------------------------------------------------------------------

function flag(args: readonly string[], name: string, fallback: number): number {
  const i = args.indexOf(`--${name}`);
  const v = i >= 0 ? Number(args[i + 1]) : Number.NaN;
  return Number.isFinite(v) && v > 0 ? v : fallback;
}

/** `--clients N[,N...]`: the attest phases' client counts, or the fallback; anything else is refused. */
function clientsFlag(args: readonly string[], fallback: readonly number[]): readonly number[] {
  const i = args.indexOf('--clients');
  if (i < 0) return fallback;
  const given = args[i + 1] ?? '';
  const counts = given.split(',').map(Number);
  if (!counts.every((n) => Number.isSafeInteger(n) && n > 0))
    throw new Error(`--clients takes positive whole numbers separated by commas (128,256), not "${given}"`);
  return counts;
}

/** `--verify-on thread-pool|event-loop`, or the fallback; anything else is refused. */
function verifyOnFlag(args: readonly string[], fallback: VerifyOn): VerifyOn {
  const i = args.indexOf('--verify-on');
  if (i < 0) return fallback;
  const given = args[i + 1];
  const choice = verifyOnChoices.find((c) => c === given);
  if (choice === undefined)
    throw new Error(`--verify-on takes ${verifyOnChoices.join(' or ')}, not ${given}`);
  return choice;
}

async function waitReady(child: Child, probe: () => Promise<boolean>, timeoutMs = 90_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await probe().catch(() => false))) {
    if (child.exit !== null) throw new Error(`${child.name} exited:\n${logTail(child.logFile)}`);
    if (Date.now() > deadline) throw new Error(`${child.name} not ready:\n${logTail(child.logFile)}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** The idle-latency phase: validations made first and not measured, then measured ones. */
const idleWarmUp = 50;
const idleMeasured = 100;

/** One attest phase: its clients are numbered from firstClient, each with a target of its own. */
interface AttestPhase {
  readonly clients: number;
  readonly firstClient: number;
  readonly versionsPerClient: number;
}

/** Phases for these client counts; `versions` (0: about 20,000 per phase) versions per client. */
function attestPhases(counts: readonly number[], versions: number): AttestPhase[] {
  let firstClient = 0;
  return counts.map((clients) => {
    const phase = { clients, firstClient, versionsPerClient: versions || Math.ceil(20_000 / clients) };
    firstClient += clients;
    return phase;
  });
}

/** Seeds both config servers before they start: every phase's targets and the latency target. */
function seedConfigServers(dir: string, phases: readonly AttestPhase[]): void {
  const tSeed = performance.now();
  let seeded = 0;
  for (const id of ['A', 'B'] as const) {
    const store = ArtifactStore.open(paths.artifactsDir(dir, id), { durable: false });
    try {
      for (const { clients, firstClient, versionsPerClient } of phases) {
        for (let c = firstClient; c < firstClient + clients; c++) {
          for (let v = 1; v <= versionsPerClient; v++) {
            store.put(benchTarget(c), v, Buffer.from(benchContent(c, v)), 'text/plain');
            seeded++;
          }
        }
      }
      for (let v = 1; v <= idleWarmUp + idleMeasured; v++) {
        store.put('latency', v, Buffer.from(`latency-${v}`), 'text/plain');
      }
    } finally {
      store.close();
    }
  }
  console.log(
    `  seeded ${seeded / 2} versions on A and B in ${((performance.now() - tSeed) / 1000).toFixed(1)} s`,
  );
}

/**
 * `--in-process`: the four validators in this one process on the in-memory transport (frames
 * still serialized and parsed), called directly instead of over HTTP, with fsync off. What it
 * reports is the process's CPU time (all threads) per committed attest: the cost of the node's
 * own code (consensus, ledger, storage, signatures) without TLS and HTTP. CPU time, unlike
 * throughput, barely moves with other load on a shared machine, so this is the figure to compare
 * a change with; the full benchmark remains the acceptance figure.
 */
async function runInProcess(args: string[]): Promise<void> {
  const counts = clientsFlag(args, [128]);
  if (counts.length !== 1)
    throw new Error('--in-process measures one client count at a time: give --clients N');
  const [phase] = attestPhases(counts, flag(args, 'versions', 0)) as [AttestPhase];
  const { clients, versionsPerClient } = phase;
  const seconds = flag(args, 'seconds', 8);
  const fsync = args.includes('--fsync');
  // One process has one event loop for all four validators: with signatures checked on it, the
  // profile shows their cost where it is paid (the thread pool's time is not in the profile).
  const verifyOn = verifyOnFlag(args, 'event-loop');
  const dir = mkdtempSync(join(tmpdir(), 'cc-bench-inproc-'));
  const basePort = await findFreeBasePort(4);
  const group = new ProcessGroup();
  process.once('exit', () => group.killAllNow());
  const { MemoryNetwork } = await import('../src/net/memory-transport.ts');
  const { startNode } = await import('../src/node/start.ts');
  const { default: pino } = await import('pino');
  const running: Awaited<ReturnType<typeof startNode>>[] = [];
  try {
    console.log(
      `system benchmark, in-process: 4 validators, base port ${basePort}, fsync ${fsync ? 'on' : 'off'}`,
    );
    const { network } = await initNetwork({ dir, demo: true, basePort });
    seedConfigServers(dir, [phase]);
    const servers = network.configServers.map((s) =>
      group.start(
        `config server ${s.id}`,
        ['config-server', '--dir', dir, '--id', s.id],
        join(dir, `cs-${s.id}.log`),
      ),
    );
    await Promise.all(
      network.configServers.map((s, i) =>
        waitReady(
          servers[i] as Child,
          async () => (await fetch(`${configServerUrl(network, s.id)}/health`)).ok,
        ),
      ),
    );
    if (!fsync) process.env.CONFIGCHAIN_UNSAFE_SKIP_FSYNC = '1';
    const memory = new MemoryNetwork({ validators: network.validators.length });
    const logger = pino({ level: 'error' });
    for (const v of network.validators) {
      running.push(
        await startNode({ dir, id: v.id, logger, verifyOn, transport: () => memory.transport(v.id) }),
      );
    }
    const nodes = running.map((r) => r.node);
    const first = await nodes[0]?.validateHash('default' as TargetName, sha256Hex('1') as Hash32Hex, {});
    if (first?.outcome !== 'added' && first?.outcome !== 'current')
      throw new Error(`could not validate v1: ${JSON.stringify(first)}`);
    console.log('  network ready');

    const heightBefore = nodes[0]?.status().height ?? 0;
    const answers: Record<string, number> = {};
    const latencies: number[] = [];
    const cpu0 = process.cpuUsage();
    const t0 = performance.now();
    const deadline = t0 + seconds * 1000;
    const worker = async (client: number) => {
      const node = nodes[client % nodes.length];
      if (node === undefined) return;
      for (let version = 1; version <= versionsPerClient && performance.now() < deadline; version++) {
        const hash = sha256Hex(benchContent(client, version)) as Hash32Hex;
        const t = performance.now();
        const answer = await node.validateHash(benchTarget(client), hash, {});
        latencies.push(performance.now() - t);
        answers[answer.outcome] = (answers[answer.outcome] ?? 0) + 1;
      }
    };
    await Promise.all(Array.from({ length: clients }, (_, c) => worker(c)));
    const elapsedMs = performance.now() - t0;
    const cpu = process.cpuUsage(cpu0);
    const cpuMs = (cpu.user + cpu.system) / 1000;
    const added = answers.added ?? 0;
    const blocks = (nodes[0]?.status().height ?? 0) - heightBefore;
    latencies.sort((a, b) => a - b);
    console.log('');
    console.log(`results (${clients} clients calling validateHash directly, ${seconds} s):`);
    line('answers', JSON.stringify(answers));
    line(
      'committed attests per second',
      `${Math.round((added * 1000) / elapsedMs)}/s  (${added} in ${(elapsedMs / 1000).toFixed(1)} s, ${blocks} blocks, ${(added / Math.max(1, blocks)).toFixed(1)} per block)`,
    );
    line(
      'latency',
      `p50 ${percentile(latencies, 50).toFixed(1)} ms  p99 ${percentile(latencies, 99).toFixed(1)} ms`,
    );
    line(
      'CPU of the four validators (all threads)',
      `${((100 * cpuMs) / elapsedMs).toFixed(0)}% of one core, ${(cpuMs / Math.max(1, added)).toFixed(3)} ms per committed attest`,
    );
    line(
      'CPU per attest per validator',
      `${((1000 * cpuMs) / Math.max(1, added) / nodes.length).toFixed(0)} us`,
    );
  } finally {
    for (const r of running) await r.stop();
    await group.stopAll();
    rmSync(dir, { recursive: true, force: true });
  }
}

function line(label: string, value: string): void {
  console.log(`  ${label.padEnd(52)} ${value}`);
}

function fmt(r: LoadResult): string {
  return `${Math.round(r.perSecond)}/s  p50 ${r.p50Ms.toFixed(2)} ms  p99 ${r.p99Ms.toFixed(2)} ms  (${r.requests} requests: ${tally(r.answers)})`;
}

function tally(answers: Record<string, number>): string {
  return Object.entries(answers)
    .sort((a, b) => b[1] - a[1])
    .map(([k, n]) => `${n} x "${k}"`)
    .join(', ');
}

export async function run(args: string[]): Promise<void> {
  if (args.includes('--in-process')) return runInProcess(args);
  const seconds = flag(args, 'seconds', 8);
  const phases = attestPhases(clientsFlag(args, [128, 256]), flag(args, 'versions', 0));
  const profile = args.includes('--profile');
  // --profile-out DIR keeps the validators' CPU profiles after the run (the run's folder is removed).
  const profileOutAt = args.indexOf('--profile-out');
  const profileOut = profileOutAt >= 0 ? args[profileOutAt + 1] : undefined;
  const dir = mkdtempSync(join(tmpdir(), 'cc-bench-system-'));
  const basePort = await findFreeBasePort(4);
  const group = new ProcessGroup();
  process.once('exit', () => group.killAllNow());
  try {
    console.log(`system benchmark: 4 validators, base port ${basePort}, dir ${dir}`);
    const { network } = await initNetwork({ dir, demo: true, basePort });

    seedConfigServers(dir, phases);

    const servers = network.configServers.map((s) =>
      group.start(
        `config server ${s.id}`,
        ['config-server', '--dir', dir, '--id', s.id],
        join(dir, `cs-${s.id}.log`),
      ),
    );
    // With --profile, every validator records a CPU profile of the whole run; validator 0's (the
    // primary of view 0) is summarized, and --profile-out DIR keeps them all.
    const profileDir = join(dir, 'profile');
    // As `configchain up` decides, unless --verify-on names a place.
    const verifyOn = verifyOnFlag(args, defaultVerifyOn(network.validators.length, availableParallelism()));
    console.log(`  validators check signatures on the ${verifyOn}`);
    const validators = network.validators.map((v) =>
      group.start(
        `validator ${v.id}`,
        ['node', '--dir', dir, '--id', String(v.id), '--verify-on', verifyOn],
        join(dir, `v${v.id}.log`),
        [
          ...validatorNodeFlags(network.validators.length, availableParallelism()),
          ...(profile ? ['--cpu-prof', `--cpu-prof-dir=${join(profileDir, `v${v.id}`)}`] : []),
        ],
      ),
    );
    const urls = network.validators.map(apiUrlOf);
    await Promise.all([
      ...network.configServers.map((s, i) =>
        waitReady(
          servers[i] as Child,
          async () => (await fetch(`${configServerUrl(network, s.id)}/health`)).ok,
        ),
      ),
      ...validators.map((c, i) =>
        waitReady(c, async () => (await new ApiClient(urls[i] as string, { timeoutMs: 1000 }).ready()).ready),
      ),
    ]);
    console.log('  network ready');

    // 1. The ceiling: hello-world fastify in its own process, same load generator and body.
    const helloPort = basePort + 500;
    const hello = spawn(
      process.execPath,
      ['--import', 'tsx', thisFile, '--role', 'hello', String(helloPort)],
      {
        stdio: ['ignore', 'pipe', 'inherit'],
      },
    );
    await new Promise<void>((resolve) => hello.stdout.once('data', () => resolve()));
    const readSpec = (url: string, body: string): LoadSpec => ({
      urls: [url],
      concurrency: 64,
      // With --profile the read phases are cut short, so the profile shows the attest path.
      durationMs: profile ? 500 : seconds * 1000,
      requestsMax: 2_000_000,
      mode: 'fixed',
      body,
      path: '/validateHash',
    });
    // 2. Current-hash reads on validator 0 (make version 1 of "default" current first). The
    // machine is shared, so the ceiling and the reads alternate twice and each keeps its best run:
    // a burst of outside load then cannot make one of them look better than it is.
    const current = sha256Hex('1');
    const first = await new ApiClient(urls[0] as string).validateHash(current);
    if (first.outcome !== 'added' && first.outcome !== 'current')
      throw new Error(`could not validate v1: ${first.text}`);
    const body = JSON.stringify({ hash: current });
    const best = (a: LoadResult, b: LoadResult) => (a.perSecond >= b.perSecond ? a : b);
    let ceiling = await loadInChild(readSpec(`http://127.0.0.1:${helloPort}`, body));
    let reads = await loadInChild(readSpec(urls[0] as string, body));
    ceiling = best(ceiling, await loadInChild(readSpec(`http://127.0.0.1:${helloPort}`, body)));
    reads = best(reads, await loadInChild(readSpec(urls[0] as string, body)));
    hello.kill('SIGTERM');

    // 3. Latency of one new hash at a time on an idle network, measured after idleWarmUp
    // validations that are not: until V8 has compiled the consensus path, the first few dozen
    // take 1-2 ms longer (medians of 8.8-9.2 ms for the first 50 against 6.8-7.9 for the 50
    // after 100, in two runs), and a running network is past that point.
    const idle: number[] = [];
    const latencyAnswers: Record<string, number> = {};
    const idleConnection = new LoadConnection(new URL(urls[0] as string));
    for (let v = 1; v <= idleWarmUp + idleMeasured; v++) {
      const body = JSON.stringify({ hash: sha256Hex(`latency-${v}`), target: 'latency' });
      const t = performance.now();
      const answer = describeAnswer(await idleConnection.post('/validateHash', body));
      if (v <= idleWarmUp) continue;
      idle.push(performance.now() - t);
      latencyAnswers[answer] = (latencyAnswers[answer] ?? 0) + 1;
    }
    idleConnection.close();
    idle.sort((a, b) => a - b);

    // 4. Committed attests per second, one phase per client count, over all four validators.
    const validatorPids = validators.map((c) => c.process.pid);
    const serverPids = servers.map((c) => c.process.pid);
    const attestPhase = async (phase: AttestPhase) => {
      const heightBefore = (await new ApiClient(urls[0] as string).status()).height;
      const serverCpuBefore = cpuMsOf(serverPids);
      const cpuBefore = cpuMsOf(validatorPids);
      const machineBefore = machineTicks();
      const load = await loadInChild({
        urls,
        concurrency: phase.clients,
        durationMs: seconds * 1000,
        requestsMax: phase.clients * phase.versionsPerClient,
        mode: 'attest',
        versionsPerClient: phase.versionsPerClient,
        firstClient: phase.firstClient,
        path: '/validateHash',
      });
      const validatorCpu = cpuSpent(cpuBefore, cpuMsOf(validatorPids));
      const serverMs = cpuSpent(serverCpuBefore, cpuMsOf(serverPids))?.totalMs;
      const machineAfter = machineTicks();
      const added = Object.entries(load.answers)
        .filter(([k]) => k.startsWith('200 Success: Hash is valid. New block'))
        .reduce((n, [, c]) => n + c, 0);
      const blocks = (await new ApiClient(urls[0] as string).status()).height - heightBefore;
      let machineBusy: number | null = null;
      if (machineBefore !== null && machineAfter !== null) {
        const busy = machineAfter.busy - machineBefore.busy;
        machineBusy = busy / Math.max(1, busy + machineAfter.idle - machineBefore.idle);
      }
      return { phase, load, added, blocks, validatorCpu, serverMs, machineBusy };
    };
    const attests: Awaited<ReturnType<typeof attestPhase>>[] = [];
    for (const phase of phases) attests.push(await attestPhase(phase));
    const heights = await Promise.all(urls.map((u) => new ApiClient(u).status().then((s) => s.height)));

    console.log('');
    console.log(`results (${seconds} s per phase, 64 connections for reads, best of 2 alternating runs):`);
    line('hello-world fastify (ceiling)', fmt(ceiling));
    line('POST /validateHash, current hash, validator 0', fmt(reads));
    line(
      '  current-hash reads vs ceiling',
      `${((100 * reads.perSecond) / ceiling.perSecond).toFixed(0)}%   (target >= 40%)`,
    );
    line(
      'POST /validateHash, one new hash at a time (idle)',
      `p50 ${percentile(idle, 50).toFixed(2)} ms  p99 ${percentile(idle, 99).toFixed(2)} ms  (target p50 < 10 ms; ${idleWarmUp} before these not measured; ${tally(latencyAnswers)})`,
    );
    for (const { phase, load, added, blocks, validatorCpu, serverMs, machineBusy } of attests) {
      line(`POST /validateHash, new hashes, ${phase.clients} clients`, fmt(load));
      line(
        '  committed attests per second',
        `${Math.round((added * 1000) / load.elapsedMs)}/s   (${added} added in ${(load.elapsedMs / 1000).toFixed(1)} s, ${blocks} blocks, ${(added / Math.max(1, blocks)).toFixed(0)} per block)`,
      );
      if (validatorCpu !== null && added > 0) {
        const { userMs, systemMs, totalMs: cpuMs } = validatorCpu;
        line(
          '  validator CPU (all four)',
          `${((100 * cpuMs) / load.elapsedMs).toFixed(0)}% of one core, ${(cpuMs / added).toFixed(2)} ms per committed attest (${(userMs / added).toFixed(2)} user, ${(systemMs / added).toFixed(2)} kernel)`,
        );
      }
      if (serverMs !== undefined && added > 0) {
        line(
          '  config servers A and B, load generator',
          `${((1000 * serverMs) / added).toFixed(0)} us and ${((1000 * load.cpuMs) / added).toFixed(0)} us of CPU per committed attest`,
        );
      }
      if (machineBusy !== null) {
        line(
          '  whole machine',
          `${(100 * machineBusy).toFixed(0)}% busy over ${availableParallelism()} cores (load generator and everything else included)`,
        );
      }
    }
    const rate = (a: (typeof attests)[number]) => (a.added * 1000) / a.load.elapsedMs;
    const peak = attests.reduce((best, a) => (rate(a) > rate(best) ? a : best));
    line(
      'peak committed attests per second',
      `${Math.round(rate(peak))}/s with ${peak.phase.clients} clients   (target >= 2000)`,
    );
    line('validator heights after the run', heights.join(' '));
    if (profile) {
      await group.stopAll();
      if (profileOut !== undefined) cpSync(profileDir, profileOut, { recursive: true });
      printProfile(join(profileDir, 'v0'));
    }
  } finally {
    await group.stopAll();
    rmSync(dir, { recursive: true, force: true });
  }
}

/**
 * CPU time (user + system, all threads) the given processes have used so far, in ms, from
 * /proc/<pid>/stat (Linux; its clock ticks are USER_HZ = 100 per second). Null where /proc is
 * missing, so the benchmark still runs elsewhere without this figure.
 */
interface CpuReading {
  readonly userMs: number;
  readonly systemMs: number;
}

function cpuMsOf(pids: readonly (number | undefined)[]): CpuReading | null {
  let user = 0;
  let system = 0;
  for (const pid of pids) {
    if (pid === undefined) return null;
    let stat: string;
    try {
      stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    } catch {
      return null;
    }
    // Fields after the command name (which may hold spaces) start at field 3; utime and stime
    // are fields 14 and 15.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    user += Number(fields[11]);
    system += Number(fields[12]);
  }
  return Number.isFinite(user + system) ? { userMs: user * 10, systemMs: system * 10 } : null;
}

/** The CPU time used between two cpuMsOf readings, or null when either is missing. */
function cpuSpent(
  before: CpuReading | null,
  after: CpuReading | null,
): { userMs: number; systemMs: number; totalMs: number } | null {
  if (before === null || after === null) return null;
  const userMs = after.userMs - before.userMs;
  const systemMs = after.systemMs - before.systemMs;
  return { userMs, systemMs, totalMs: userMs + systemMs };
}

/** Ticks the whole machine spent busy and idle (idle + iowait) so far, from /proc/stat; null elsewhere. */
function machineTicks(): { busy: number; idle: number } | null {
  try {
    const cpu =
      readFileSync('/proc/stat', 'utf8').split('\n')[0]?.trim().split(/\s+/).slice(1).map(Number) ?? [];
    const idle = (cpu[3] ?? 0) + (cpu[4] ?? 0);
    const busy = cpu.slice(0, 8).reduce((a, b) => a + b, 0) - idle;
    return Number.isFinite(busy) ? { busy, idle } : null;
  } catch {
    return null;
  }
}

interface CpuProfile {
  readonly nodes: readonly {
    readonly id: number;
    readonly callFrame: { readonly functionName: string; readonly url: string; readonly lineNumber: number };
  }[];
  readonly samples: readonly number[];
  readonly startTime: number;
  readonly endTime: number;
}

/** The functions validator 0 spent most of its samples in (self time), and how idle it was. */
function printProfile(profileDir: string): void {
  let files: string[];
  try {
    files = readdirSync(profileDir).filter((f) => f.endsWith('.cpuprofile'));
  } catch {
    files = [];
  }
  const main = files
    .map((f) => ({ f, size: statSync(join(profileDir, f)).size }))
    .sort((a, b) => b.size - a.size)[0];
  if (main === undefined) {
    console.log('  (no CPU profile was written: validator 0 did not exit through process.exit)');
    return;
  }
  const prof = JSON.parse(readFileSync(join(profileDir, main.f), 'utf8')) as CpuProfile;
  const frames = new Map(prof.nodes.map((n) => [n.id, n.callFrame]));
  const self = new Map<string, number>();
  for (const id of prof.samples) {
    const frame = frames.get(id);
    const where =
      frame === undefined
        ? '?'
        : `${frame.functionName || '(anonymous)'} ${frame.url.split('/').slice(-2).join('/')}:${frame.lineNumber + 1}`;
    self.set(where, (self.get(where) ?? 0) + 1);
  }
  const total = prof.samples.length;
  console.log('');
  console.log(
    `CPU profile of validator 0 over the whole run (${((prof.endTime - prof.startTime) / 1e6).toFixed(1)} s, ${total} samples), top self time:`,
  );
  for (const [where, n] of [...self].sort((a, b) => b[1] - a[1]).slice(0, 20)) {
    console.log(`  ${((100 * n) / total).toFixed(1).padStart(5)}%  ${where}`);
  }
}

// Child roles: `--role load <spec json>` and `--role hello <port>`.
if (process.argv[1] === thisFile) {
  const role = process.argv[process.argv.indexOf('--role') + 1];
  const arg = process.argv[process.argv.indexOf('--role') + 2] ?? '';
  if (role === 'load') {
    const result = await runLoad(JSON.parse(arg) as LoadSpec);
    process.stdout.write(JSON.stringify(result));
  } else if (role === 'hello') {
    await helloServer(Number(arg));
  }
}
