/**
 * The shared compliance suite every Transport implementation passes (js-libp2p's
 * interface-compliance-tests): memory-transport.test.ts and tls-transport.test.ts run it
 * against their own cluster factory. It checks behaviour through the Transport interface only,
 * plus one harness hook to put raw bytes on a link (the way a faulty peer would).
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, afterEach, describe, it } from 'node:test';
import { peerSendQueueFramesMax } from '../constants.ts';
import type { ValidatorId } from '../encoding/brand.ts';
import { encodeFrame } from './frames.ts';
import type { PeerStatus, Transport } from './transport.ts';

export interface ClusterHarness {
  readonly size: number;
  /** The current transport of validator id (a new object after start(id)). */
  transport(id: number): Transport;
  stop(id: number): Promise<void>;
  /** Starts a fresh transport with validator id's identity and address. */
  start(id: number): Promise<void>;
  /** Writes raw bytes to validator `to` on a link authenticated as validator `from`. */
  injectRaw(from: number, to: number, bytes: Uint8Array): Promise<void>;
  close(): Promise<void>;
}

export type ClusterFactory = (size: number) => Promise<ClusterHarness>;

export interface Received {
  readonly from: ValidatorId;
  readonly message: Record<string, unknown>;
}

export function collect(transport: Transport): Received[] {
  const received: Received[] = [];
  transport.onMessage((from, message) => received.push({ from, message }));
  return received;
}

export function recordStatus(transport: Transport): PeerStatus[] {
  const events: PeerStatus[] = [];
  transport.onPeerStatus((status) => events.push(status));
  return events;
}

/** Polls until check() is true; fails naming what it waited for. */
export async function waitFor(what: string, check: () => boolean, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) assert.fail(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(5);
  }
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

export async function waitAllConnected(cluster: ClusterHarness, timeoutMs = 5000): Promise<void> {
  await waitFor(
    'every link up',
    () => {
      for (let id = 0; id < cluster.size; id++) {
        if (
          !cluster
            .transport(id)
            .peerStatus()
            .every((s) => s.connected)
        )
          return false;
      }
      return true;
    },
    timeoutMs,
  );
}

const v = (id: number) => id as ValidatorId;

