import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { ValidatorId } from '../encoding/brand.ts';
import { MemoryNetwork } from './memory-transport.ts';
import {
  type ClusterHarness,
  collect,
  recordStatus,
  transportComplianceSuite,
  waitAllConnected,
  waitFor,
} from './transport-compliance.ts';

async function memoryCluster(size: number): Promise<ClusterHarness> {
  const network = new MemoryNetwork({ validators: size });
  for (let id = 0; id < size; id++) await network.transport(id).start();
  return {
    size,
    transport: (id) => {
      const t = network.member(id);
      assert.ok(t !== null);
      return t;
    },
    stop: async (id) => network.member(id)?.stop(),
    start: async (id) => network.transport(id).start(),
    injectRaw: async (from, to, bytes) => network.injectBytes(from, to, bytes),
    close: async () => {
      for (let id = 0; id < size; id++) await network.member(id)?.stop();
    },
  };
}

transportComplianceSuite('MemoryTransport', memoryCluster);

describe('MemoryNetwork', () => {
  it('loses frames in flight when a link is cut, and delivers again after reconnect', async () => {
    const network = new MemoryNetwork({ validators: 2 });
    const a = network.transport(0);
    const b = network.transport(1);
    await a.start();
    await b.start();
    const atB = collect(b);
    const events = recordStatus(a);
    a.send(1 as ValidatorId, { seq: 0 });
    network.disconnect(0, 1);
    assert.equal(network.isUp(0, 1), false);
    assert.deepEqual(
      events.map((e) => e.connected),
      [false],
    );
    assert.equal(b.peerStatus()[0]?.connected, false, 'a cut link is down at both ends');
    a.send(1 as ValidatorId, { seq: 1 });
    network.reconnect(0, 1);
    await waitFor('the message queued during the cut', () => atB.length === 1);
    assert.equal(atB[0]?.message.seq, 1, 'the frame in flight at the cut was lost');
    assert.deepEqual(
      events.map((e) => e.connected),
      [false, true],
    );
    await a.stop();
    await b.stop();
  });

  it('refuses to replace a validator that is still running', async () => {
    const network = new MemoryNetwork({ validators: 2 });
    await network.transport(0).start();
    assert.throws(() => network.transport(0), /still running/);
    await network.member(0)?.stop();
    const again = network.transport(0);
    await again.start();
    await network.transport(1).start();
    await waitAllConnected({
      size: 2,
      transport: (id) => network.member(id)!,
      stop: async () => {},
      start: async () => {},
      injectRaw: async () => {},
      close: async () => {},
    });
    await again.stop();
    await network.member(1)?.stop();
  });
});
