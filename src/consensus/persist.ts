/**
 * Compaction of a replica's persisted records: the subset a restart still needs, in their original
 * order. The simulator compacts its per-replica logs with it. The node keeps its log bounded
 * differently (a range delete below the stable checkpoint, then the newest 'view' record stored
 * again: src/node/driver.ts); this function states what any compaction must keep.
 *
 * Kept: the last 'view' record (a restarted replica must never return to a lower view), the highest
 * 'stable-checkpoint', the last 'view-change', own checkpoints at or above the stable one, the
 * highest-view 'prepared' certificate per seq above the stable checkpoint, and the pre-prepare,
 * prepare and commit records of the current view above the stable checkpoint (they stop the replica
 * from voting for two digests at one (view, seq)). Everything else is superseded.
 *
 * Careful drivers: a record about no sequence number ('view') must never be pruned by a range delete
 * on seq; use this function, or keep the last 'view' record explicitly.
 */
import type { PersistRecord } from './types.ts';

export function compactRecords<B>(records: readonly PersistRecord<B>[]): PersistRecord<B>[] {
  let lastView = -1;
  let stableAt = -1;
  let stableSeq = 0;
  let viewChangeAt = -1;
  let view = 0;
  for (const [i, r] of records.entries()) {
    if (r.kind === 'view') {
      lastView = i;
      view = r.view;
    } else if (r.kind === 'stable-checkpoint' && r.checkpoint.seq >= stableSeq) {
      stableAt = i;
      stableSeq = r.checkpoint.seq;
    } else if (r.kind === 'view-change') {
      viewChangeAt = i;
    }
  }
  const bestPrepared = new Map<number, number>();
  for (const [i, r] of records.entries()) {
    if (r.kind !== 'prepared') continue;
    const pp = r.certificate.prePrepare;
    if (pp.seq <= stableSeq) continue;
    const best = bestPrepared.get(pp.seq);
    const bestRecord = best === undefined ? undefined : records[best];
    if (bestRecord?.kind !== 'prepared' || bestRecord.certificate.prePrepare.view <= pp.view) {
      bestPrepared.set(pp.seq, i);
    }
  }
  const keepPrepared = new Set(bestPrepared.values());
  return records.filter((r, i) => keep(r, i));

  function keep(r: PersistRecord<B>, i: number): boolean {
    switch (r.kind) {
      case 'view':
        return i === lastView;
      case 'stable-checkpoint':
        return i === stableAt;
      case 'view-change':
        return i === viewChangeAt;
      case 'checkpoint':
        return r.message.seq >= stableSeq;
      case 'prepared':
        return keepPrepared.has(i);
      case 'pre-prepare':
      case 'prepare':
      case 'commit':
        return r.message.view === view && r.message.seq > stableSeq;
    }
  }
}
