/**
 * The device-trust routes against the in-memory facade over the real ledger: proofs that verify,
 * device request authentication (real Ed25519 signatures), the fleet reads, content copies and the
 * live event stream (over a real HTTP connection).
 */
import assert from 'node:assert/strict';
import { EventEmitter } from 'node:events';
import { after, before, describe, it } from 'node:test';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { deviceRequestSkewMsMax } from '../constants.ts';
import { generateKeyPair, type KeyPair } from '../crypto/ed25519.ts';
import { sha256Hex } from '../crypto/hash.ts';
import { deviceAuthorization, type TargetProof, type TxProof } from '../device/contract.ts';
import type { DeviceId, Hash32Hex, PublicKeyHex, TargetName } from '../encoding/brand.ts';
import {
  blockHash,
  signAsAdmin,
  signAsDevice,
  signRelease,
  targetKey,
  verifyStateProof,
  verifyTxProofAgainstHeader,
} from '../ledger/index.ts';
import { ApiClient } from './client.ts';
import { deviceSigner } from './device-signer.ts';
import { EventHub } from './events.ts';
import { MemoryFacade, type MemoryNetwork, memoryNetwork } from './memory-facade.ts';
import { buildApiServer, CompatText } from './server.ts';

const v = (n: number) => sha256Hex(String(n)) as Hash32Hex;

function enroll(
  facade: MemoryFacade,
  net: MemoryNetwork,
  deviceId: string,
  key: KeyPair,
  target = 'default',
) {
  const admin = net.adminKeys[0];
  assert.ok(admin !== undefined);
  const tx = signAsAdmin(
    {
      type: 'device-enroll',
      chainId: net.genesis.chainId,
      deviceId: deviceId as DeviceId,
      publicKey: key.publicKeyHex as PublicKeyHex,
      group: 'cameras',
      target: target as TargetName,
    },
    admin.id,
    admin.key.privateKey,
  );
  return facade.submitTx(tx, { waitMs: 0 });
}

function revoke(facade: MemoryFacade, net: MemoryNetwork, deviceId: string) {
  const admin = net.adminKeys[0];
  assert.ok(admin !== undefined);
  const tx = signAsAdmin(
    { type: 'device-revoke', chainId: net.genesis.chainId, deviceId: deviceId as DeviceId, reason: 'stolen' },
    admin.id,
    admin.key.privateKey,
  );
  return facade.submitTx(tx, { waitMs: 0 });
}

/** A signed request as a device makes it: the header over method, path, body hash and time. */
function signed(
  net: MemoryNetwork,
  deviceId: string,
  key: KeyPair,
  method: string,
  path: string,
  body = '',
  timestampMs = Date.now(),
): Record<string, string> {
  return {
    authorization: deviceAuthorization(
      {
        chainId: net.genesis.chainId,
        deviceId,
        method,
        path,
        sha256: sha256Hex(Buffer.from(body, 'utf8')),
        timestampMs,
      },
      key.privateKey,
    ),
  };
}

