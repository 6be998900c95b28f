/**
 * `configchain up [--dir DIR]` (also `npm start`): creates the demo network if DIR has none,
 * starts every validator and config server as its own OS process, waits until they are ready,
 * prints where everything is, runs the article's demo and then the device demo (src/cli/up/
 * device-demo.ts: the network's device is enrolled, its agent started as its own process, and
 * five versions of its target published while it applies and reports each), and then shows a
 * one-line live status until Ctrl-C or SIGTERM, which stops every child, the device agent
 * included (SIGTERM, then SIGKILL after a grace period).
 *
 * --demo-only exits after the demo (and a check that every validator serves the same /chain)
 * with status 0 only if every answer was as expected and the device applied and reported every
 * version; --no-demo starts the network and runs neither demo, so a device of the user's own can
 * be the first to validate.
 */
import { existsSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import type { Command } from 'commander';
import { ApiClient } from '../../api/client.ts';
import { portMax } from '../../constants.ts';
import { apiUrlOf, configServerUrl, loadNetworkFile, type NetworkFile, paths } from '../../node/layout.ts';
import { defaultVerifyOn } from '../../node/verifier.ts';
import { wholeNumberOption } from '../args.ts';
import { runDemo } from '../up/demo.ts';
import { runDeviceDemo } from '../up/device-demo.ts';
import { type Child, logTail, ProcessGroup, repoRoot, validatorNodeFlags } from '../up/processes.ts';
import { deviceDemoTarget, initNetwork } from './init.ts';

export interface UpOptions {
  readonly dir: string;
  readonly basePort?: number;
  readonly demo: boolean;
  readonly demoOnly: boolean;
  /** Live status refresh period. */
  readonly statusIntervalMs?: number;
  readonly readyTimeoutMs?: number;
}

export const defaultNetworkDir = join(repoRoot, '.configchain');
const statusTimeoutMs = 800;
const chainsAgreeTimeoutMs = 10_000;
/** Versions the device part of the demo publishes, and how often the demo device polls. */
const deviceDemoVersions = 5;
const deviceDemoIntervalMs = 500;

class UpError extends Error {}

function say(line = ''): void {
  process.stdout.write(`${line}\n`);
}

async function waitUntil(
  what: string,
  child: Child,
  probe: () => Promise<boolean>,
  timeoutMs: number,
  interrupted: () => boolean,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (interrupted()) throw new UpError('interrupted while starting; stopping everything');
    if (child.exit !== null) {
      throw new UpError(
        `${child.name} exited (code ${child.exit.code}, signal ${child.exit.signal}) before it was ready; its log ${child.logFile} ends with:\n${logTail(child.logFile)}`,
      );
    }
    if (await probe().catch(() => false)) return;
    if (Date.now() > deadline) {
      throw new UpError(
        `${what} was not ready after ${timeoutMs / 1000} s; its log ${child.logFile} ends with:\n${logTail(child.logFile)}`,
      );
    }
    await new Promise((r) => setTimeout(r, 100));
  }
}

async function ensureNetwork(dir: string, basePort: number | undefined): Promise<NetworkFile> {
  if (existsSync(paths.network(dir))) {
    const network = loadNetworkFile(dir);
    say(`Using the network in ${dir} (chain ${network.chainId}).`);
    if (basePort !== undefined) say('  (--base-port is ignored: the existing network keeps its ports)');
    return network;
  }
  say(`Creating a demo network in ${dir} ...`);
  const init = await initNetwork({ dir, demo: true, ...(basePort !== undefined ? { basePort } : {}) });
  return init.network;
}

