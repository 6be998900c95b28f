/**
 * What the attack tests do to a real network besides attacking it: upload artifacts to the config
 * servers, sign and submit releases, enroll and revoke devices, and read every validator's chain.
 * Everything goes through the real HTTP APIs with real keys from the network directory.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import type { KeyObject } from 'node:crypto';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { connect } from 'node:tls';
import { ConfigServerClient } from '../../src/configserver/client.ts';
import { generateKeyPair } from '../../src/crypto/ed25519.ts';
import { sha256Hex } from '../../src/crypto/hash.ts';
import { loadPrivateKey, savePrivateKey } from '../../src/crypto/keyfile.ts';
import { deviceAuthorization } from '../../src/device/contract.ts';
import type { DeviceId, PublicKeyHex, TargetName } from '../../src/encoding/brand.ts';
import { type AdminKey, signAsAdmin, signRelease } from '../../src/ledger/index.ts';
import type { DeviceEnrollBody, DeviceRevokeBody, ReleaseBody, Transaction } from '../../src/ledger/types.ts';
import { encodeFrame } from '../../src/net/frames.ts';
import { paths } from '../../src/node/layout.ts';
import { repoRoot, type TestNetwork } from '../system/harness.ts';

export interface SubmitAnswer {
  readonly httpStatus: number;
  readonly status: 'committed' | 'pending' | 'rejected';
  readonly txId: string;
  readonly height?: number;
  readonly code?: string;
  readonly reason?: string;
}

/** POST /v1/tx on one validator, waiting up to waitMs for the commit. */
export async function submitTx(
  net: TestNetwork,
  validator: number,
  tx: Transaction,
  waitMs = 10_000,
  headers: Record<string, string> = {},
): Promise<SubmitAnswer> {
  const response = await fetch(`${net.apiUrl(validator)}/v1/tx`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...headers },
    body: JSON.stringify({ tx, waitMs }),
    signal: AbortSignal.timeout(waitMs + 10_000),
  });
  const body = (await response.json()) as Omit<SubmitAnswer, 'httpStatus'>;
  return { httpStatus: response.status, ...body };
}

/** The genesis admins' keys, from the network directory. */
export function adminKeys(net: TestNetwork): AdminKey[] {
  return net.init.genesis.admins.map((a) => ({
    id: a.id,
    privateKey: loadPrivateKey(paths.adminKey(net.dir, a.id)).privateKey,
  }));
}

/** Uploads one version to the listed config servers, signed by the first admin. */
export async function upload(
  net: TestNetwork,
  target: string,
  version: number,
  content: Buffer,
  servers: readonly ('A' | 'B')[] = ['A', 'B'],
): Promise<void> {
  const admin = adminKeys(net)[0];
  assert.ok(admin !== undefined);
  for (const id of servers) {
    await new ConfigServerClient(net.configServerUrl(id)).upload({
      target,
      version,
      content,
      mediaType: 'text/plain',
      adminId: admin.id,
      adminKey: admin.privateKey,
    });
  }
}

export function releaseBody(net: TestNetwork, target: string, version: number, content: Buffer): ReleaseBody {
  return {
    type: 'release',
    chainId: net.init.genesis.chainId,
    target: target as TargetName,
    version,
    sha256: sha256Hex(content),
    size: content.byteLength,
    mediaType: 'text/plain',
  };
}

/**
 * Uploads a version to A and B and commits its release, signed by as many admins as genesis
 * asks; waits until the validators of `waitFor` (default all) hold the block, and resolves its
 * height.
 */
export async function publish(
  net: TestNetwork,
  target: string,
  version: number,
  content: Buffer,
  via = 0,
  waitFor: readonly number[] = allValidators(net),
): Promise<number> {
  await upload(net, target, version, content);
  const keys = adminKeys(net).slice(0, net.init.genesis.releaseThreshold);
  const answer = await submitTx(net, via, signRelease(releaseBody(net, target, version, content), keys));
  assert.equal(answer.status, 'committed', `release ${target} v${version}: ${JSON.stringify(answer)}`);
  assert.ok(answer.height !== undefined);
  await net.waitHeight(waitFor, answer.height);
  return answer.height;
}

