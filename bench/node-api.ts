/**
 * `npm run bench -- node-api [seconds]`: what the device-facing routes cost a validator, on one core.
 *
 * The real fastify server (routing, schema serialization, device authentication) runs over the
 * in-memory facade on the real ledger, with 2,000 targets in the state, and is driven with
 * app.inject(): no sockets, so the figures are the server's own CPU per request, without the
 * kernel and the client. Cases: a target proof without a signature (a demo network), the same
 * proof signed by an enrolled device (one Ed25519 verification more), a signed POST /validateHash
 * of the current hash (the article's hot path plus the body hash and the verification), and a
 * transaction inclusion proof.
 */
import type { FastifyInstance, InjectOptions } from 'fastify';
import { deviceSigner } from '../src/api/device-signer.ts';
import { MemoryFacade, memoryNetwork } from '../src/api/memory-facade.ts';
import { buildApiServer } from '../src/api/server.ts';
import { generateKeyPair } from '../src/crypto/ed25519.ts';
import { sha256Hex } from '../src/crypto/hash.ts';
import type { DeviceId, Hash32Hex, PublicKeyHex, TargetName } from '../src/encoding/brand.ts';
import { signAsAdmin } from '../src/ledger/index.ts';

const TARGETS = 2000;

export async function run(args: string[]): Promise<void> {
  const seconds = Number(args[0] ?? 2);
  const net = memoryNetwork(5000, Date.now(), true);
  const facade = new MemoryFacade(net, 0);
  for (let t = 0; t < TARGETS; t++) {
    const target = t === 0 ? 'default' : `t${t}`;
    const sha = sha256Hex(`${target} v1`) as Hash32Hex;
    facade.offer(target, 1, sha, 8);
    await facade.validateHash(target as TargetName, sha, {});
  }
  const device = generateKeyPair();
  const admin = net.adminKeys[0];
  if (admin === undefined) throw new Error('the network has an admin');
  const enrolled = await facade.submitTx(
    signAsAdmin(
      {
        type: 'device-enroll',
        chainId: net.genesis.chainId,
        deviceId: 'cam-1' as DeviceId,
        publicKey: device.publicKeyHex as PublicKeyHex,
        group: 'cameras',
        target: 'default' as TargetName,
      },
      admin.id,
      admin.key.privateKey,
    ),
    { waitMs: 0 },
  );
  if (enrolled.status !== 'committed') throw new Error(`enrollment failed: ${JSON.stringify(enrolled)}`);
  const app = await buildApiServer(facade);
  const signer = deviceSigner({ chainId: net.genesis.chainId, deviceId: 'cam-1', key: device.privateKey });
  const proofUrl = '/v1/targets/default/proof';
  const body = JSON.stringify({ hash: sha256Hex('default v1') });
  const txId = facade.currentTarget('default' as TargetName)?.txId;
  // One signed header per case, reused: within its 5 minutes the server does the same work for it.
  const cases: { name: string; request: InjectOptions; status: number }[] = [
    { name: 'target proof, unsigned', request: { method: 'GET', url: proofUrl }, status: 200 },
    {
      name: 'target proof, device-signed',
      request: {
        method: 'GET',
        url: proofUrl,
        headers: { authorization: await signer.authorize('GET', proofUrl, new Uint8Array(0)) },
      },
      status: 200,
    },
    {
      name: 'validateHash (current), unsigned',
      request: {
        method: 'POST',
        url: '/validateHash',
        payload: body,
        headers: { 'content-type': 'application/json' },
      },
      status: 200,
    },
    {
      name: 'validateHash (current), device-signed',
      request: {
        method: 'POST',
        url: '/validateHash',
        payload: body,
        headers: {
          'content-type': 'application/json',
          authorization: await signer.authorize('POST', '/validateHash', Buffer.from(body)),
        },
      },
      status: 200,
    },
    { name: 'tx inclusion proof', request: { method: 'GET', url: `/v1/tx/${txId}/proof` }, status: 200 },
  ];
  console.log(`node API: one core, in-process (app.inject), ${TARGETS} targets, ${seconds} s per case`);
  for (const c of cases) await measure(app, c.name, c.request, c.status, seconds);
  await app.close();
}

async function measure(
  app: FastifyInstance,
  name: string,
  request: InjectOptions,
  status: number,
  seconds: number,
): Promise<void> {
  for (let i = 0; i < 200; i++) await expect(app, request, status);
  let count = 0;
  const cpuStart = process.cpuUsage();
  const start = process.hrtime.bigint();
  const deadline = start + BigInt(Math.round(seconds * 1e9));
  while (process.hrtime.bigint() < deadline) {
    for (let i = 0; i < 50; i++) await expect(app, request, status);
    count += 50;
  }
  const elapsed = Number(process.hrtime.bigint() - start) / 1e9;
  const cpu = process.cpuUsage(cpuStart);
  const cpuMicros = ((cpu.user + cpu.system) / count).toFixed(1);
  console.log(
    `  ${name.padEnd(40)} ${Math.round(count / elapsed)
      .toString()
      .padStart(7)} req/s   ${((elapsed * 1e6) / count).toFixed(1)} µs wall, ${cpuMicros} µs CPU per request`,
  );
}

async function expect(app: FastifyInstance, request: InjectOptions, status: number): Promise<void> {
  const res = await app.inject(request);
  if (res.statusCode !== status) throw new Error(`${request.url} answered ${res.statusCode}: ${res.body}`);
}
