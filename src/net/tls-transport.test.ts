import assert from 'node:assert/strict';
import { before, describe, it } from 'node:test';
import { createServer, type TLSSocket } from 'node:tls';
import pino from 'pino';
import type { ValidatorId } from '../encoding/brand.ts';
import { ConfigChainError } from '../errors.ts';
import { encodeFrame } from './frames.ts';
import { type CertAndKey, createCa, issueNodeCert, issueValidatorCert } from './pki.ts';
import { messageFrame, probePeerPort, rawPeerSocket } from './testing/raw-peer.ts';
import { type LinkTiming, type PeerAddress, TlsTransport } from './tls-transport.ts';
import {
  type ClusterHarness,
  collect,
  sleep,
  transportComplianceSuite,
  waitAllConnected,
  waitFor,
} from './transport-compliance.ts';

const silent = pino({ level: 'silent' });
/** Short timers keep the suite fast; the logic is the same as with the production constants. */
const timing: LinkTiming = {
  keepaliveMs: 100,
  idleTimeoutMs: 600,
  handshakeTimeoutMs: 1000,
  reconnectMsMin: 20,
  reconnectMsMax: 200,
};
const clusterSizeMax = 4;
/** The peer port of each validator of each harness, for tests that dial it directly. */
const harnessPorts = new WeakMap<ClusterHarness, number[]>();

interface Pki {
  readonly ca: CertAndKey;
  readonly validators: CertAndKey[];
  readonly otherCa: CertAndKey;
  /** Claims to be validator-0 but is issued by another CA. */
  readonly impostor: CertAndKey;
}

let pkiPromise: Promise<Pki> | null = null;
function pki(): Promise<Pki> {
  pkiPromise ??= (async () => {
    const ca = await createCa('configchain-test');
    const validators: CertAndKey[] = [];
    for (let id = 0; id < clusterSizeMax; id++) validators.push(await issueValidatorCert(ca, id));
    const otherCa = await createCa('someone-else');
    const impostor = await issueValidatorCert(otherCa, 0);
    return { ca, validators, otherCa, impostor };
  })();
  return pkiPromise;
}

function randomBasePort(): number {
  return 20_000 + Math.floor(Math.random() * 19_000);
}

function makeTransport(keys: Pki, self: number, addresses: PeerAddress[]): TlsTransport {
  const own = keys.validators[self];
  assert.ok(own !== undefined);
  return new TlsTransport({
    self: self as ValidatorId,
    validators: addresses,
    tls: { caPem: keys.ca.certPem, certPem: own.certPem, keyPem: own.keyPem },
    logger: silent,
    timing,
  });
}

function isAddressInUse(error: unknown): boolean {
  return error instanceof ConfigChainError && error.code === 'NET_LISTEN_FAILED';
}

async function tlsCluster(size: number): Promise<ClusterHarness> {
  const keys = await pki();
  for (let attempt = 0; ; attempt++) {
    const base = randomBasePort();
    const addresses = Array.from({ length: size }, (_, id) => ({ id, host: '127.0.0.1', port: base + id }));
    const transports = addresses.map((a) => makeTransport(keys, a.id, addresses));
    try {
      for (const t of transports) await t.start();
    } catch (error) {
      for (const t of transports) await t.stop();
      if (isAddressInUse(error) && attempt < 10) continue;
      throw error;
    }
    const harness: ClusterHarness = {
      size,
      transport: (id) => transports[id]!,
      stop: async (id) => transports[id]!.stop(),
      start: async (id) => {
        const t = makeTransport(keys, id, addresses);
        transports[id] = t;
        await t.start();
      },
      injectRaw: (from, to, bytes) => injectRaw(keys.validators[from]!, keys.ca, addresses[to]!.port, bytes),
      close: async () => {
        for (const t of transports) await t.stop();
      },
    };
    harnessPorts.set(
      harness,
      addresses.map((a) => a.port),
    );
    return harness;
  }
}