export interface TestDevice {
  readonly id: DeviceId;
  readonly key: KeyObject;
  readonly publicKey: PublicKeyHex;
}

export function newDevice(id: string): TestDevice {
  const pair = generateKeyPair();
  return { id: id as DeviceId, key: pair.privateKey, publicKey: pair.publicKeyHex };
}

/** Commits a device enroll transaction signed by the first admin. */
export async function enroll(
  net: TestNetwork,
  device: Pick<TestDevice, 'id' | 'publicKey'>,
  target: string,
  via = 0,
  group = 'attacks',
): Promise<void> {
  const body: DeviceEnrollBody = {
    type: 'device-enroll',
    chainId: net.init.genesis.chainId,
    deviceId: device.id,
    publicKey: device.publicKey,
    group,
    target: target as TargetName,
  };
  // Every validator must know the device before it asks them, or a lagging one answers 403.
  await commitAsFirstAdmin(net, via, body, `enroll ${device.id}`);
}

/** Signs a body as the first admin, commits it through `via` and waits until every validator holds it. */
async function commitAsFirstAdmin(
  net: TestNetwork,
  via: number,
  body: DeviceEnrollBody | DeviceRevokeBody,
  what: string,
): Promise<void> {
  const admin = adminKeys(net)[0];
  assert.ok(admin !== undefined);
  const answer = await submitTx(net, via, signAsAdmin(body, admin.id, admin.privateKey));
  assert.equal(answer.status, 'committed', `${what}: ${JSON.stringify(answer)}`);
  await net.waitHeight(allValidators(net), answer.height ?? 0);
}

function allValidators(net: TestNetwork): number[] {
  return Array.from({ length: net.n }, (_, v) => v);
}

export async function revoke(net: TestNetwork, device: TestDevice, via = 0): Promise<void> {
  const body: DeviceRevokeBody = {
    type: 'device-revoke',
    chainId: net.init.genesis.chainId,
    deviceId: device.id,
    reason: 'attack suite: a stolen device',
  };
  await commitAsFirstAdmin(net, via, body, `revoke ${device.id}`);
}

/** Every transaction of a validator's whole chain (through /v1/blocks, page by page). */
export async function allTransactions(net: TestNetwork, validator: number): Promise<Transaction[]> {
  const txs: Transaction[] = [];
  let from = 0;
  for (;;) {
    const response = await fetch(`${net.apiUrl(validator)}/v1/blocks?from=${from}&limit=100`, {
      signal: AbortSignal.timeout(10_000),
    });
    assert.equal(response.status, 200, `GET /v1/blocks on ${validator}`);
    const page = (await response.json()) as {
      tipHeight: number;
      blocks: { block: { header: { height: number }; txs: Transaction[] } }[];
    };
    for (const record of page.blocks) txs.push(...record.block.txs);
    const last = page.blocks.at(-1)?.block.header.height;
    if (last === undefined || last >= page.tipHeight) return txs;
    from = last + 1;
  }
}

/** Where a device agent goes: its config server (A) and its validators, in the order it tries them. */
export interface DeviceRoute {
  readonly configServer: string;
  readonly validators: readonly string[];
}

/**
 * Writes (or rewrites) the files `configchain device --dir DIR --id ID` reads: the device key (once)
 * and device.json with this route. The agent re-reads device.json every round.
 */
export function placeDevice(net: TestNetwork, device: TestDevice, target: string, route: DeviceRoute): void {
  const keyFile = paths.deviceKey(net.dir, device.id);
  if (!existsSync(keyFile)) savePrivateKey(keyFile, device.key);
  const config = {
    deviceId: device.id,
    publicKey: device.publicKey,
    target,
    configServer: route.configServer,
    validators: route.validators,
  };
  writeFileSync(paths.deviceFile(net.dir, device.id), `${JSON.stringify(config, null, 2)}\n`);
}

