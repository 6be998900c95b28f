/**
 * The parallel runner gives the same summary as running the seeds in one thread: seeds are
 * independent and deterministic, whichever worker thread runs them.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { runPool } from '../src/sim/pool.ts';
import { runBatch } from '../src/sim/runner.ts';

describe('runPool', () => {
  it('matches a single-thread run of the same seeds, with two worker threads', async () => {
    const batch = { n: 4 };
    const single = runBatch(900, 60, batch);
    let progress = 0;
    const pooled = await runPool({
      first: 900,
      count: 60,
      batch,
      workers: 2,
      onProgress: (done) => (progress = done),
    });
    assert.equal(progress, 60);
    assert.deepEqual(pooled.summary, single.summary);
    assert.deepEqual(
      pooled.failures.map((f) => f.seed),
      single.failures.map((f) => f.seed),
    );
  });
});
