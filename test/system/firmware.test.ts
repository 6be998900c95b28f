/**
 * A 200 MB firmware through the whole flow on a real 4-validator network: `configchain publish`
 * streams it to both config servers and the validators hash it from config server B before they
 * vote; `configchain devices enroll` registers a device; the real `configchain device --once`
 * process downloads it in Range chunks through a counting proxy in front of config server A, and
 * is SIGKILLed once its partial file holds half of it. The second run resumes from there (the
 * proxy serves only the rest, and the first Range asks from that byte), verifies the whole hash,
 * applies the file and reports it on the ledger.
 */
import assert from 'node:assert/strict';
import type { ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import {
  closeSync,
  createReadStream,
  existsSync,
  openSync,
  readdirSync,
  readFileSync,
  statSync,
  writeFileSync,
  writeSync,
} from 'node:fs';
import { createServer, request as httpRequest, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { paths } from '../../src/node/layout.ts';
import { type CliRun, sleep, spawnCli, startNetwork, type TestNetwork } from './harness.ts';

const SIZE = 200 * 1000 * 1000;
const HALF = SIZE / 2;
const TARGET = 'firmware:cam';
const DEVICE = 'cam-1';
/** Peak resident memory allowed to every process that handles the artifact. */
const RSS_BOUND = 260 * 2 ** 20;

function cli(args: readonly string[], timeoutMs = 90_000): { child: ChildProcess; done: Promise<CliRun> } {
  return spawnCli(args, timeoutMs);
}

/** Writes `size` bytes of a seeded xorshift32 stream to a file, 1 MiB at a time; returns its sha256. */
function writeFirmware(file: string, size: number, seed: number): string {
  const hash = createHash('sha256');
  const block = Buffer.alloc(1024 * 1024);
  let x = seed >>> 0 || 1;
  const fd = openSync(file, 'w');
  try {
    for (let written = 0; written < size; ) {
      for (let i = 0; i < block.length; i += 4) {
        x ^= x << 13;
        x >>>= 0;
        x ^= x >>> 17;
        x ^= x << 5;
        x >>>= 0;
        block.writeUInt32LE(x, i);
      }
      const n = Math.min(block.length, size - written);
      writeSync(fd, block, 0, n);
      hash.update(block.subarray(0, n));
      written += n;
    }
  } finally {
    closeSync(fd);
  }
  return hash.digest('hex');
}

/** VmHWM (peak resident memory) of a process in bytes, or 0 once it is gone. */
function peakRss(pid: number): number {
  try {
    const m = /VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m === null ? 0 : Number(m[1]) * 1024;
  } catch {
    return 0;
  }
}

/** The network's own processes (config servers, validators): their command line names its directory. */
function networkPids(dir: string): { pid: number; what: string }[] {
  const found: { pid: number; what: string }[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    let cmdline: string;
    try {
      cmdline = readFileSync(`/proc/${entry}/cmdline`, 'utf8').split('\0').join(' ');
    } catch {
      continue;
    }
    if (!cmdline.includes(dir)) continue;
    const what =
      /config-server .*--id (\w)/.exec(cmdline)?.[1] ?? /main\.ts node .*--id (\d+)/.exec(cmdline)?.[1];
    if (what !== undefined)
      found.push({
        pid: Number(entry),
        what: cmdline.includes('config-server') ? `config server ${what}` : `validator ${what}`,
      });
  }
  return found;
}

/** Samples a child's peak resident memory until it exits. */
function watchPeak(child: ChildProcess): { peak: () => number } {
  let peak = 0;
  const timer = setInterval(() => {
    if (child.pid !== undefined) peak = Math.max(peak, peakRss(child.pid));
  }, 50);
  child.once('exit', () => clearInterval(timer));
  return { peak: () => peak };
}

async function sha256OfFile(file: string): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of createReadStream(file)) hash.update(chunk as Buffer);
  return hash.digest('hex');
}

/**
 * A proxy in front of config server A that counts the artifact bytes it passes on and records the
 * Range of each request; with stallAt set it passes on bytes only up to that total and then holds
 * the connection open without sending more (a link that died), so the kill point is exact.
 */
interface Proxy {
  readonly url: string;
  bytes: number;
  ranges: string[];
  stallAt: number | null;
  readonly server: Server;
}

