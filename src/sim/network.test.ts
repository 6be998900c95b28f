import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { calmNetwork, SimNetwork } from './network.ts';
import { Rng } from './rng.ts';

describe('SimNetwork', () => {
  it('delivers everything once within the delay bounds on a calm network', () => {
    const net = new SimNetwork(4, new Rng(1), calmNetwork);
    for (let i = 0; i < 500; i++) {
      const r = net.route(i % 4, (i + 1) % 4);
      assert.equal(r.dropped, undefined);
      assert.equal(r.delaysMs.length, 1);
      const d = r.delaysMs[0] ?? -1;
      assert.ok(d >= calmNetwork.delayMsMin && d <= calmNetwork.delayMsMax);
    }
  });

  it('drops across a partition both ways, and heals', () => {
    const net = new SimNetwork(4, new Rng(2), calmNetwork);
    net.partition([1, 3]);
    assert.equal(net.route(0, 1).dropped, 'partition');
    assert.equal(net.route(1, 0).dropped, 'partition');
    assert.equal(net.route(1, 3).dropped, undefined);
    assert.equal(net.route(0, 2).dropped, undefined);
    net.heal();
    assert.equal(net.route(0, 1).dropped, undefined);
  });

  it('loses and duplicates at about the configured rates', () => {
    const net = new SimNetwork(2, new Rng(3), {
      lossProbability: 0.2,
      duplicateProbability: 0.3,
      delayMsMin: 0,
      delayMsMax: 5,
    });
    let lost = 0;
    let dup = 0;
    const total = 20_000;
    for (let i = 0; i < total; i++) {
      const r = net.route(0, 1);
      if (r.dropped === 'loss') lost++;
      if (r.duplicated) dup++;
    }
    assert.ok(Math.abs(lost / total - 0.2) < 0.02, `loss rate ${lost / total}`);
    assert.ok(Math.abs(dup / (total - lost) - 0.3) < 0.02, `duplicate rate ${dup / (total - lost)}`);
  });

  it('adds a slow replica delay to what it sends and receives', () => {
    const net = new SimNetwork(3, new Rng(4), calmNetwork);
    net.setSlow(2, 500);
    assert.ok((net.route(2, 0).delaysMs[0] ?? 0) >= 500);
    assert.ok((net.route(0, 2).delaysMs[0] ?? 0) >= 500);
    assert.ok((net.route(0, 1).delaysMs[0] ?? 999) < 500);
  });

  it('is deterministic for a seed', () => {
    const a = new SimNetwork(4, new Rng(9), { ...calmNetwork, lossProbability: 0.1 });
    const b = new SimNetwork(4, new Rng(9), { ...calmNetwork, lossProbability: 0.1 });
    for (let i = 0; i < 100; i++) assert.deepEqual(a.route(0, 3), b.route(0, 3));
  });
});
