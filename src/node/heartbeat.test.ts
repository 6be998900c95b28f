import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { HeartbeatSchedule } from './heartbeat.ts';

describe('HeartbeatSchedule', () => {
  it('makes the primary beat after one idle interval and a backup after two', () => {
    const primary = new HeartbeatSchedule(1000, 0);
    const backup = new HeartbeatSchedule(1000, 0);
    assert.equal(primary.next(999, true), null);
    assert.equal(primary.next(1000, true), 'new');
    assert.equal(backup.next(1000, false), null);
    assert.equal(backup.next(1999, false), null);
    assert.equal(backup.next(2000, false), 'new');
  });

  it('counts idle time from the last committed block', () => {
    const s = new HeartbeatSchedule(1000, 0);
    s.committed(5000, ['other']);
    assert.equal(s.next(5999, true), null);
    assert.equal(s.next(6000, true), 'new');
  });

  it('keeps at most one heartbeat pending, and hands it in again after twice the interval', () => {
    const s = new HeartbeatSchedule(1000, 0);
    assert.equal(s.next(1000, true), 'new');
    s.submitted('hb1', 1000);
    assert.throws(() => s.submitted('hb2', 1001), /one heartbeat/);
    assert.equal(s.next(2500, true), null, 'still pending');
    assert.equal(s.next(3000, true), 'again', 'perhaps lost: the same one goes again');
    assert.equal(s.pending, 'hb1');
    assert.equal(s.next(4999, true), null, 'and waits another two intervals');
    assert.equal(s.next(5000, true), 'again');
  });

  it('clears the pending heartbeat when its block commits or consensus refuses it', () => {
    const s = new HeartbeatSchedule(1000, 0);
    s.submitted('hb1', 1000);
    s.committed(1200, ['x', 'hb1']);
    assert.equal(s.pending, null);
    assert.equal(s.next(2199, true), null);
    assert.equal(s.next(2200, true), 'new');
    s.submitted('hb2', 2200);
    s.refused('other');
    assert.equal(s.pending, 'hb2');
    s.refused('hb2');
    assert.equal(s.pending, null);
  });

  it('never beats with an interval of 0', () => {
    const s = new HeartbeatSchedule(0, 0);
    assert.equal(s.next(1e12, true), null);
  });
});