export function honestValidators(net: TestNetwork, except: readonly number[] = []): string[] {
  const urls: string[] = [];
  for (let v = 0; v < net.n; v++) if (!except.includes(v)) urls.push(net.apiUrl(v));
  return urls;
}

/** A request to a validator signed as the device (the header of src/device/contract.ts). */
export async function signedRequest(
  net: TestNetwork,
  validator: number,
  device: TestDevice,
  method: 'GET' | 'POST',
  path: string,
  body?: unknown,
): Promise<{ status: number; text: string }> {
  const bytes = body === undefined ? Buffer.alloc(0) : Buffer.from(JSON.stringify(body), 'utf8');
  const authorization = deviceAuthorization(
    {
      chainId: net.init.genesis.chainId,
      deviceId: device.id,
      method,
      path,
      sha256: sha256Hex(bytes),
      timestampMs: Date.now(),
    },
    device.key,
  );
  const response = await fetch(`${net.apiUrl(validator)}${path}`, {
    method,
    headers: {
      authorization,
      ...(body === undefined ? {} : { 'content-type': 'application/json' }),
    },
    ...(body === undefined ? {} : { body: bytes }),
    signal: AbortSignal.timeout(15_000),
  });
  return { status: response.status, text: await response.text() };
}

/**
 * Runs `configchain device --dir DIR --id ID --once --json` as its own OS process (as a device
 * would run it) and resolves its exit code, its round result and its log.
 */
export function deviceProcessOnce(
  net: TestNetwork,
  device: TestDevice,
  timeoutMs = 60_000,
): Promise<{ code: number | null; result: { kind: string; code?: string }; log: string }> {
  const main = join(repoRoot, 'src', 'cli', 'main.ts');
  const args = ['--import', 'tsx', main, 'device', '--dir', net.dir, '--id', device.id, '--once', '--json'];
  return new Promise((done, fail) => {
    const child = spawn(process.execPath, args, { cwd: repoRoot, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => {
      stdout += chunk.toString('utf8');
    });
    child.stderr.on('data', (chunk: Buffer) => {
      stderr = (stderr + chunk.toString('utf8')).slice(-16 * 1024);
    });
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      fail(new Error(`configchain device --once still running after ${timeoutMs} ms:\n${stderr}`));
    }, timeoutMs);
    child.once('exit', (code) => {
      clearTimeout(timer);
      try {
        done({ code, result: JSON.parse(stdout.trim()) as { kind: string; code?: string }, log: stderr });
      } catch {
        fail(
          new Error(`configchain device --once printed no JSON result (exit ${code}):\n${stdout}\n${stderr}`),
        );
      }
    });
  });
}

/**
 * Sends messages over a validator's peer port as validator `as` would: a mutual-TLS connection
 * with that validator's own certificate (what an attacker who took over its host holds), one
 * frame per message, to each listed validator. Resolves once every frame was written.
 */
export async function sendAsPeer(
  net: TestNetwork,
  as: number,
  to: readonly number[],
  messages: readonly object[],
): Promise<void> {
  const ca = readFileSync(paths.caCert(net.dir), 'utf8');
  const cert = readFileSync(paths.tlsCert(net.dir, as), 'utf8');
  const key = readFileSync(paths.tlsKey(net.dir, as), 'utf8');
  for (const v of to) {
    const peer = net.init.network.validators[v];
    assert.ok(peer !== undefined);
    const socket = connect({
      host: peer.host,
      port: peer.peerPort,
      ca,
      cert,
      key,
      minVersion: 'TLSv1.3',
      servername: 'localhost',
      rejectUnauthorized: false,
    });
    await new Promise<void>((done, fail) => {
      socket.once('secureConnect', () => done());
      socket.once('error', fail);
    });
    for (const message of messages) {
      socket.write(encodeFrame(Buffer.from(JSON.stringify(message), 'utf8')));
    }
    await new Promise<void>((done) => socket.end(() => done()));
  }
}
