import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { EventQueue } from './event-queue.ts';

describe('EventQueue', () => {
  it('pops by time, then by insertion order, and advances the clock', () => {
    const q = new EventQueue<string>(100);
    q.push(10, 'b');
    q.push(5, 'a');
    q.push(10, 'c');
    q.push(7, 'x');
    const out: string[] = [];
    for (let e = q.pop(); e !== undefined; e = q.pop()) out.push(`${e.timeMs}:${e.item}`);
    assert.deepEqual(out, ['5:a', '7:x', '10:b', '10:c']);
    assert.equal(q.now, 10);
  });

  it('matches a stable sort on random schedules', () => {
    fc.assert(
      fc.property(fc.array(fc.integer({ min: 0, max: 50 }), { maxLength: 200 }), (times) => {
        const q = new EventQueue<number>(1000);
        for (const [i, t] of times.entries()) q.push(t, i);
        const expected = times.map((t, i) => ({ t, i })).sort((a, b) => a.t - b.t || a.i - b.i);
        const got: number[] = [];
        for (let e = q.pop(); e !== undefined; e = q.pop()) got.push(e.item);
        assert.deepEqual(
          got,
          expected.map((e) => e.i),
        );
      }),
    );
  });

  it('refuses events in the past and reports a full queue', () => {
    const q = new EventQueue<number>(2);
    assert.equal(q.push(5, 1), true);
    q.pop();
    assert.throws(() => q.push(4, 2));
    assert.equal(q.push(6, 2), true);
    assert.equal(q.push(6, 3), true);
    assert.equal(q.push(6, 4), false);
  });
});
