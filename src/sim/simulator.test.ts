import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { blockDigest } from './app.ts';
import { formatFailure } from './report.ts';
import { reproduceCommand, seedOptions } from './runner.ts';
import { runSeed } from './simulator.ts';

describe('runSeed', () => {
  it('gives an identical result for the same seed, and different runs for different seeds', () => {
    for (const [seed, n, byzantine] of [
      [11, 4, 1],
      [12, 7, 2],
      [13, 4, 0],
    ] as const) {
      const a = runSeed({ seed, n, byzantine });
      const b = runSeed({ seed, n, byzantine });
      assert.deepEqual(a, b, `seed ${seed} is not deterministic`);
      assert.ok(a.blocksCommitted > 0, `seed ${seed} commits blocks`);
      assert.ok(a.events > 0);
    }
    const x = runSeed({ seed: 21, n: 4 });
    const y = runSeed({ seed: 22, n: 4 });
    assert.notDeepEqual({ ...x, seed: 0 }, { ...y, seed: 0 });
  });

  it('reproduces a mixed-batch seed from the printed command alone', () => {
    // A mixed batch lets the seed pick n and the Byzantine count; the command pins both.
    const batch = {};
    const mixed = runSeed(seedOptions(31, batch));
    const command = reproduceCommand(mixed, batch);
    const n = Number(/--n (\d+)/.exec(command)?.[1]);
    const k = Number(/--byzantine (\d+)/.exec(command)?.[1]);
    assert.deepEqual(runSeed(seedOptions(31, { n, byzantine: k })), mixed);
  });

  it('injects the faults of its plan and commits blocks through them', () => {
    let crashes = 0;
    let losses = 0;
    let byzantine = 0;
    for (let seed = 40; seed < 50; seed++) {
      const r = runSeed({ seed, n: 4, byzantine: 1 });
      assert.deepEqual(r.violations, [], `seed ${seed}: ${r.violations[0]?.detail}`);
      crashes += r.faults.crash ?? 0;
      losses += r.faults.loss ?? 0;
      for (const [k, c] of Object.entries(r.faults)) if (k.startsWith('byzantine:')) byzantine += c;
    }
    assert.ok(
      crashes > 0 && losses > 0 && byzantine > 0,
      `crashes ${crashes} losses ${losses} byz ${byzantine}`,
    );
  });

  it('reports a failure with its seed, the command that reproduces it and a trace', () => {
    const batch = { n: 4, broken: 'commit-on-2f' as const };
    const r = runSeed(seedOptions(1, batch));
    assert.ok(r.violations.length > 0);
    assert.ok(r.trace.length > 0 && r.trace.length <= 200);
    assert.ok(r.trace.some((line) => line.includes('DELIVERS')));
    const text = formatFailure(r, batch);
    assert.match(text, /seed 1 FAILED/);
    assert.match(text, /npm run sim -- --seed 1 --n 4 --byzantine \d --broken commit-on-2f/);
    assert.match(text, /fault plan:/);
  });

  it('hashes blocks over every field', () => {
    const base = {
      height: 1,
      parent: 'aa'.repeat(32),
      view: 0,
      proposer: 0,
      timeMs: 0,
      entries: [],
    } as unknown as Parameters<typeof blockDigest>[0];
    assert.notEqual(blockDigest(base), blockDigest({ ...base, timeMs: 1 }));
  });
});
