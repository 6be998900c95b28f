/**
 * The replica's persist records as stored in the consensus log (Store.appendConsensusRecords):
 * each record is kept whole as `data`, with the sequence number it is about as `seq`, so pruning
 * below a stable checkpoint is one range delete.
 */
import type { PersistRecord } from '../consensus/types.ts';
import type { ConsensusRecord } from '../storage/store.ts';
import type { NodeBlock } from './application.ts';

/** The sequence number a record is about; view records belong to no sequence number (0). */
export function recordSeq(record: PersistRecord<NodeBlock>): number {
  switch (record.kind) {
    case 'view':
      return 0;
    case 'pre-prepare':
    case 'prepare':
    case 'commit':
    case 'checkpoint':
      return record.message.seq;
    case 'view-change':
      return record.message.checkpoint.seq;
    case 'prepared':
      return record.certificate.prePrepare.seq;
    case 'stable-checkpoint':
      return record.checkpoint.seq;
  }
}

export function toStored(record: PersistRecord<NodeBlock>, seqOverride?: number): ConsensusRecord {
  return { seq: seqOverride ?? recordSeq(record), kind: record.kind, data: record };
}

const KINDS: ReadonlySet<string> = new Set([
  'view',
  'pre-prepare',
  'prepare',
  'commit',
  'checkpoint',
  'view-change',
  'prepared',
  'stable-checkpoint',
]);

/** The persist records in stored order; a record of an unknown kind means a corrupt log. */
export function fromStored(records: readonly ConsensusRecord[]): PersistRecord<NodeBlock>[] {
  return records.map((r, index) => {
    const data = r.data as { kind?: unknown } | null;
    if (data === null || typeof data !== 'object' || typeof data.kind !== 'string' || !KINDS.has(data.kind)) {
      throw new Error(`consensus log record ${index} (kind ${r.kind}) is not a replica persist record`);
    }
    return data as PersistRecord<NodeBlock>;
  });
}
