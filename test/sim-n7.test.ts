/**
 * A fixed set of 250 simulator seeds for n = 7: half let each seed choose 0..f Byzantine
 * replicas, half always have f = 2. Zero violations are expected.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { assertSeedsPass } from '../src/sim/testing.ts';

const chunk = 25;

describe('simulator, n = 7, 250 fixed seeds', () => {
  for (let first = 20_001; first <= 20_125; first += chunk) {
    it(`seeds ${first}..${first + chunk - 1}: Byzantine count chosen by the seed`, () => {
      const summary = assertSeedsPass(first, chunk, { n: 7 });
      assert.ok(summary.blocksCommitted > 0, 'the runs commit blocks');
    });
  }
  for (let first = 30_001; first <= 30_125; first += chunk) {
    it(`seeds ${first}..${first + chunk - 1}: two Byzantine replicas`, () => {
      const summary = assertSeedsPass(first, chunk, { n: 7, byzantine: 2 });
      assert.equal(summary.seedsByByzantine[2], chunk);
      assert.ok(summary.blocksCommitted > 0, 'the runs commit blocks');
    });
  }
});
