/**
 * The simulated network: decides, for every message a replica sends, whether it arrives, how
 * many times and after what delay. Loss, duplication, random delay (hence reordering), partitions
 * and slow replicas live here; crashed replicas are handled by the simulator, which drops what
 * arrives at a replica that is down. The network only draws from its own seeded generator.
 */
import { assert } from '../errors.ts';
import type { Rng } from './rng.ts';

export interface NetworkConditions {
  /** Probability that one copy of a message is lost. */
  readonly lossProbability: number;
  /** Probability that a message is delivered a second time (with its own delay). */
  readonly duplicateProbability: number;
  readonly delayMsMin: number;
  readonly delayMsMax: number;
}

/** A calm network: what the liveness phase runs on. */
export const calmNetwork: NetworkConditions = {
  lossProbability: 0,
  duplicateProbability: 0,
  delayMsMin: 1,
  delayMsMax: 10,
};

export type DropReason = 'loss' | 'partition' | 'filter';

export interface Routing {
  /** Virtual delays (ms) of each copy that will arrive; empty when the message is dropped. */
  readonly delaysMs: readonly number[];
  readonly dropped: DropReason | undefined;
  readonly duplicated: boolean;
}

export class SimNetwork {
  private conditions: NetworkConditions;
  /** Replica -> partition group. Replicas in different groups cannot reach each other. */
  private readonly group: number[];
  /** Replica -> extra delay added to everything it sends or receives (a slow replica). */
  private readonly slowMs: number[];
  /**
   * Targeted loss: messages of one kind to some replicas are dropped with a probability. It is
   * how the simulator makes "one replica got the commits, the others did not" common enough to
   * exercise view changes over partially committed sequence numbers.
   */
  private filter: { readonly kind: string; readonly to: ReadonlySet<number>; readonly p: number } | undefined;

  constructor(
    readonly replicaCount: number,
    private readonly rng: Rng,
    conditions: NetworkConditions,
  ) {
    assert(replicaCount > 0, 'a network needs replicas');
    checkConditions(conditions);
    this.conditions = conditions;
    this.group = new Array<number>(replicaCount).fill(0);
    this.slowMs = new Array<number>(replicaCount).fill(0);
  }

  setConditions(conditions: NetworkConditions): void {
    checkConditions(conditions);
    this.conditions = conditions;
  }

  /**
   * Cuts the network into groups: every replica listed in `isolated` forms one group, the rest
   * another. Messages only flow within a group.
   */
  partition(isolated: readonly number[]): void {
    for (const id of isolated) this.checkId(id);
    this.group.fill(0);
    for (const id of isolated) this.group[id] = 1;
  }

  heal(): void {
    this.group.fill(0);
  }

  setFilter(kind: string, to: readonly number[], probability: number): void {
    for (const id of to) this.checkId(id);
    assert(probability >= 0 && probability <= 1, 'filter probability must be in [0, 1]');
    this.filter = { kind, to: new Set(to), p: probability };
  }

  clearFilter(): void {
    this.filter = undefined;
  }

  isPartitioned(): boolean {
    return this.group.some((g) => g !== 0);
  }

  setSlow(id: number, extraMs: number): void {
    this.checkId(id);
    assert(extraMs >= 0, 'a slow replica delay cannot be negative');
    this.slowMs[id] = extraMs;
  }

  clearSlow(): void {
    this.slowMs.fill(0);
  }

  canReach(from: number, to: number): boolean {
    return this.group[from] === this.group[to];
  }

  /** Decides the fate of one message (of a kind) from `from` to `to`. Messages to oneself never fail. */
  route(from: number, to: number, kind = ''): Routing {
    this.checkId(from);
    this.checkId(to);
    if (from === to) return { delaysMs: [0], dropped: undefined, duplicated: false };
    if (!this.canReach(from, to)) return { delaysMs: [], dropped: 'partition', duplicated: false };
    const filter = this.filter;
    if (filter !== undefined && filter.kind === kind && filter.to.has(to) && this.rng.chance(filter.p)) {
      return { delaysMs: [], dropped: 'filter', duplicated: false };
    }
    const c = this.conditions;
    if (this.rng.chance(c.lossProbability)) return { delaysMs: [], dropped: 'loss', duplicated: false };
    const extra = (this.slowMs[from] ?? 0) + (this.slowMs[to] ?? 0);
    const delays = [this.rng.int(c.delayMsMin, c.delayMsMax) + extra];
    const duplicated = this.rng.chance(c.duplicateProbability);
    if (duplicated) delays.push(this.rng.int(c.delayMsMin, c.delayMsMax * 3) + extra);
    return { delaysMs: delays, dropped: undefined, duplicated };
  }

  /**
   * A client's request to replica `to`. Clients sit outside the partitions (they reach any
   * replica that is up) but suffer the same loss and delay, and a slow replica is slow for them too.
   */
  routeFromClient(to: number): Routing {
    this.checkId(to);
    const c = this.conditions;
    if (this.rng.chance(c.lossProbability)) return { delaysMs: [], dropped: 'loss', duplicated: false };
    return {
      delaysMs: [this.rng.int(c.delayMsMin, c.delayMsMax) + (this.slowMs[to] ?? 0)],
      dropped: undefined,
      duplicated: false,
    };
  }

  private checkId(id: number): void {
    assert(Number.isInteger(id) && id >= 0 && id < this.replicaCount, `no replica ${id} in the network`);
  }
}

function checkConditions(c: NetworkConditions): void {
  assert(c.lossProbability >= 0 && c.lossProbability < 1, 'loss probability must be in [0, 1)');
  assert(c.duplicateProbability >= 0 && c.duplicateProbability <= 1, 'duplicate probability in [0, 1]');
  assert(Number.isInteger(c.delayMsMin) && c.delayMsMin >= 0, 'minimum delay must be a whole ms >= 0');
  assert(Number.isInteger(c.delayMsMax) && c.delayMsMax >= c.delayMsMin, 'delay bounds out of order');
}