/** Polls every validator's /chain until all agree (bounded); returns whether they did. */
async function chainsAgree(urls: readonly string[]): Promise<{ agree: boolean; detail: string }> {
  const deadline = Date.now() + chainsAgreeTimeoutMs;
  let detail = '';
  for (;;) {
    const chains = await Promise.all(
      urls.map((u) =>
        new ApiClient(u, { timeoutMs: 5000 })
          .chain()
          .then((c) => JSON.stringify(c.chain))
          .catch((e: Error) => `unreachable: ${e.message}`),
      ),
    );
    const first = chains[0];
    if (first !== undefined && !first.startsWith('unreachable') && chains.every((c) => c === first)) {
      const length = (JSON.parse(first) as unknown[]).length;
      return { agree: true, detail: `${length} blocks, identical on all ${urls.length} validators` };
    }
    detail = chains
      .map((c, i) => `validator ${i}: ${c.startsWith('unreachable') ? c : `${c.length} bytes`}`)
      .join('; ');
    if (Date.now() > deadline) return { agree: false, detail };
    await new Promise((r) => setTimeout(r, 200));
  }
}

async function statusLine(urls: readonly string[]): Promise<string> {
  const statuses = await Promise.all(
    urls.map((u) => new ApiClient(u, { timeoutMs: statusTimeoutMs }).status().catch(() => null)),
  );
  const up = statuses.filter((s) => s !== null);
  const heights = up.map((s) => s.height);
  const views = up.map((s) => s.view);
  const links = statuses.map((s) =>
    s === null ? 'down' : `${s.peers.filter((p) => p.connected).length}/${s.peers.length}`,
  );
  const height = heights.length === 0 ? '-' : `${Math.max(...heights)}`;
  const lag =
    heights.length > 0 && Math.min(...heights) !== Math.max(...heights)
      ? ` (min ${Math.min(...heights)})`
      : '';
  const view = views.length === 0 ? '-' : `${Math.max(...views)}`;
  const primary = up[0]?.primary ?? '-';
  return `height ${height}${lag} | view ${view} | primary ${primary} | validators up ${up.length}/${urls.length} | peer links ${links.join(' ')} | Ctrl-C stops`;
}

