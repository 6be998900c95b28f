/**
 * A fixed set of 250 simulator seeds for n = 4: half let each seed choose 0..f Byzantine
 * replicas, half always have f = 1. Every seed mixes loss, duplication, delay, partitions, crashes
 * and restarts as its plan says. Zero violations are expected.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { assertSeedsPass } from '../src/sim/testing.ts';

const chunk = 25;

describe('simulator, n = 4, 250 fixed seeds', () => {
  for (let first = 1; first <= 125; first += chunk) {
    it(`seeds ${first}..${first + chunk - 1}: Byzantine count chosen by the seed`, () => {
      const summary = assertSeedsPass(first, chunk, { n: 4 });
      assert.ok(summary.blocksCommitted > 0, 'the runs commit blocks');
    });
  }
  for (let first = 10_001; first <= 10_125; first += chunk) {
    it(`seeds ${first}..${first + chunk - 1}: one Byzantine replica`, () => {
      const summary = assertSeedsPass(first, chunk, { n: 4, byzantine: 1 });
      assert.equal(summary.seedsByByzantine[1], chunk);
      assert.ok(summary.blocksCommitted > 0, 'the runs commit blocks');
    });
  }
});