async function injectRaw(
  identity: CertAndKey,
  ca: CertAndKey,
  port: number,
  bytes: Uint8Array,
): Promise<void> {
  await probePeerPort({ port, caPem: ca.certPem, identity }, bytes);
}

function rawClient(port: number, identity: CertAndKey | null, ca: CertAndKey): TLSSocket {
  return rawPeerSocket({ port, caPem: ca.certPem, ...(identity === null ? {} : { identity }) });
}

transportComplianceSuite('TlsTransport', tlsCluster);

describe('TlsTransport authentication', () => {
  before(async () => {
    await pki();
  });

  async function probeWith(identity: CertAndKey | null, expectAccepted: boolean): Promise<void> {
    const keys = await pki();
    const c = await tlsCluster(2);
    try {
      await waitAllConnected(c);
      const at1 = collect(c.transport(1));
      const port = portOf(c, 1);
      const rejectedBefore = c.transport(1).counters().connectionsRejected;
      const result = await probePeerPort(
        { port, caPem: keys.ca.certPem, ...(identity === null ? {} : { identity }) },
        messageFrame({ kind: 'forged' }),
        500,
      );
      await sleep(50);
      if (expectAccepted) {
        assert.equal(at1.length, 1);
        assert.ok(result.bytesReceived > 0, 'an accepted peer hears keepalives');
        return;
      }
      assert.equal(result.bytesReceived, 0, 'a refused client hears nothing from the validator');
      assert.deepEqual(at1, [], 'no message from an unauthenticated client is accepted');
      assert.ok(c.transport(1).counters().connectionsRejected > rejectedBefore, 'the refusal is counted');
    } finally {
      await c.close();
    }
  }

  it('accepts a raw client holding a validator certificate (the control case)', async () => {
    await probeWith((await pki()).validators[0]!, true);
  });

  it('refuses a client without a certificate in the handshake', async () => {
    await probeWith(null, false);
  });

  it('refuses a client whose certificate comes from another CA, whatever its name', async () => {
    await probeWith((await pki()).impostor, false);
  });

  it('refuses a client certificate from the network CA that names no validator', async () => {
    const keys = await pki();
    await probeWith(await issueNodeCert(keys.ca, { commonName: 'device-1' }), false);
  });

  it('takes an inbound peer’s id from its certificate only', async () => {
    const keys = await pki();
    const c = await tlsCluster(3);
    try {
      await waitAllConnected(c);
      const at1 = collect(c.transport(1));
      // Holding validator 2's key, a client says it is validator 0: the message still counts as 2's.
      await injectRaw(keys.validators[2]!, keys.ca, portOf(c, 1), encodeFrame(Buffer.from('{"from":0}')));
      await waitFor('the message', () => at1.length === 1);
      assert.equal(at1[0]?.from, 2);
    } finally {
      await c.close();
    }
  });

  it('refuses a server presenting validator-2’s certificate where validator-1 is expected', async () => {
    const keys = await pki();
    const wrong = keys.validators[2]!;
    const received: Buffer[] = [];
    const server = createServer(
      {
        ca: [keys.ca.certPem],
        cert: wrong.certPem,
        key: wrong.keyPem,
        requestCert: true,
        rejectUnauthorized: true,
        minVersion: 'TLSv1.3',
      },
      (socket) => {
        socket.on('data', (chunk: Buffer) => received.push(chunk));
        socket.on('error', () => {});
        // Answer like a real peer would, so only the identity check can stop the link.
        socket.write(encodeFrame(Buffer.alloc(0)));
      },
    );
    server.on('tlsClientError', () => {});
    const port = await listenOnFreePort(server);
    const addresses = [
      { id: 0, host: '127.0.0.1', port: port + 1 },
      { id: 1, host: '127.0.0.1', port },
    ];
    const t0 = makeTransport(keys, 0, addresses);
    try {
      await t0.start();
      t0.send(1 as ValidatorId, { kind: 'secret' });
      await sleep(400);
      assert.equal(t0.peerStatus()[0]?.connected, false);
      assert.ok(t0.counters().connectionsRejected >= 1);
      assert.equal(Buffer.concat(received).includes('secret'), false, 'nothing was sent to the impostor');
    } finally {
      await t0.stop();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    }
  });

  it('closes an authenticated link that goes silent, within the idle timeout', async () => {
    const keys = await pki();
    const c = await tlsCluster(3);
    try {
      await waitAllConnected(c);
      // Validator 2 is down, so nothing supersedes the silent link that claims its identity.
      await c.stop(2);
      const lostBefore = c.transport(1).counters().linksLost;
      const socket = rawClient(portOf(c, 1), keys.validators[2]!, keys.ca);
      let keepalives = 0;
      socket.on('data', (chunk: Buffer) => {
        keepalives += chunk.length / 4;
      });
      const started = Date.now();
      await new Promise<void>((resolve) => socket.once('close', () => resolve()));
      const elapsed = Date.now() - started;
      assert.ok(elapsed >= timing.idleTimeoutMs - 50, `closed after ${elapsed} ms, before the idle timeout`);
      assert.ok(elapsed < timing.idleTimeoutMs + 1000, `closed only after ${elapsed} ms`);
      assert.ok(keepalives >= 3, `the server sent keepalives meanwhile (${keepalives})`);
      assert.ok(c.transport(1).counters().linksLost > lostBefore);
    } finally {
      await c.close();
    }
  });

  it('refuses to start with another validator’s certificate', async () => {
    const keys = await pki();
    assert.throws(
      () =>
        new TlsTransport({
          self: 0 as ValidatorId,
          validators: [
            { id: 0, host: '127.0.0.1', port: 1 },
            { id: 1, host: '127.0.0.1', port: 2 },
          ],
          tls: {
            caPem: keys.ca.certPem,
            certPem: keys.validators[1]!.certPem,
            keyPem: keys.validators[1]!.keyPem,
          },
          logger: silent,
        }),
      (error: unknown) => error instanceof ConfigChainError && error.code === 'NET_IDENTITY_MISMATCH',
    );
  });

  it('refuses a key that does not match its certificate, with a typed error', async () => {
    const keys = await pki();
    assert.throws(
      () =>
        new TlsTransport({
          self: 0 as ValidatorId,
          validators: [
            { id: 0, host: '127.0.0.1', port: 1 },
            { id: 1, host: '127.0.0.1', port: 2 },
          ],
          tls: {
            caPem: keys.ca.certPem,
            certPem: keys.validators[0]!.certPem,
            keyPem: keys.validators[1]!.keyPem,
          },
          logger: silent,
        }),
      (error: unknown) => error instanceof ConfigChainError && error.code === 'NET_TLS_CREDENTIALS',
    );
  });

  it('reports a busy port as a typed listen error', async () => {
    const keys = await pki();
    const blocker = createServer({});
    const port = await listenOnFreePort(blocker);
    const t = makeTransport(keys, 0, [
      { id: 0, host: '127.0.0.1', port },
      { id: 1, host: '127.0.0.1', port: port + 1 },
    ]);
    try {
      await assert.rejects(
        t.start(),
        (error: unknown) =>
          error instanceof ConfigChainError &&
          error.code === 'NET_LISTEN_FAILED' &&
          (error.data as { errno?: string }).errno === 'EADDRINUSE',
      );
    } finally {
      await t.stop();
      await new Promise<void>((resolve) => blocker.close(() => resolve()));
    }
  });
});

function portOf(c: ClusterHarness, id: number): number {
  return harnessPorts.get(c)?.[id] ?? assert.fail('unknown cluster');
}

async function listenOnFreePort(server: import('node:net').Server): Promise<number> {
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  const address = server.address();
  assert.ok(address !== null && typeof address === 'object');
  return address.port;
}
