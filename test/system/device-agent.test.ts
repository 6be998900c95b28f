/**
 * The device agent as a real process (`configchain device --once`) against a real 4-validator
 * network with both config servers: an enrolled device with nothing released has nothing to do;
 * after a release it verifies the proof (failing over past a dead validator), downloads from A,
 * applies atomically, runs its hook, persists state.json and reports on the ledger; a second round
 * has nothing new; a config server that serves other bytes gets a `mismatch`, reported with the
 * next sequence number; and the article's simple mode applies through POST /validateHash.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { generateKeyPair } from '../../src/crypto/ed25519.ts';
import { sha256Hex } from '../../src/crypto/hash.ts';
import { savePrivateKey } from '../../src/crypto/keyfile.ts';
import type { DeviceId, PublicKeyHex } from '../../src/encoding/brand.ts';
import { paths } from '../../src/node/layout.ts';
import { enroll as enrollDevice, publish } from '../attacks/system.ts';
import { type CliRun, repoRoot, runCli, sleep, startNetwork, type TestNetwork } from './harness.ts';

function device(args: readonly string[], timeoutMs = 60_000): Promise<CliRun> {
  return runCli(['device', ...args], timeoutMs);
}

function resultOf(run: CliRun): Record<string, unknown> & { kind: string } {
  try {
    return JSON.parse(run.stdout.trim().split('\n').at(-1) ?? '') as Record<string, unknown> & {
      kind: string;
    };
  } catch {
    throw new Error(`the agent printed no result (exit ${run.code}):\n${run.stdout}\n${run.stderr}`);
  }
}

describe('configchain device on a real network', () => {
  let net: TestNetwork;
  let dir: string;
  let liar: Server;
  let liarUrl: string;
  /** The target init gave device-1 (device.json); every device here follows it. */
  let target: string;

  /** Enrolls a device for the target, signed by the first admin, once every validator holds it. */
  async function enroll(deviceId: string, publicKey: string): Promise<void> {
    await enrollDevice(
      net,
      { id: deviceId as DeviceId, publicKey: publicKey as PublicKeyHex },
      target,
      0,
      '',
    );
  }

  /** Uploads a version to A and B and commits its release (via validator 1) on every validator. */
  async function release(version: number, content: Buffer): Promise<void> {
    await publish(net, target, version, content, 1);
  }

  function deviceJson(id: string): Record<string, unknown> {
    return JSON.parse(readFileSync(paths.deviceFile(dir, id), 'utf8')) as Record<string, unknown>;
  }

  function writeDeviceJson(id: string, value: Record<string, unknown>): void {
    writeFileSync(paths.deviceFile(dir, id), `${JSON.stringify(value, null, 2)}\n`);
  }

  function state(id: string): Record<string, unknown> {
    return JSON.parse(readFileSync(join(dir, 'devices', id, 'state.json'), 'utf8')) as Record<
      string,
      unknown
    >;
  }

  /** The device's entry on validator 2 once it holds report `seq` (the report went to another). */
  async function deviceEntry(
    id: string,
    seq: number,
  ): Promise<{ lastSeq: number; lastReport: Record<string, unknown> | null }> {
    for (let i = 0; ; i++) {
      const res = await fetch(`${net.apiUrl(2)}/v1/devices/${id}`, { signal: AbortSignal.timeout(10_000) });
      assert.equal(res.status, 200);
      const entry = (await res.json()) as { lastSeq: number; lastReport: Record<string, unknown> | null };
      if (entry.lastSeq >= seq || i >= 100) return entry;
      await sleep(100);
    }
  }

  before(async () => {
    net = await startNetwork({ validators: 4 });
    dir = net.dir;
    target = deviceJson('device-1').target as string;
    // A compromised device-facing config server: whatever is asked, it sends other bytes.
    liar = createServer((_req, res) => {
      res.writeHead(200, { 'content-type': 'text/plain' });
      res.end('evil configuration');
    });
    await new Promise<void>((done) => liar.listen(0, '127.0.0.1', done));
    liarUrl = `http://127.0.0.1:${(liar.address() as AddressInfo).port}`;
  });

  after(async () => {
    liar?.close();
    await net?.stop();
  });

  it('applies a certified release, runs the hook, persists its state and reports on the ledger', async () => {
    const id = 'device-1';
    await enroll(id, deviceJson(id).publicKey as string);

    const idle = await device(['--dir', dir, '--id', id, '--once', '--json']);
    assert.equal(idle.code, 0, idle.stderr);
    assert.equal(resultOf(idle).kind, 'nothing-new');

    const content = Buffer.from('mode = "secure"\nversion = 7\n');
    await release(7, content);
    // The first validator in the list is down: the agent fails over and says so.
    const config = deviceJson(id);
    writeDeviceJson(id, {
      ...config,
      validators: ['http://127.0.0.1:9', ...(config.validators as string[])],
    });
    const hookScript = join(dir, 'hook.sh');
    writeFileSync(hookScript, `cp "$1" "${join(dir, 'hooked')}"\n`);

    const run = await device(['--dir', dir, '--id', id, '--once', '--json', '--hook', `sh ${hookScript}`]);
    assert.equal(run.code, 0, run.stderr);
    const result = resultOf(run);
    assert.equal(result.kind, 'applied', run.stderr);
    assert.equal(result.version, 7);
    assert.match(run.stderr, /127\.0\.0\.1:9 failed/);
    assert.deepEqual(readFileSync(join(dir, 'devices', id, 'applied', encodeURIComponent(target))), content);
    assert.deepEqual(readFileSync(join(dir, 'hooked')), content);
    assert.deepEqual(state(id), {
      lastAppliedVersion: 7,
      sha256: sha256Hex(content),
      nextSeq: 2,
      pendingReport: null,
    });
    const entry = await deviceEntry(id, 1);
    assert.equal(entry.lastSeq, 1);
    assert.deepEqual(
      {
        version: entry.lastReport?.version,
        sha256: entry.lastReport?.sha256,
        status: entry.lastReport?.status,
      },
      { version: 7, sha256: sha256Hex(content), status: 'applied' },
    );

    const again = await device(['--dir', dir, '--id', id, '--once', '--json']);
    assert.equal(again.code, 0, again.stderr);
    const quiet = resultOf(again);
    assert.deepEqual(
      [quiet.kind, quiet.target, quiet.version, quiet.why],
      ['nothing-new', target, 7, 'current'],
    );
    assert.deepEqual(
      (quiet.attempts as { validator: string; code: string }[]).map((x) => x.validator),
      ['http://127.0.0.1:9'],
      'the dead validator is listed as a failed attempt',
    );
  });

  it('refuses bytes that do not match the release, reports the mismatch and keeps the applied version', async () => {
    const id = 'device-1';
    const content = Buffer.from('mode = "secure"\nversion = 8\n');
    await release(8, content);
    const config = deviceJson(id);
    writeDeviceJson(id, { ...config, configServer: liarUrl });
    const run = await device(['--dir', dir, '--id', id, '--once', '--json']);
    writeDeviceJson(id, config);
    assert.equal(run.code, 1);
    const result = resultOf(run);
    assert.equal(result.kind, 'mismatch', run.stderr);
    assert.equal(result.code, 'ARTIFACT_SIZE');
    assert.equal(state(id).lastAppliedVersion, 7);
    assert.equal(state(id).nextSeq, 3);
    assert.equal(
      readFileSync(join(dir, 'devices', id, 'applied', encodeURIComponent(target)), 'utf8'),
      'mode = "secure"\nversion = 7\n',
    );
    const entry = await deviceEntry(id, 2);
    assert.equal(entry.lastSeq, 2);
    assert.equal(entry.lastReport?.status, 'mismatch');

    // Back on the honest server, the next round downloads again and applies version 8.
    const retry = await device(['--dir', dir, '--id', id, '--once', '--json']);
    assert.equal(retry.code, 0, retry.stderr);
    assert.equal(resultOf(retry).kind, 'applied');
    assert.deepEqual(readFileSync(join(dir, 'devices', id, 'applied', encodeURIComponent(target))), content);
    assert.equal((await deviceEntry(id, 3)).lastSeq, 3);
  });

  it('keeps running: applies a release published while it waits, and stops on SIGTERM', async () => {
    const id = 'device-1';
    const child = spawn(
      process.execPath,
      [
        '--import',
        'tsx',
        join(repoRoot, 'src/cli/main.ts'),
        'device',
        '--dir',
        dir,
        '--id',
        id,
        '--interval-ms',
        '200',
      ],
      { cwd: repoRoot, stdio: ['ignore', 'ignore', 'pipe'] },
    );
    let stderr = '';
    child.stderr?.on('data', (c: Buffer) => {
      stderr += c.toString();
    });
    const exited = new Promise<number | null>((done) => child.once('exit', (code) => done(code)));
    try {
      const content = Buffer.from('mode = "secure"\nversion = 9\n');
      await release(9, content);
      const applied = join(dir, 'devices', id, 'applied', encodeURIComponent(target));
      // The round ends with one line: the result and the pause before the next round.
      const done = new RegExp(
        `round: applied ${target} version 9, report seq \\d+ (committed|pending); next round in 200 ms`,
      );
      for (let i = 0; i < 150 && !done.test(stderr); i++) await sleep(100);
      assert.match(stderr, done);
      assert.equal(state(id).lastAppliedVersion, 9);
      assert.deepEqual(readFileSync(applied), content);
    } finally {
      child.kill('SIGTERM');
    }
    const code = await Promise.race([exited, sleep(15_000).then(() => 'still running')]);
    assert.equal(code, 0, `the agent did not stop cleanly on SIGTERM:\n${stderr}`);
    assert.equal((await deviceEntry(id, 4)).lastReport?.version, 9);
  });

  it("applies through the article's simple flow (POST /validateHash) for devices that cannot verify proofs", async () => {
    const id = 'simple-1';
    const pair = generateKeyPair();
    savePrivateKey(paths.deviceKey(dir, id), pair.privateKey);
    const base = deviceJson('device-1');
    writeDeviceJson(id, { ...base, deviceId: id, publicKey: pair.publicKeyHex });
    await enroll(id, pair.publicKeyHex);
    const run = await device(['--dir', dir, '--id', id, '--once', '--json', '--mode', 'simple']);
    assert.equal(run.code, 0, run.stderr);
    const result = resultOf(run);
    assert.equal(result.kind, 'applied', run.stderr);
    assert.equal(result.version, 9);
    assert.match(run.stderr, /validateHash: .* answered "Success/);
    assert.equal((await deviceEntry(id, 1)).lastReport?.status, 'applied');
  });
});