async function startProxy(target: string): Promise<Proxy> {
  const upstream = new URL(target);
  const proxy: Proxy = {
    url: '',
    bytes: 0,
    ranges: [],
    stallAt: null,
    server: createServer((req, res) => {
      proxy.ranges.push(req.headers.range ?? 'none');
      const headers: Record<string, string> = {};
      for (const name of ['range', 'if-range', 'if-none-match'] as const) {
        const v = req.headers[name];
        if (typeof v === 'string') headers[name] = v;
      }
      const up = httpRequest(
        { host: upstream.hostname, port: upstream.port, path: req.url, method: 'GET', headers },
        (answer: IncomingMessage) => {
          res.writeHead(answer.statusCode ?? 502, answer.headers);
          answer.on('data', (chunk: Buffer) => {
            const stall = proxy.stallAt;
            if (stall !== null && proxy.bytes + chunk.length >= stall) {
              const room = stall - proxy.bytes;
              proxy.bytes += room;
              if (room > 0) res.write(chunk.subarray(0, room));
              answer.destroy();
              return;
            }
            proxy.bytes += chunk.length;
            if (!res.write(chunk)) {
              answer.pause();
              res.once('drain', () => answer.resume());
            }
          });
          answer.on('end', () => res.end());
        },
      );
      up.on('error', () => res.destroy());
      up.end();
    }),
  };
  await new Promise<void>((resolve) => proxy.server.listen(0, '127.0.0.1', resolve));
  (proxy as { url: string }).url = `http://127.0.0.1:${(proxy.server.address() as AddressInfo).port}`;
  return proxy;
}