describe('proof routes', () => {
  const net = memoryNetwork();
  let facade: MemoryFacade;
  let app: FastifyInstance;
  before(async () => {
    facade = new MemoryFacade(net, 0);
    for (let n = 1; n <= 3; n++) facade.offer('default', n, v(n), 1);
    app = await buildApiServer(facade);
  });
  after(async () => app.close());

  it('answers 503 while only genesis exists (no certified header yet)', async () => {
    const res = await app.inject({ method: 'GET', url: '/v1/targets/default/proof' });
    assert.equal(res.statusCode, 503);
    assert.equal(res.json().code, 'NOT_READY');
  });

  it('proves the current entry against the header of the latest block, and absence for unknown targets', async () => {
    await facade.validateHash('default' as TargetName, v(1), {});
    await facade.validateHash('default' as TargetName, v(2), {});
    const res = await app.inject({ method: 'GET', url: '/v1/targets/default/proof' });
    assert.equal(res.statusCode, 200);
    const proof = res.json() as TargetProof;
    assert.equal(proof.header.height, 2);
    assert.equal(proof.header.txCount, 1);
    assert.equal(blockHash(proof.header), proof.certificate.blockHash, 'header and certificate agree');
    assert.equal(proof.entry?.sha256, v(2));
    assert.equal(
      verifyStateProof(proof.header.stateRoot, targetKey('default'), proof.entry, proof.stateProof),
      true,
    );
    // A changed entry does not verify against the same proof: the proof binds the value.
    const forged = { ...proof.entry, version: 9 };
    assert.equal(
      verifyStateProof(proof.header.stateRoot, targetKey('default'), forged, proof.stateProof),
      false,
    );

    const none = (
      await app.inject({ method: 'GET', url: '/v1/targets/nothing/proof' })
    ).json() as TargetProof;
    assert.equal(none.entry, null);
    assert.equal(verifyStateProof(none.header.stateRoot, targetKey('nothing'), null, none.stateProof), true);
  });

  it('serves a transaction inclusion proof that checks against its header', async () => {
    const history = facade.targetHistory('default' as TargetName, 10);
    const txId = history[0]?.txId;
    assert.ok(txId !== undefined);
    const res = await app.inject({ method: 'GET', url: `/v1/tx/${txId}/proof` });
    assert.equal(res.statusCode, 200);
    const proof = res.json() as TxProof;
    assert.equal(proof.txCount, proof.header.txCount);
    assert.equal(verifyTxProofAgainstHeader(proof.header, proof.tx, proof.index, proof.inclusion), true);
    assert.equal(blockHash(proof.header), proof.certificate.blockHash);
    const missing = await app.inject({ method: 'GET', url: `/v1/tx/${'0'.repeat(64)}/proof` });
    assert.equal(missing.statusCode, 404);
    assert.equal(missing.json().code, 'TX_NOT_FOUND');
  });
});

