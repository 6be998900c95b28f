/**
 * The PBFT replica: a pure state machine, step(event) -> actions. Work in progress: this first
 * version fixes the class signature so that drivers (node, simulator) can be written against it.
 */
import type { Height, ValidatorId, View } from '../encoding/brand.ts';
import type {
  Action,
  Application,
  Event,
  ReplicaConfig,
  ReplicaState,
  ReplicaStatus,
  RestoredState,
} from './types.ts';

export class Replica<B, R> implements ReplicaState {
  readonly id: ValidatorId;
  readonly n: number;
  readonly f: number;

  constructor(
    readonly config: ReplicaConfig,
    readonly app: Application<B, R>,
    restored?: RestoredState<B>,
  ) {
    this.id = config.id;
    this.n = config.n;
    this.f = Math.floor((config.n - 1) / 3);
    void restored;
  }

  get view(): View {
    return 0 as View;
  }
  get status(): ReplicaStatus {
    return 'normal';
  }
  get primary(): ValidatorId {
    return (this.view % this.n) as ValidatorId;
  }
  get lastDelivered(): Height {
    return 0 as Height;
  }
  get lastExecuted(): ReplicaState['lastExecuted'] {
    return { height: 0 as Height, hash: this.config.genesisHash };
  }
  get stableCheckpoint(): ReplicaState['stableCheckpoint'] {
    return { seq: 0 as Height, digest: this.config.genesisHash };
  }
  get pendingRequests(): number {
    return 0;
  }

  step(event: Event<B, R>): Action<B>[] {
    void event;
    throw new Error('Replica.step: not implemented yet');
  }
}