export async function up(options: UpOptions): Promise<number> {
  const dir = resolve(options.dir);
  const group = new ProcessGroup();
  process.once('exit', () => group.killAllNow());
  let stopRequested: (() => void) | null = null;
  const stopped = new Promise<void>((done) => {
    stopRequested = done;
  });
  let interrupted = false;
  const onSignal = () => {
    interrupted = true;
    group.markStopping();
    stopRequested?.();
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);

  try {
    const network = await ensureNetwork(dir, options.basePort);
    const validatorUrls = network.validators.map(apiUrlOf);
    const readyTimeoutMs = options.readyTimeoutMs ?? 60_000;

    const servers = network.configServers.map((s) =>
      group.start(
        `config server ${s.id}`,
        ['config-server', '--dir', dir, '--id', s.id],
        join(paths.configServerDir(dir, s.id), 'process.log'),
      ),
    );
    // Every validator runs on this machine: a pool thread for signatures helps only when the
    // machine has a core to spare beyond the validators' event loops.
    const verifyOn = defaultVerifyOn(network.validators.length, availableParallelism());
    const validators = network.validators.map((v) =>
      group.start(
        `validator ${v.id}`,
        ['node', '--dir', dir, '--id', String(v.id), '--verify-on', verifyOn],
        join(paths.dataDir(dir, v.id), 'process.log'),
        validatorNodeFlags(network.validators.length, availableParallelism()),
      ),
    );
    say(`Starting ${servers.length} config servers and ${validators.length} validators ...`);
    await Promise.all([
      ...network.configServers.map((s, i) => {
        const url = configServerUrl(network, s.id);
        const child = servers[i] as Child;
        return waitUntil(
          child.name,
          child,
          async () => (await fetch(`${url}/health`)).ok,
          readyTimeoutMs,
          () => interrupted,
        );
      }),
      ...validators.map((child, i) => {
        const client = new ApiClient(validatorUrls[i] as string, { timeoutMs: 1000 });
        return waitUntil(
          child.name,
          child,
          async () => (await client.ready()).ready,
          readyTimeoutMs,
          () => interrupted,
        );
      }),
    ]);
    group.onUnexpectedExit = (child) => {
      say(
        `\n${child.name} exited (code ${child.exit?.code}, signal ${child.exit?.signal}); see ${child.logFile}`,
      );
    };

    say('');
    say('ConfigChain is up:');
    network.validators.forEach((v, i) => {
      const url = validatorUrls[i] as string;
      say(
        `  validator ${v.id}  ${url}  (/validateHash /chain /v1/status /docs /metrics)  peer :${v.peerPort}`,
      );
      say(`               logs ${paths.nodeLog(dir, v.id)}, ${validators[i]?.logFile}`);
    });
    for (const s of network.configServers) {
      say(
        `  config server ${s.id} (${s.role})  ${configServerUrl(network, s.id)}/v1/targets/default/versions`,
      );
    }
    say(`  dashboard  ${validatorUrls[0]}/ui/  (every validator serves it at /ui)`);
    say(`  network directory ${dir}`);

    let demoOk = true;
    if (options.demo || options.demoOnly) {
      say('');
      const result = await runDemo({
        configServerA: configServerUrl(network, 'A'),
        validatorUrl: validatorUrls[0] as string,
        print: say,
      });
      demoOk = result.ok;
      say('');
      const deviceId = network.devices[0] ?? 'device-1';
      const device = await runDeviceDemo({
        dir,
        deviceId,
        target: deviceDemoTarget,
        versions: deviceDemoVersions,
        validatorUrl: validatorUrls[0] as string,
        startDevice: () =>
          group.start(
            `device ${deviceId}`,
            ['device', '--dir', dir, '--id', deviceId, '--interval-ms', String(deviceDemoIntervalMs)],
            join(dirname(paths.deviceFile(dir, deviceId)), 'process.log'),
          ),
        interrupted: () => interrupted,
        print: say,
      });
      demoOk &&= device.ok;
      const agreement = await chainsAgree(validatorUrls);
      say(
        agreement.agree
          ? `GET /chain: ${agreement.detail}.`
          : `GET /chain: the validators DISAGREE after ${chainsAgreeTimeoutMs / 1000} s: ${agreement.detail}`,
      );
      demoOk &&= agreement.agree;
    }
    if (options.demoOnly) {
      say('Stopping the network ...');
      return demoOk ? 0 : 1;
    }

    say('');
    const tty = process.stdout.isTTY === true;
    let last = '';
    const refresh = async () => {
      const line = await statusLine(validatorUrls);
      if (tty) process.stdout.write(`\r\x1b[2K${line}`);
      else if (line !== last) say(line);
      last = line;
    };
    await refresh();
    const timer = setInterval(() => void refresh(), options.statusIntervalMs ?? 1000);
    await stopped;
    clearInterval(timer);
    if (tty) say('');
    say('Stopping the network ...');
    return 0;
  } catch (err) {
    say(`configchain up: ${(err as Error).message}`);
    return 1;
  } finally {
    await group.stopAll();
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    say('Every process has stopped.');
  }
}

export function registerUp(program: Command): void {
  program
    .command('up')
    .description(
      'start a local network (creating the demo network if missing), run the demo, show live status',
    )
    .option('--dir <dir>', 'the network directory', defaultNetworkDir)
    .option(
      '--base-port <port>',
      'port base when creating a network (API P+1+i, peer P+1001+i, A P+101, B P+102)',
      wholeNumberOption('--base-port', 1, portMax),
    )
    .option('--demo-only', 'run the demo, then stop everything; exit 0 only if every answer was as expected')
    .option('--no-demo', 'start the network without running the demo')
    .action(async (opts: { dir: string; basePort?: number; demo: boolean; demoOnly?: boolean }) => {
      const code = await up({
        dir: opts.dir,
        demo: opts.demo,
        demoOnly: opts.demoOnly === true,
        ...(opts.basePort !== undefined ? { basePort: opts.basePort } : {}),
      });
      process.exit(code);
    });
}