describe('device authentication on a network without unauthenticated calls', () => {
  const net = memoryNetwork(5000, Date.now(), false);
  const cam = generateKeyPair();
  const other = generateKeyPair();
  let facade: MemoryFacade;
  let app: FastifyInstance;
  before(async () => {
    facade = new MemoryFacade(net, 0);
    for (let n = 1; n <= 3; n++) facade.offer('default', n, v(n), 1);
    app = await buildApiServer(facade);
    assert.equal((await enroll(facade, net, 'cam-1', cam)).status, 'committed');
    assert.equal((await enroll(facade, net, 'cam-2', other, 'lobby')).status, 'committed');
  });
  after(async () => app.close());

  const post = (body: string, headers: Record<string, string>) =>
    app.inject({
      method: 'POST',
      url: '/validateHash',
      payload: body,
      headers: { 'content-type': 'application/json', ...headers },
    });

  it('answers an unsigned /validateHash with 401 saying a device signature is needed', async () => {
    const res = await post(JSON.stringify({ hash: v(1) }), {});
    assert.equal(res.statusCode, 401);
    assert.match(res.body, /^Error: .*allowUnauthenticatedCompat is false.*--demo.*ConfigChain-Device/);
  });

  it("accepts an enrolled device's signed /validateHash, keeping the article's answers", async () => {
    const body = JSON.stringify({ hash: v(1) });
    const res = await post(body, signed(net, 'cam-1', cam, 'POST', '/validateHash', body));
    assert.equal(res.statusCode, 200);
    assert.equal(res.body, CompatText.added);
    const again = await post(body, signed(net, 'cam-1', cam, 'POST', '/validateHash', body));
    assert.equal(again.body, CompatText.current);
  });

  it('refuses a body that is not the one signed, another key, a stale timestamp and garbage with 401', async () => {
    const body = JSON.stringify({ hash: v(2) });
    const swapped = await post(body, signed(net, 'cam-1', cam, 'POST', '/validateHash', '{"hash":"x"}'));
    assert.equal(swapped.statusCode, 401);
    assert.match(swapped.body, /body received hashes to/);
    const wrongKey = await post(body, signed(net, 'cam-1', other, 'POST', '/validateHash', body));
    assert.equal(wrongKey.statusCode, 401);
    assert.match(wrongKey.body, /does not verify/);
    const old = Date.now() - deviceRequestSkewMsMax - 60_000;
    const stale = await post(body, signed(net, 'cam-1', cam, 'POST', '/validateHash', body, old));
    assert.equal(stale.statusCode, 401);
    assert.match(stale.body, /clock/);
    const junk = await post(body, { authorization: 'Bearer abc' });
    assert.equal(junk.statusCode, 401);
    assert.equal(facade.currentTarget('default' as TargetName)?.version, 1, 'nothing was attested');
  });

  it('refuses an unknown and a revoked device with 403 naming the device', async () => {
    const body = JSON.stringify({ hash: v(2) });
    const stranger = generateKeyPair();
    const unknown = await post(body, signed(net, 'ghost', stranger, 'POST', '/validateHash', body));
    assert.equal(unknown.statusCode, 403);
    assert.match(unknown.body, /^Error: device "ghost" is not enrolled.*enroll/);
    const proof = await app.inject({
      method: 'GET',
      url: '/v1/targets/default/proof',
      headers: signed(net, 'ghost', stranger, 'GET', '/v1/targets/default/proof'),
    });
    assert.equal(proof.statusCode, 403);
    assert.equal(proof.json().code, 'DEVICE_FORBIDDEN');
  });

  it('serves a proof only to an enrolled device, and only of its own target', async () => {
    const url = '/v1/targets/default/proof';
    const unsigned = await app.inject({ method: 'GET', url });
    assert.equal(unsigned.statusCode, 401);
    assert.equal(unsigned.json().code, 'DEVICE_UNAUTHORIZED');
    const own = await app.inject({ method: 'GET', url, headers: signed(net, 'cam-1', cam, 'GET', url) });
    assert.equal(own.statusCode, 200);
    assert.equal((own.json() as TargetProof).entry?.version, 1);
    const notOwn = await app.inject({ method: 'GET', url, headers: signed(net, 'cam-2', other, 'GET', url) });
    assert.equal(notOwn.statusCode, 403);
    assert.match(notOwn.json().message, /cam-2.*lobby/);
    // The query string is part of what is signed.
    const withQuery = `${url}?x=1`;
    const moved = await app.inject({
      method: 'GET',
      url: withQuery,
      headers: signed(net, 'cam-1', cam, 'GET', url),
    });
    assert.equal(moved.statusCode, 401);
    // Public reads stay public.
    assert.equal((await app.inject({ method: 'GET', url: '/v1/status' })).statusCode, 200);
  });

  it('signs through the typed client with a device signer', async () => {
    await app.listen({ host: '127.0.0.1', port: 0 });
    const address = app.server.address();
    assert.ok(address !== null && typeof address === 'object');
    const base = `http://127.0.0.1:${address.port}`;
    const client = new ApiClient(base, {
      device: deviceSigner({ chainId: net.genesis.chainId, deviceId: 'cam-1', key: cam.privateKey }),
    });
    assert.equal((await client.targetProof('default')).entry?.version, 1);
    assert.equal((await client.validateHash(v(2))).outcome, 'added');
    await assert.rejects(new ApiClient(base).targetProof('default'), (err: Error & { code?: string }) => {
      return err.code === 'DEVICE_UNAUTHORIZED';
    });
    assert.equal((await new ApiClient(base).validateHash(v(3))).outcome, 'error');
  });

  it('refuses a device once it is revoked', async () => {
    assert.equal((await revoke(facade, net, 'cam-1')).status, 'committed');
    const url = '/v1/targets/default/proof';
    const res = await app.inject({ method: 'GET', url, headers: signed(net, 'cam-1', cam, 'GET', url) });
    assert.equal(res.statusCode, 403);
    assert.match(res.json().message, /cam-1.*revoked/);
  });
});

