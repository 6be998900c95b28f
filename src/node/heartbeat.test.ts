import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { HeartbeatSchedule } from './heartbeat.ts';

describe('HeartbeatSchedule', () => {
  it('makes the primary beat after one idle interval and a backup after two', () => {
    const primary = new HeartbeatSchedule(1000, 0);
    const backup = new HeartbeatSchedule(1000, 0);
    assert.equal(primary.due(999, true), false);
    assert.equal(primary.due(1000, true), true);
    assert.equal(backup.due(1000, false), false);
    assert.equal(backup.due(1999, false), false);
    assert.equal(backup.due(2000, false), true);
  });

  it('counts idle time from the last committed block', () => {
    const s = new HeartbeatSchedule(1000, 0);
    s.committed(5000, ['other']);
    assert.equal(s.due(5999, true), false);
    assert.equal(s.due(6000, true), true);
  });

  it('keeps at most one heartbeat pending, and gives it up after twice the interval', () => {
    const s = new HeartbeatSchedule(1000, 0);
    assert.equal(s.due(1000, true), true);
    s.submitted('hb1', 1000);
    assert.throws(() => s.submitted('hb2', 1001), /one heartbeat/);
    assert.equal(s.due(2500, true), false, 'still pending');
    assert.equal(s.due(3000, true), true, 'lost: the next one may go');
    assert.equal(s.pending, null);
  });

  it('clears the pending heartbeat when its block commits or consensus refuses it', () => {
    const s = new HeartbeatSchedule(1000, 0);
    s.submitted('hb1', 1000);
    s.committed(1200, ['x', 'hb1']);
    assert.equal(s.pending, null);
    assert.equal(s.due(2199, true), false);
    assert.equal(s.due(2200, true), true);
    s.submitted('hb2', 2200);
    s.refused('other');
    assert.equal(s.pending, 'hb2');
    s.refused('hb2');
    assert.equal(s.pending, null);
  });

  it('never beats with an interval of 0', () => {
    const s = new HeartbeatSchedule(0, 0);
    assert.equal(s.due(1e12, true), false);
  });
});
