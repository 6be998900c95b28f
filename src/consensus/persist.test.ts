import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { Height } from '../encoding/brand.ts';
import { compactRecords } from './persist.ts';
import { Replica } from './replica.ts';
import { Cluster, req } from './testkit.ts';

describe('compactRecords', () => {
  it('keeps what a restart needs and drops what a stable checkpoint or a later view superseded', () => {
    const c = new Cluster({ n: 4, limits: { checkpointInterval: 2, watermarkWindow: 4, blockTxsMax: 1 } });
    for (let i = 0; i < 5; i++) c.request(req('a', i));
    c.tick(20, 10);
    // A view change with block 6 prepared but not committed anywhere but r0.
    c.drops.push((_f, to, m) => m?.kind === 'commit' && to !== 0);
    c.request(req('a', 5));
    c.tick(10, 10);
    c.crash(0);
    c.drops.length = 0;
    c.request(req('a', 6), [1, 2, 3]);
    c.tick(2500);
    assert.equal(c.replica(1).view, 1);

    const full = c.members[1]!.records;
    const compact = compactRecords(full);
    assert.ok(compact.length < full.length / 2, `${compact.length} of ${full.length} records kept`);
    assert.equal(compact.filter((r) => r.kind === 'view').length, 1);
    assert.equal(compact.filter((r) => r.kind === 'stable-checkpoint').length, 1);
    const stable = compact.find((r) => r.kind === 'stable-checkpoint');
    assert.ok(stable?.kind === 'stable-checkpoint');
    for (const r of compact) {
      if (r.kind === 'prepare' || r.kind === 'commit' || r.kind === 'pre-prepare') {
        assert.equal(r.message.view, 1);
        assert.ok(r.message.seq > stable.checkpoint.seq);
      }
    }
    // Restoring from either gives the same replica.
    const executed = { height: c.members[1]!.chain.length as Height, hash: c.members[1]!.executedHash };
    const a = new Replica(c.config(1), c.app, { records: full, executed });
    const b = new Replica(c.config(1), c.app, { records: compact, executed });
    assert.deepEqual(
      [b.view, b.status, b.stableCheckpoint, b.lastExecuted],
      [a.view, a.status, a.stableCheckpoint, a.lastExecuted],
    );
    // Compaction is idempotent.
    assert.deepEqual(compactRecords(compact), compact);
  });
});
