/** One-line descriptions of consensus messages and actions, for traces and failure reports. */
import type { ConsensusMessage } from '../consensus/types.ts';
import type { SimBlock } from './app.ts';
import { shortHash } from './trace.ts';

export function describeMessage(message: ConsensusMessage<SimBlock>): string {
  switch (message.kind) {
    case 'pre-prepare':
      return `pre-prepare v=${message.view} seq=${message.seq} d=${shortHash(message.digest)} by ${message.replica} (block h=${message.block?.height} txs=${message.block?.entries?.length})`;
    case 'prepare':
    case 'commit':
      return `${message.kind} v=${message.view} seq=${message.seq} d=${shortHash(message.digest)} by ${message.replica}`;
    case 'checkpoint':
      return `checkpoint seq=${message.seq} d=${shortHash(message.digest)} by ${message.replica}`;
    case 'view-change':
      return `view-change to v=${message.newView} ckpt=${message.checkpoint?.seq} |P|=${message.prepared?.length} by ${message.replica}`;
    case 'new-view':
      return `new-view v=${message.view} |V|=${message.viewChanges?.length} |O|=${message.prePrepares?.length} by ${message.replica}`;
    default:
      return `unknown message ${JSON.stringify(message).slice(0, 80)}`;
  }
}