export function transportComplianceSuite(name: string, makeCluster: ClusterFactory): void {
  describe(`Transport compliance: ${name}`, () => {
    let cluster: ClusterHarness | null = null;
    async function fresh(size: number): Promise<ClusterHarness> {
      cluster = await makeCluster(size);
      await waitAllConnected(cluster);
      return cluster;
    }
    afterEach(async () => {
      await cluster?.close();
      cluster = null;
    });
    after(async () => {
      await cluster?.close();
    });

    it('delivers each link in order, from the right sender, to the right receiver only', async () => {
      const c = await fresh(3);
      const at1 = collect(c.transport(1));
      const at2 = collect(c.transport(2));
      const count = 300;
      for (let seq = 0; seq < count; seq++) {
        c.transport(0).send(v(1), { kind: 'test', seq, from: 0 });
        c.transport(2).send(v(1), { kind: 'test', seq, from: 2 });
      }
      await waitFor('600 messages at validator 1', () => at1.length === 2 * count);
      for (const sender of [0, 2]) {
        const got = at1.filter((r) => r.from === sender);
        assert.deepEqual(
          got.map((r) => r.message.seq),
          Array.from({ length: count }, (_, i) => i),
        );
        assert.ok(got.every((r) => r.message.from === sender));
      }
      assert.equal(at2.length, 0);
    });

    it('sends bytes given as already-encoded JSON, and a fresh object to each receiver', async () => {
      const c = await fresh(3);
      const at1 = collect(c.transport(1));
      const at2 = collect(c.transport(2));
      const message = { kind: 'shared', nested: { list: [1, 2, 3] } };
      c.transport(0).broadcast(message);
      c.transport(0).send(v(1), Buffer.from('{"kind":"raw"}'));
      await waitFor('the broadcast and the raw message', () => at1.length === 2 && at2.length === 1);
      assert.deepEqual(at1[0]?.message, message);
      assert.deepEqual(at1[1]?.message, { kind: 'raw' });
      assert.notEqual(at1[0]?.message, message);
      assert.notEqual(at1[0]?.message, at2[0]?.message);
    });

    it('broadcast reaches every peer exactly once and never self', async () => {
      const c = await fresh(4);
      const received = [0, 1, 2, 3].map((id) => collect(c.transport(id)));
      c.transport(0).broadcast({ kind: 'hello' });
      await waitFor('the broadcast at 1, 2 and 3', () => received.slice(1).every((r) => r.length === 1));
      await sleep(50);
      assert.equal(received[0]?.length, 0);
      for (const r of received.slice(1)) {
        assert.equal(r.length, 1);
        assert.equal(r[0]?.from, 0);
      }
      const counters = c.transport(0).counters();
      assert.ok(counters.framesOut >= 3);
      assert.equal(counters.peersConnected, 3);
    });

    it('reports every peer except self, by id, with when it was last heard from', async () => {
      const c = await fresh(3);
      const before = Date.now();
      const at0 = collect(c.transport(0));
      c.transport(2).send(v(0), { kind: 'ping' });
      await waitFor('the ping', () => at0.length === 1);
      const status = c.transport(0).peerStatus();
      assert.deepEqual(
        status.map((s) => [s.id, s.connected]),
        [
          [1, true],
          [2, true],
        ],
      );
      const seen = status[1]?.lastSeenMs;
      assert.ok(typeof seen === 'number' && seen >= before && seen <= Date.now(), `lastSeenMs ${seen}`);
    });

    it('sees a stopped peer go down, queues for it, and delivers in order after it restarts', async () => {
      const c = await fresh(3);
      const events = recordStatus(c.transport(0));
      await c.stop(2);
      await waitFor('validator 2 down at 0', () => events.some((e) => e.id === 2 && !e.connected));
      assert.equal(c.transport(0).peerStatus()[1]?.connected, false);
      for (let seq = 0; seq < 5; seq++) c.transport(0).send(v(2), { kind: 'queued', seq });
      await c.start(2);
      const at2 = collect(c.transport(2));
      const at0 = collect(c.transport(0));
      await waitFor('the queued messages at the restarted 2', () => at2.length === 5);
      assert.deepEqual(
        at2.map((r) => r.message.seq),
        [0, 1, 2, 3, 4],
      );
      await waitFor('validator 2 up again at 0', () => events.some((e) => e.id === 2 && e.connected));
      await waitAllConnected(c);
      c.transport(2).send(v(0), { kind: 'back' });
      await waitFor('a message from the restarted 2', () => at0.some((r) => r.from === 2));
    });

    it('keeps the newest frames when a down peer’s queue overflows', async () => {
      const c = await fresh(2);
      const events = recordStatus(c.transport(0));
      await c.stop(1);
      await waitFor('validator 1 down', () => events.some((e) => !e.connected));
      const extra = 5;
      const total = peerSendQueueFramesMax + extra;
      for (let seq = 0; seq < total; seq++) c.transport(0).send(v(1), { seq });
      assert.equal(c.transport(0).counters().framesDropped, extra);
      await c.start(1);
      const at1 = collect(c.transport(1));
      await waitFor('the queue at the restarted 1', () => at1.length === peerSendQueueFramesMax, 15_000);
      assert.equal(at1[0]?.message.seq, extra);
      assert.equal(at1.at(-1)?.message.seq, total - 1);
    });

    it('closes a link that announces an oversize frame, and goes on working', async () => {
      const c = await fresh(3);
      const at1 = collect(c.transport(1));
      const header = Buffer.alloc(4);
      header.writeUInt32BE(0xffffffff, 0);
      await c.injectRaw(0, 1, header);
      await waitFor('the oversize rejection', () => c.transport(1).counters().framesRejectedOversize === 1);
      await expectLinkWorks(c, 0, 1, at1);
      await expectLinkWorks(c, 2, 1, at1);
    });

    it('survives frames that are not JSON objects and random garbage', async () => {
      const c = await fresh(3);
      const at1 = collect(c.transport(1));
      const garbage = [
        encodeFrame(Buffer.from('not json')),
        encodeFrame(Buffer.from('[1,2,3]')),
        encodeFrame(Buffer.from('null')),
        encodeFrame(Buffer.from([0xff, 0xfe, 0x00])),
      ];
      for (const [index, bytes] of garbage.entries()) {
        await c.injectRaw(0, 1, bytes);
        await waitFor(
          `rejection of garbage frame ${index}`,
          () => c.transport(1).counters().messagesRejectedInvalid === index + 1,
        );
        await expectLinkWorks(c, 0, 1, at1);
      }
      for (let round = 0; round < 5; round++) await c.injectRaw(2, 1, randomBytes(64 + round * 100));
      await expectLinkWorks(c, 2, 1, at1);
      await expectLinkWorks(c, 0, 1, at1);
      assert.ok(
        at1.every((r) => typeof r.message.probe === 'number'),
        'only real messages were delivered',
      );
    });
  });
}

let probe = 0;

/** Sends probes from -> to until one arrives: links closed for bad data come back by themselves. */
export async function expectLinkWorks(
  c: ClusterHarness,
  from: number,
  to: number,
  received: Received[],
): Promise<void> {
  const id = ++probe;
  const deadline = Date.now() + 5000;
  while (!received.some((r) => r.from === from && r.message.probe === id)) {
    if (Date.now() > deadline) assert.fail(`the link ${from} -> ${to} did not recover`);
    c.transport(from).send(v(to), { probe: id });
    await sleep(20);
  }
}