describe('fleet reads and content copies', () => {
  const net = memoryNetwork();
  const keys = Array.from({ length: 5 }, () => generateKeyPair());
  let facade: MemoryFacade;
  let app: FastifyInstance;
  before(async () => {
    facade = new MemoryFacade(net, 0);
    app = await buildApiServer(facade);
    for (const [i, key] of keys.entries()) await enroll(facade, net, `dev-${i}`, key);
  });
  after(async () => app.close());

  it('pages the device registry in id order and reads one device', async () => {
    const first = (await app.inject({ method: 'GET', url: '/v1/devices?limit=2' })).json();
    assert.deepEqual(
      first.devices.map((d: { deviceId: string }) => d.deviceId),
      ['dev-0', 'dev-1'],
    );
    assert.equal(first.next, 'dev-1');
    const rest = (
      await app.inject({ method: 'GET', url: `/v1/devices?after=${first.next}&limit=10` })
    ).json();
    assert.deepEqual(
      rest.devices.map((d: { deviceId: string }) => d.deviceId),
      ['dev-2', 'dev-3', 'dev-4'],
    );
    assert.equal(rest.next, null);
    const one = await app.inject({ method: 'GET', url: '/v1/devices/dev-3' });
    assert.equal(one.statusCode, 200);
    assert.equal(one.json().publicKey, keys[3]?.publicKeyHex);
    assert.equal(one.json().status, 'enrolled');
    const none = await app.inject({ method: 'GET', url: '/v1/devices/nobody' });
    assert.equal(none.statusCode, 404);
    assert.equal(none.json().code, 'DEVICE_NOT_FOUND');
  });

  it('keeps inline release content and serves it by hash and by version, with ETag and HEAD', async () => {
    const content = Buffer.from('mode=fast\n', 'utf8');
    const sha256 = sha256Hex(content);
    const body = {
      type: 'release' as const,
      chainId: net.genesis.chainId,
      target: 'cams' as TargetName,
      version: 1,
      sha256,
      size: content.length,
      mediaType: 'text/plain',
      content: content.toString('base64'),
    };
    const admins = net.adminKeys.slice(0, 2).map((a) => ({ id: a.id, privateKey: a.key.privateKey }));
    assert.equal((await facade.submitTx(signRelease(body, admins), { waitMs: 0 })).status, 'committed');
    const byHash = await app.inject({ method: 'GET', url: `/v1/content/${sha256}` });
    assert.equal(byHash.statusCode, 200);
    assert.equal(byHash.body, 'mode=fast\n');
    assert.match(byHash.headers['content-type'] as string, /^text\/plain/);
    assert.equal(byHash.headers.etag, `"${sha256}"`);
    const cached = await app.inject({
      method: 'GET',
      url: `/v1/content/${sha256}`,
      headers: { 'if-none-match': `"${sha256}"` },
    });
    assert.equal(cached.statusCode, 304);
    const head = await app.inject({ method: 'HEAD', url: `/v1/content/${sha256}` });
    assert.equal(head.statusCode, 200);
    assert.equal(head.body, '');
    const byVersion = await app.inject({ method: 'GET', url: '/v1/targets/cams/versions/1/content' });
    assert.equal(byVersion.statusCode, 200);
    assert.equal(byVersion.body, 'mode=fast\n');
    const missing = await app.inject({ method: 'HEAD', url: `/v1/content/${'ab'.repeat(32)}` });
    assert.equal(missing.statusCode, 404);
    const noVersion = await app.inject({ method: 'GET', url: '/v1/targets/cams/versions/7/content' });
    assert.equal(noVersion.statusCode, 404);
    assert.match(noVersion.json().message, /no committed version 7/);
  });

  it("lists a target's device reports, newest first, with its history", async () => {
    for (const [seq, status] of [
      [1, 'applied'],
      [2, 'failed'],
    ] as const) {
      const key = keys[0];
      assert.ok(key !== undefined);
      const tx = signAsDevice(
        {
          type: 'device-report',
          chainId: net.genesis.chainId,
          deviceId: 'dev-0' as DeviceId,
          seq,
          target: 'default' as TargetName,
          version: 1,
          sha256: v(1),
          status,
          detail: `round ${seq}`,
        },
        key.privateKey,
      );
      const result = await facade.submitTx(tx, { waitMs: 0 });
      assert.equal(result.status, 'committed', JSON.stringify(result));
    }
    const history = (await app.inject({ method: 'GET', url: '/v1/targets/default/history' })).json();
    assert.deepEqual(
      history.reports.map((r: { seq: number; status: string; deviceId: string }) => [
        r.deviceId,
        r.seq,
        r.status,
      ]),
      [
        ['dev-0', 2, 'failed'],
        ['dev-0', 1, 'applied'],
      ],
    );
    assert.match(history.reports[0].txId, /^[0-9a-f]{64}$/);
  });
});