describe('a 200 MB firmware: publish, check before voting, a killed and resumed device download', () => {
  let net: TestNetwork;
  let proxy: Proxy;

  before(async () => {
    net = await startNetwork({ validators: 4, demo: false });
    proxy = await startProxy(net.configServerUrl('A'));
  });

  after(async () => {
    proxy?.server.closeAllConnections();
    proxy?.server.close();
    // The firmware file and the device's files live in the network directory, deleted here.
    await net?.stop();
  });

  it('publishes it, and a device killed halfway resumes, verifies the hash, applies and reports', async () => {
    const dir = net.dir;
    const file = join(dir, 'firmware.bin');
    const sha256 = writeFirmware(file, SIZE, 0x5eed);

    const publishStarted = Date.now();
    const publishing = cli(['publish', '--dir', dir, '--target', TARGET, '--file', file, '--json']);
    const publishPeak = watchPeak(publishing.child);
    const published = await publishing.done;
    assert.equal(published.code, 0, published.stderr + published.stdout);
    const release = JSON.parse(published.stdout) as {
      status: string;
      sha256: string;
      size: number;
      version: number;
    };
    assert.equal(release.status, 'committed');
    assert.equal(release.sha256, sha256);
    assert.equal(release.size, SIZE);
    console.log(
      `publish of ${SIZE} bytes (upload to A and B, checked by 4 validators, committed): ${Date.now() - publishStarted} ms`,
    );
    const peaks = networkPids(dir).map((p) => ({ what: p.what, bytes: peakRss(p.pid) }));
    peaks.push({ what: 'publish', bytes: publishPeak.peak() });
    console.log(
      `peak RSS: ${peaks.map((p) => `${p.what} ${(p.bytes / 2 ** 20).toFixed(0)} MiB`).join(', ')}`,
    );
    assert.equal(peaks.length, 7, 'both config servers, four validators and publish were measured');
    // A process of this CLI starts at about 135 MiB (node + tsx); one that held the 191 MiB
    // artifact whole would pass 320 MiB. Streams keep each well under the bound.
    for (const p of peaks) assert.ok(p.bytes < RSS_BOUND, `${p.what} peaked at ${p.bytes} bytes`);

    const enrolled = await cli([
      'devices',
      'enroll',
      '--dir',
      dir,
      '--id',
      DEVICE,
      '--target',
      TARGET,
      '--json',
    ]).done;
    assert.equal(enrolled.code, 0, enrolled.stderr + enrolled.stdout);
    // The device downloads through the counting proxy instead of straight from A.
    const deviceFile = paths.deviceFile(dir, DEVICE);
    const config = JSON.parse(readFileSync(deviceFile, 'utf8')) as Record<string, unknown>;
    writeFileSync(deviceFile, `${JSON.stringify({ ...config, configServer: proxy.url }, null, 2)}\n`);
    // Every validator holds the release and the enrollment before the device asks any of them.
    const height = Math.max(
      ...(await Promise.all([0, 1, 2, 3].map(async (v) => (await net.status(v)).height))),
    );
    await net.waitHeight([0, 1, 2, 3], height);

    const part = join(dir, 'devices', DEVICE, 'download', `${sha256}.part`);
    proxy.stallAt = HALF;
    const first = cli(['device', '--dir', dir, '--id', DEVICE, '--once', '--json']);
    for (let i = 0; ; i++) {
      if (existsSync(part) && statSync(part).size >= HALF) break;
      const exited = first.child.exitCode !== null;
      assert.ok(
        !exited && i < 1200,
        `the partial file never reached half (${existsSync(part) ? statSync(part).size : 'none'})`,
      );
      await sleep(50);
    }
    first.child.kill('SIGKILL');
    const killed = await first.done;
    assert.equal(killed.code, null, 'the first run was killed, not finished');
    assert.equal(statSync(part).size, HALF, 'the partial file holds the first half');
    assert.equal(existsSync(join(dir, 'devices', DEVICE, 'applied', encodeURIComponent(TARGET))), false);

    proxy.stallAt = null;
    proxy.bytes = 0;
    proxy.ranges = [];
    const resumeStarted = Date.now();
    const resuming = cli(['device', '--dir', dir, '--id', DEVICE, '--once', '--json']);
    const devicePeak = watchPeak(resuming.child);
    const second = await resuming.done;
    console.log(`peak RSS: device ${(devicePeak.peak() / 2 ** 20).toFixed(0)} MiB`);
    assert.ok(devicePeak.peak() < RSS_BOUND, `the device peaked at ${devicePeak.peak()} bytes`);
    assert.equal(second.code, 0, second.stderr);
    const result = JSON.parse(second.stdout.trim().split('\n').at(-1) ?? '') as {
      kind: string;
      sha256: string;
      report: { status: string };
    };
    assert.equal(result.kind, 'applied', second.stderr);
    console.log(`resumed device round (second half, hash, apply, report): ${Date.now() - resumeStarted} ms`);
    // Not a terminal: plain progress lines, one per tenth at most, from the resume point to 100%.
    const progress = second.stderr.split('\n').filter((l) => /device cam-1: download: \d+% \(/.test(l));
    assert.ok(progress.length >= 2 && progress.length <= 11, progress.join('\n'));
    assert.match(progress[0] ?? '', / download: 50% \(100000000 of 200000000 bytes\)$/);
    assert.match(progress.at(-1) ?? '', / download: 100% \(200000000 of 200000000 bytes\)$/);
    assert.equal(result.sha256, sha256);
    // It resumed: the log says from where, the first Range asks from there, A served only the rest.
    assert.match(second.stderr, new RegExp(`resuming at ${HALF} bytes of ${SIZE}`));
    assert.match(proxy.ranges[0] ?? '', new RegExp(`^bytes=${HALF}-`));
    assert.equal(proxy.bytes, SIZE - HALF, `the second run fetched ${proxy.bytes} bytes`);

    const applied = join(dir, 'devices', DEVICE, 'applied', encodeURIComponent(TARGET));
    assert.equal(statSync(applied).size, SIZE);
    assert.equal(await sha256OfFile(applied), sha256);
    assert.deepEqual(
      readdirSync(join(dir, 'devices', DEVICE, 'download')).filter((f) => f.endsWith('.part')),
      [],
    );

    // The report is on the ledger: validator 2 holds the device's applied report of this release.
    assert.ok(result.report.status === 'committed' || result.report.status === 'pending');
    for (let i = 0; ; i++) {
      const res = await fetch(`${net.apiUrl(2)}/v1/devices/${DEVICE}`, {
        signal: AbortSignal.timeout(10_000),
      });
      const entry = (await res.json()) as {
        lastReport: { status: string; sha256: string; version: number } | null;
      };
      if (entry.lastReport !== null) {
        assert.equal(entry.lastReport.status, 'applied');
        assert.equal(entry.lastReport.sha256, sha256);
        assert.equal(entry.lastReport.version, release.version);
        break;
      }
      assert.ok(i < 100, 'the report reaches validator 2');
      await sleep(100);
    }
  });
});