describe('live events', () => {
  it('streams block and status events to a real HTTP client', async () => {
    const net = memoryNetwork();
    const facade = new MemoryFacade(net, 0);
    facade.offer('default', 1, v(1), 1);
    const app = await buildApiServer(facade, { events: { statusIntervalMs: 50 } });
    await app.listen({ host: '127.0.0.1', port: 0 });
    const address = app.server.address();
    assert.ok(address !== null && typeof address === 'object');
    const client = new ApiClient(`http://127.0.0.1:${address.port}`);
    const controller = new AbortController();
    try {
      const seen: string[] = [];
      let block: { height: number; txCount: number; txIds: readonly string[]; hash: string } | undefined;
      for await (const event of client.events(controller.signal)) {
        seen.push(event.event);
        if (event.event === 'status' && seen.length === 2) {
          // The stream is open and ticking: commit a block now.
          await facade.validateHash('default' as TargetName, v(1), {});
        }
        if (event.event === 'block') {
          block = event.data;
          break;
        }
      }
      assert.equal(seen[0], 'status', 'a new client gets the status at once');
      const raw = await fetch(`http://127.0.0.1:${address.port}/v1/events`, { signal: controller.signal });
      assert.equal(raw.headers.get('content-type'), 'text/event-stream; charset=utf-8');
      assert.equal(raw.headers.get('access-control-allow-origin'), '*', "the dashboard's CORS header");
      assert.ok(block !== undefined);
      assert.equal(block.height, 1);
      assert.equal(block.txCount, 1);
      assert.equal(block.hash, facade.status().tipHash);
      assert.deepEqual(block.txIds, [facade.currentTarget('default' as TargetName)?.txId]);
    } finally {
      controller.abort();
      await app.close();
    }
  });

  it('drops a client that cannot keep up instead of buffering for it', () => {
    const facade = new MemoryFacade(memoryNetwork(), 0);
    const hub = new EventHub(facade, { statusIntervalMs: 60_000 });
    const res = Object.assign(new EventEmitter(), {
      writableLength: 0,
      destroyed: false,
      writableEnded: false,
      writeHead() {},
      write(chunk: string) {
        // A client that reads nothing: every byte stays buffered.
        this.writableLength += chunk.length;
        return false;
      },
      destroy() {
        this.destroyed = true;
      },
      end() {},
    });
    const reply = { hijack() {}, getHeaders: () => ({}), raw: res } as unknown as FastifyReply;
    const req = { raw: new EventEmitter() } as unknown as FastifyRequest;
    hub.subscribe(req, reply);
    assert.equal(hub.subscribers, 1);
    for (let n = 1; n <= 5 && !res.destroyed; n++) {
      res.writableLength += 600 * 1024; // as if large frames had piled up unsent
      facade.offer('default', n, v(n), 1);
      void facade.validateHash('default' as TargetName, v(n), {});
    }
    assert.equal(res.destroyed, true, 'the slow stream was closed');
    assert.equal(hub.subscribers, 0);
    assert.equal(hub.dropped, 1);
    hub.closeAll();
  });
});
