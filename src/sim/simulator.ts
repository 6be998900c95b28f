/**
 * The deterministic simulator (TigerBeetle's VOPR, for our PBFT core). One seed drives one run:
 * n real Replica instances, each with its own real Ed25519 key, exchange real signed messages
 * over a simulated network on a virtual clock. The seed chooses the fault plan, the client load,
 * every delay and every loss. Checkers run after every step; a run stops at the first violation.
 *
 * The driver performs each step's actions in order, exactly as the node must: a persist action's
 * records join the replica's durable records before any later action of that step runs. A crash
 * may strike in the middle of a step's actions, so the actions after it are lost while the
 * records persisted before it survive. A restart rebuilds the replica from those records and from
 * its durable ledger, nothing else.
 *
 * The run itself never reads the wall clock: elapsed time is measured by the caller.
 */

import { compactRecords } from '../consensus/persist.ts';
import { Replica } from '../consensus/replica.ts';
import type {
  Action,
  CertifiedBlock,
  ConsensusMessage,
  Event,
  PersistRecord,
  ReplicaConfig,
  ReplicaFaults,
  ReplicaLimits,
} from '../consensus/types.ts';
import {
  simEventsPerSeedMax,
  simEventsQueuedMax,
  simRecordsPerReplicaMax,
  simTraceEntriesMax,
} from '../constants.ts';
import { sha256Hex } from '../crypto/hash.ts';
import type { BlockHash, Height, ValidatorId } from '../encoding/brand.ts';
import { assert } from '../errors.ts';
import {
  blockDigest,
  checkSimBlock,
  requestVerdict,
  SimApplication,
  type SimBlock,
  type SimRequest,
} from './app.ts';
import { type Adversary, createAdversary } from './byzantine.ts';
import { checkLiveness, requestKeyString, SafetyChecker, type Violation } from './checkers.ts';
import { describeMessage } from './describe.ts';
import { EventQueue } from './event-queue.ts';
import {
  type ByzantineBehaviour,
  choosePlan,
  describeFault,
  describePlan,
  type FaultPlan,
  type ScheduledFault,
} from './faults.ts';
import { CachingVerifier, simKeys, simSigner } from './keys.ts';
import { calmNetwork, SimNetwork } from './network.ts';
import { Rng } from './rng.ts';
import { formatTime, shortHash, TraceRing } from './trace.ts';

export const simChainId = 'configchain-sim';
export const simGenesisHash = sha256Hex('configchain/sim/genesis') as string as BlockHash;

/** Limits (from src/constants.ts) and timings shared by every simulated run. */
export const simLimits = {
  eventsQueuedMax: simEventsQueuedMax,
  eventsPerSeedMax: simEventsPerSeedMax,
  traceEntriesMax: simTraceEntriesMax,
  recordsPerReplicaMax: simRecordsPerReplicaMax,
  tickMs: 10,
  clientRetryMs: 1000,
  /** The liveness phase lasts at least this long, even when every request committed earlier. */
  livenessPhaseMsMin: 1500,
} as const;

export interface SimOptions {
  readonly seed: number;
  readonly n: number;
  /** Exact number of Byzantine replicas; undefined lets the seed choose 0..f. */
  readonly byzantine?: number | undefined;
  /** Restrict the Byzantine behaviours the seed may choose from. */
  readonly behaviours?: readonly ByzantineBehaviour[] | undefined;
  /** TEST-ONLY broken replica variants, applied to every honest replica. */
  readonly replicaFaults?: ReplicaFaults | undefined;
  readonly safetyPhaseMs?: number | undefined;
  /** Bound within which every valid request must commit once the faults heal. */
  readonly livenessPhaseMs?: number | undefined;
  /** Client requests submitted over the run; undefined lets the seed choose. */
  readonly requests?: number | undefined;
  /** Trace entries kept for a failure report (default simLimits.traceEntriesMax). */
  readonly traceEntries?: number | undefined;
  /** Keep the trace even when the seed passes (to study a run). */
  readonly keepTrace?: boolean | undefined;
}

export interface SeedResult {
  readonly seed: number;
  readonly n: number;
  readonly f: number;
  readonly byzantine: readonly number[];
  /** Highest height delivered by an honest replica. */
  readonly blocksCommitted: number;
  /** View changes completed, counted once per new view reached by an honest replica. */
  readonly viewChanges: number;
  readonly highestView: number;
  readonly faults: Readonly<Record<string, number>>;
  readonly requestsSubmitted: number;
  readonly violations: readonly Violation[];
  readonly events: number;
  readonly virtualMs: number;
  readonly signatureChecks: number;
  /** Plan, last milestones and last trace entries, filled only when the seed failed. */
  readonly plan: readonly string[];
  readonly milestones: readonly string[];
  readonly trace: readonly string[];
}

type SimEvent =
  | {
      readonly kind: 'message';
      readonly to: number;
      readonly from: number;
      readonly message: ConsensusMessage<SimBlock>;
    }
  | {
      readonly kind: 'blocks';
      readonly to: number;
      readonly from: number;
      readonly blocks: readonly CertifiedBlock<SimBlock>[];
    }
  | {
      readonly kind: 'local';
      readonly to: number;
      readonly incarnation: number;
      readonly event: Event<SimBlock, SimRequest>;
    }
  | { readonly kind: 'request'; readonly to: number; readonly request: SimRequest }
  | { readonly kind: 'tick' }
  | { readonly kind: 'submit'; readonly index: number }
  | { readonly kind: 'retry'; readonly index: number }
  | { readonly kind: 'fault'; readonly fault: ScheduledFault }
  | { readonly kind: 'adversary'; readonly id: number }
  | { readonly kind: 'liveness-phase' };

interface TraceEntry {
  readonly timeMs: number;
  readonly what: string | (() => string);
}

interface Host {
  readonly id: number;
  readonly honest: boolean;
  readonly config: ReplicaConfig;
  replica: Replica<SimBlock, SimRequest> | null;
  incarnation: number;
  /** Durable consensus records: only those from persist actions performed before a crash. */
  records: PersistRecord<SimBlock>[];
  /** The durable ledger: delivered blocks with their certificates, index = height - 1. */
  readonly ledger: CertifiedBlock<SimBlock>[];
  /** Keys of requests in delivered blocks. */
  readonly deliveredKeys: Set<string>;
  /** The height at which each delivered request was executed (the node's transaction index). */
  readonly committedAt: Map<string, Height>;
  /** This replica's application: shared pure block functions plus its own committed index. */
  readonly app: SimApplication;
  /** When set, the replica crashes after performing this many more actions. */
  crashAfterActions: number | undefined;
  readonly adversary: Adversary | undefined;
}

interface ClientRequest {
  readonly request: SimRequest;
  readonly valid: boolean;
  readonly submitAtMs: number;
  submitted: boolean;
  /** Replicas that answered committed or duplicate. */
  readonly confirmations: Set<number>;
  /** Honest replicas that delivered a block holding this request. */
  honestDeliveries: number;
  done: boolean;
}

class StopRun extends Error {}

export function runSeed(options: SimOptions): SeedResult {
  return new Simulation(options).run();
}

class Simulation {
  private readonly rng: Rng;
  private readonly netRng: Rng;
  private readonly plan: FaultPlan;
  private readonly n: number;
  private readonly f: number;
  private readonly queue = new EventQueue<SimEvent>(simLimits.eventsQueuedMax);
  private readonly network: SimNetwork;
  private readonly app = new SimApplication();
  private readonly verifier: CachingVerifier;
  private readonly checker: SafetyChecker;
  private readonly hosts: Host[];
  private readonly honest: ReadonlySet<number>;
  private readonly trace: TraceRing<TraceEntry>;
  /** Milestones only, so a long tail of retransmissions does not hide how the run got there. */
  private readonly milestones: TraceRing<TraceEntry>;
  private readonly faults: Record<string, number> = {};
  private readonly violations: Violation[] = [];
  private readonly clients: ClientRequest[] = [];
  private readonly limits: Partial<ReplicaLimits>;
  private readonly viewsSeen = new Set<number>();
  /** A replica's durable log is compacted once it holds more records than this. */
  private readonly compactAt: number;
  private phase: 'safety' | 'liveness' = 'safety';
  private livenessStartMs = 0;
  private validSubmitted = 0;
  private clientsSubmitted = 0;
  /** Valid submitted requests delivered by livenessQuorum honest replicas. */
  private requestsSatisfied = 0;
  /**
   * Honest replicas that must deliver each valid request. With heartbeat blocks a lagging replica
   * keeps seeing new checkpoints and must catch up, so all of them; without, a replica left behind
   * in a quiet system has nothing to learn from, so f+1 (what a client needs for an answer).
   */
  private readonly livenessQuorum: number;
  private events = 0;

  constructor(private readonly options: SimOptions) {
    assert(options.n >= 4 && options.n <= 64, `n must be in 4..64, got ${options.n}`);
    this.rng = new Rng(options.seed);
    this.trace = new TraceRing<TraceEntry>(options.traceEntries ?? simLimits.traceEntriesMax);
    this.milestones = new TraceRing<TraceEntry>(options.traceEntries ?? simLimits.traceEntriesMax);
    this.n = options.n;
    const planRng = this.rng.fork();
    this.netRng = this.rng.fork();
    const safetyPhaseMs = options.safetyPhaseMs ?? 3000;
    const livenessPhaseMs = options.livenessPhaseMs ?? 30_000;
    this.plan = choosePlan(planRng, {
      n: options.n,
      byzantine: options.byzantine,
      behaviours: options.behaviours,
      safetyPhaseMs,
      livenessPhaseMs,
    });
    this.f = this.plan.f;
    this.network = new SimNetwork(this.n, this.netRng.fork(), this.plan.safetyNetwork);
    const keys = simKeys(this.n);
    this.verifier = new CachingVerifier(keys);
    const byzantineIds = new Set(this.plan.byzantine.map((b) => b.id));
    this.honest = new Set(Array.from({ length: this.n }, (_, i) => i).filter((i) => !byzantineIds.has(i)));
    this.checker = new SafetyChecker(
      this.honest,
      simGenesisHash,
      { chainId: simChainId, validators: keys.map((k) => k.publicKey) },
      this.n,
    );
    this.limits = this.chooseLimits();
    this.compactAt = this.rng.pick([20, 200, 2000]);
    this.livenessQuorum = (this.limits.heartbeatIntervalMs ?? 0) > 0 ? this.honest.size : this.f + 1;
    const adversaryRng = this.rng.fork();
    this.hosts = Array.from({ length: this.n }, (_, id) => {
      const byz = this.plan.byzantine.find((b) => b.id === id);
      const config: ReplicaConfig = {
        chainId: simChainId,
        id: id as ValidatorId,
        n: this.n,
        genesisHash: simGenesisHash,
        signer: simSigner(id),
        verifier: this.verifier,
        limits: this.limits,
        ...(byz === undefined && options.replicaFaults !== undefined
          ? { faults: options.replicaFaults }
          : {}),
      };
      const committedAt = new Map<string, Height>();
      const host: Host = {
        id,
        honest: byz === undefined,
        config,
        replica: null,
        incarnation: 0,
        records: [],
        ledger: [],
        deliveredKeys: new Set(),
        committedAt,
        app: new SimApplication((key) => committedAt.get(requestKeyString(key)) ?? null),
        crashAfterActions: undefined,
        adversary:
          byz === undefined
            ? undefined
            : createAdversary({
                id,
                n: this.n,
                f: this.f,
                chainId: simChainId,
                behaviours: byz.behaviours,
                rng: adversaryRng.fork(),
                app: this.app,
                count: (kind) => this.count(`byzantine:${kind}`),
              }),
      };
      return host;
    });
    for (const host of this.hosts) host.replica = this.newReplica(host);
  }

  /** Small protocol limits so that checkpoints, garbage collection and state transfer happen often. */
  private chooseLimits(): Partial<ReplicaLimits> {
    const checkpointInterval = this.rng.pick([2, 4, 8]);
    return {
      checkpointInterval,
      watermarkWindow: checkpointInterval * this.rng.int(2, 4),
      batchWaitMs: this.rng.pick([0, 5, 20]),
      blockTxsMax: this.rng.pick([1, 2, 4, 8]),
      blockBytesMax: 8192,
      viewChangeTimeoutMs: 300,
      viewChangeTimeoutMsMax: 4800,
      requestTimeoutMs: 600,
      pendingRequestsMax: 1000,
      futureMessagesMax: 1000,
      stateTransferBlocksPerRequestMax: this.rng.pick([2, 8]),
      heartbeatIntervalMs: this.rng.pick([0, 0, 500]),
    };
  }

  private newReplica(host: Host): Replica<SimBlock, SimRequest> {
    const last = host.ledger[host.ledger.length - 1];
    const executed =
      last === undefined
        ? { height: 0 as Height, hash: simGenesisHash }
        : { height: host.ledger.length as Height, hash: blockDigest(last.block) };
    if (host.records.length === 0 && last === undefined) return new Replica(host.config, host.app);
    return new Replica(host.config, host.app, { records: host.records.slice(), executed });
  }

  run(): SeedResult {
    const drawnCount = this.rng.int(8, 30);
    const requestCount = this.options.requests ?? drawnCount;
    const clientRng = this.rng.fork();
    const submitEndMs = this.plan.safetyPhaseMs + 500;
    for (let i = 0; i < requestCount; i++) {
      const roll = clientRng.int(0, 99);
      const payload = roll < 85 ? `op-${i}` : roll < 95 ? `refuse-${i}` : `malformed-${i}`;
      const submitAtMs = clientRng.int(0, submitEndMs);
      const request = { clientId: `client-${i % 3}`, requestId: `req-${i}`, payload };
      this.clients.push({
        request,
        valid: requestVerdict(payload) !== 'malformed',
        submitAtMs,
        submitted: false,
        confirmations: new Set(),
        honestDeliveries: 0,
        done: false,
      });
      this.schedule(submitAtMs, { kind: 'submit', index: i });
    }
    for (const fault of this.plan.schedule) this.schedule(fault.atMs, { kind: 'fault', fault });
    for (const host of this.hosts) {
      if (host.adversary !== undefined)
        this.schedule(this.rng.int(50, 300), { kind: 'adversary', id: host.id });
    }
    this.schedule(this.plan.safetyPhaseMs, { kind: 'liveness-phase' });
    this.schedule(0, { kind: 'tick' });

    const endMs = this.plan.safetyPhaseMs + this.plan.livenessPhaseMs;
    try {
      for (;;) {
        const next = this.queue.peekTime();
        if (next === undefined || next > endMs) break;
        if (this.livenessReached()) break;
        const popped = this.queue.pop();
        assert(popped !== undefined, 'the queue had an event a moment ago');
        this.events++;
        if (this.events > simLimits.eventsPerSeedMax) {
          this.fail({
            kind: 'crash',
            replica: -1,
            height: this.checker.committedHeight(),
            timeMs: this.queue.now,
            detail: `the run exceeded ${simLimits.eventsPerSeedMax} events: a message storm or a livelock`,
          });
        }
        this.handle(popped.item);
      }
      if (this.violations.length === 0) this.checkLivenessAtEnd();
    } catch (error) {
      if (!(error instanceof StopRun)) throw error;
    }
    return this.result();
  }

  private livenessReached(): boolean {
    if (this.phase !== 'liveness') return false;
    if (this.queue.now < this.livenessStartMs + simLimits.livenessPhaseMsMin) return false;
    return this.clientsSubmitted === this.clients.length && this.requestsSatisfied === this.validSubmitted;
  }

  private checkLivenessAtEnd(): void {
    const submitted = this.clients.filter((c) => c.valid && c.submitted).map((c) => c.request);
    const found = checkLiveness(
      this.honest,
      submitted,
      (id) => (this.hosts[id] as Host).deliveredKeys,
      this.livenessQuorum,
      this.queue.now,
      (id) => (this.hosts[id] as Host).ledger.length,
    );
    for (const v of found) {
      const states = [...this.honest]
        .sort((a, b) => a - b)
        .map((id) => {
          const r = this.hosts[id]?.replica;
          return r === null || r === undefined ? `${id}:down` : `${id}:v${r.view}/${r.status}`;
        })
        .join(' ');
      this.violations.push({
        ...v,
        detail: `${v.detail}; ${this.plan.livenessPhaseMs}ms after the faults healed; honest views ${states}`,
      });
    }
    if (found.length > 0) this.mark('liveness violated at the end of the liveness phase');
  }

  private schedule(atMs: number, event: SimEvent): void {
    const ok = this.queue.push(atMs, event);
    if (!ok) {
      assert(event.kind === 'message' || event.kind === 'blocks', `the agenda is full (${event.kind})`);
      this.count('queue-full-drop');
    }
  }

  private count(kind: string): void {
    this.faults[kind] = (this.faults[kind] ?? 0) + 1;
  }

  private note(what: string | (() => string)): void {
    this.trace.add({ timeMs: this.queue.now, what });
  }

  /** A trace entry that is also a milestone: faults, crashes, restarts, views, deliveries. */
  private mark(what: string | (() => string)): void {
    const entry = { timeMs: this.queue.now, what };
    this.trace.add(entry);
    this.milestones.add(entry);
  }

  private fail(violation: Violation): never {
    this.violations.push(violation);
    this.mark(
      () =>
        `VIOLATION ${violation.kind} at replica ${violation.replica} height ${violation.height}: ${violation.detail}`,
    );
    throw new StopRun();
  }

  private handle(event: SimEvent): void {
    const now = this.queue.now;
    switch (event.kind) {
      case 'tick': {
        for (const host of this.hosts) {
          if (host.replica !== null) this.step(host, { kind: 'tick', nowMs: now });
        }
        this.schedule(now + simLimits.tickMs, { kind: 'tick' });
        return;
      }
      case 'message': {
        const host = this.hosts[event.to] as Host;
        if (host.replica === null) {
          this.count('crashed-drop');
          return;
        }
        this.note(() => `${event.from} -> ${event.to}  ${describeMessage(event.message)}`);
        host.adversary?.observe(event.message, now);
        this.step(host, { kind: 'message', from: event.from as ValidatorId, message: event.message });
        return;
      }
      case 'blocks': {
        const host = this.hosts[event.to] as Host;
        if (host.replica === null) {
          this.count('crashed-drop');
          return;
        }
        this.note(
          () =>
            `${event.from} -> ${event.to}  blocks ${event.blocks[0]?.certificate.height ?? '-'}..${event.blocks[event.blocks.length - 1]?.certificate.height ?? '-'}`,
        );
        this.step(host, { kind: 'blocks', from: event.from as ValidatorId, blocks: event.blocks });
        return;
      }
      case 'local': {
        const host = this.hosts[event.to] as Host;
        // An answer meant for an incarnation that crashed is lost with it.
        if (host.replica === null || host.incarnation !== event.incarnation) return;
        this.step(host, event.event);
        return;
      }
      case 'request': {
        const host = this.hosts[event.to] as Host;
        if (host.replica === null) return;
        this.step(host, { kind: 'request', request: event.request });
        return;
      }
      case 'submit':
      case 'retry':
        this.submit(event.index, event.kind === 'retry');
        return;
      case 'fault':
        this.applyFault(event.fault);
        return;
      case 'adversary': {
        const host = this.hosts[event.id] as Host;
        if (host.replica !== null && host.adversary !== undefined) {
          this.perform(host, host.adversary.onTimer(host.replica, now));
        }
        this.schedule(now + this.rng.int(100, 400), { kind: 'adversary', id: event.id });
        return;
      }
      case 'liveness-phase':
        this.startLivenessPhase();
        return;
    }
  }

  /** A client sends its request to every replica (the nodes gossip requests to each other). */
  private submit(index: number, retry: boolean): void {
    const client = this.clients[index];
    assert(client !== undefined, `no client request ${index}`);
    if (client.done) return;
    if (!client.submitted) {
      client.submitted = true;
      this.clientsSubmitted++;
      if (client.valid) this.validSubmitted++;
      // Deliveries can only follow a submission, so none was counted yet.
      assert(client.honestDeliveries === 0, 'a request was delivered before it was submitted');
    }
    this.note(
      () =>
        `client ${retry ? 'resends' : 'submits'} ${client.request.clientId}/${client.request.requestId} (${client.request.payload})`,
    );
    for (let to = 0; to < this.n; to++) {
      const route = this.network.routeFromClient(to);
      if (route.dropped !== undefined) this.count(route.dropped);
      for (const delay of route.delaysMs) {
        this.schedule(this.queue.now + delay, { kind: 'request', to, request: client.request });
      }
    }
    if (client.valid) this.schedule(this.queue.now + simLimits.clientRetryMs, { kind: 'retry', index });
    else client.done = true;
  }

  private applyFault(fault: ScheduledFault): void {
    this.count(fault.kind);
    this.mark(() => `FAULT ${describeFault(fault)}`);
    switch (fault.kind) {
      case 'crash': {
        const host = this.hosts[fault.replica] as Host;
        if (host.replica === null) return;
        // Half the crashes strike in the middle of the replica's next step, between two actions.
        if (this.rng.chance(0.5)) host.crashAfterActions = this.rng.int(0, 4);
        else this.crash(host);
        return;
      }
      case 'restart':
        this.restart(this.hosts[fault.replica] as Host);
        return;
      case 'partition':
        this.network.partition(fault.isolated);
        return;
      case 'heal':
        this.network.heal();
        return;
      case 'slow':
        this.network.setSlow(fault.replica, fault.extraMs);
        return;
      case 'unslow':
        this.network.clearSlow();
        return;
      case 'filter':
        this.network.setFilter(fault.messageKind, fault.to, fault.probability);
        return;
      case 'unfilter':
        this.network.clearFilter();
        return;
    }
  }

  private crash(host: Host): void {
    host.replica = null;
    host.crashAfterActions = undefined;
    host.incarnation++;
    // Built now, not lazily: the host changes after this point.
    this.mark(
      `replica ${host.id} CRASHED (keeps ${host.records.length} records, ledger height ${host.ledger.length})`,
    );
  }

  private restart(host: Host): void {
    if (host.replica !== null) {
      host.crashAfterActions = undefined;
      return;
    }
    host.incarnation++;
    try {
      host.replica = this.newReplica(host);
    } catch (error) {
      this.fail({
        kind: 'crash',
        replica: host.id,
        height: host.ledger.length,
        timeMs: this.queue.now,
        detail: `restart from ${host.records.length} persisted records threw: ${errorText(error)}`,
      });
    }
    this.mark(
      `replica ${host.id} RESTARTED at view ${host.replica?.view} from ${host.records.length} records, ledger height ${host.ledger.length}`,
    );
  }

  private startLivenessPhase(): void {
    this.phase = 'liveness';
    this.livenessStartMs = this.queue.now;
    this.mark('LIVENESS PHASE: network calm, partitions healed, crashed replicas restarted');
    this.network.setConditions(calmNetwork);
    this.network.heal();
    this.network.clearSlow();
    this.network.clearFilter();
    for (const host of this.hosts) {
      host.crashAfterActions = undefined;
      if (host.replica === null) {
        this.count('restart');
        this.restart(host);
      }
    }
  }

  /** Feeds one event to a live replica and performs its actions in order. */
  private step(host: Host, event: Event<SimBlock, SimRequest>): void {
    const replica = host.replica;
    assert(replica !== null, 'only live replicas step');
    let actions: Action<SimBlock>[];
    const viewBefore = replica.view;
    const statusBefore = replica.status;
    try {
      actions = replica.step(event);
    } catch (error) {
      this.fail({
        kind: 'crash',
        replica: host.id,
        height: host.ledger.length,
        timeMs: this.queue.now,
        detail: `replica.step(${event.kind}) threw: ${errorText(error)}`,
      });
    }
    if (replica.status === 'view-change' && (statusBefore !== 'view-change' || replica.view !== viewBefore)) {
      this.mark(`replica ${host.id} starts a view change to v=${replica.view}`);
    }
    if (host.adversary !== undefined) actions = host.adversary.transform(actions, replica, this.queue.now);
    this.perform(host, actions);
  }

  private perform(host: Host, actions: readonly Action<SimBlock>[]): void {
    const incarnation = host.incarnation;
    for (const action of actions) {
      if (host.crashAfterActions !== undefined) {
        if (host.crashAfterActions === 0) {
          this.crash(host);
          return;
        }
        host.crashAfterActions--;
      }
      if (host.incarnation !== incarnation) return;
      this.performOne(host, action);
    }
  }

  private performOne(host: Host, action: Action<SimBlock>): void {
    const now = this.queue.now;
    switch (action.kind) {
      case 'persist':
        for (const record of action.records) host.records.push(record);
        // Compaction by the core's compactRecords (the node prunes by range instead, keeping the
        // newest view record); some seeds compact early and often, so restarts are exercised from
        // compacted logs as well as from full ones.
        if (host.records.length > this.compactAt) {
          host.records = compactRecords(host.records);
          assert(host.records.length <= simLimits.recordsPerReplicaMax, 'compaction keeps the log bounded');
        }
        return;
      case 'send':
        this.send(host.id, action.to, action.message);
        return;
      case 'broadcast':
        for (let to = 0; to < this.n; to++) if (to !== host.id) this.send(host.id, to, action.message);
        return;
      case 'deliver':
        this.deliver(host, action.height, action.block, action.certificate);
        return;
      case 'validate': {
        // The application answers after a random delay: its external check takes time.
        const reason = this.validate(action.block);
        const event: Event<SimBlock, SimRequest> =
          reason === null
            ? {
                kind: 'validation-result',
                view: action.view,
                seq: action.seq,
                digest: action.digest,
                valid: true,
              }
            : {
                kind: 'validation-result',
                view: action.view,
                seq: action.seq,
                digest: action.digest,
                valid: false,
                reason,
              };
        this.schedule(now + this.rng.int(0, 30), {
          kind: 'local',
          to: host.id,
          incarnation: host.incarnation,
          event,
        });
        return;
      }
      case 'request-blocks':
        this.serveBlocks(host.id, action.to, action.fromHeight, action.toHeight);
        return;
      case 'reply': {
        const index = Number(action.requestId.slice('req-'.length));
        const client = this.clients[index];
        if (client === undefined || client.request.clientId !== action.clientId) return;
        if (action.result.status === 'committed' || action.result.status === 'duplicate') {
          client.confirmations.add(host.id);
          if (client.confirmations.size >= this.f + 1) client.done = true;
        }
        return;
      }
      case 'view-changed':
        if (host.honest && !this.viewsSeen.has(action.view)) {
          this.viewsSeen.add(action.view);
          this.count('view-change');
        }
        this.mark(() => `replica ${host.id} enters view ${action.view} (primary ${action.primary})`);
        return;
    }
  }

  private validate(block: SimBlock): string | null {
    try {
      return checkSimBlock(block);
    } catch (error) {
      return `block does not parse: ${errorText(error)}`;
    }
  }

  private send(from: number, to: number, message: ConsensusMessage<SimBlock>): void {
    assert(to >= 0 && to < this.n, `send to unknown replica ${to}`);
    const route = this.network.route(from, to, message.kind);
    if (route.dropped !== undefined) {
      this.count(route.dropped === 'loss' ? 'loss' : `${route.dropped}-drop`);
      return;
    }
    if (route.duplicated) this.count('duplicate');
    for (const delay of route.delaysMs) {
      this.schedule(this.queue.now + delay, { kind: 'message', to, from, message });
    }
  }

  /** State transfer: the peer answers from its durable ledger, if it is up and reachable. */
  private serveBlocks(requester: number, peer: number, fromHeight: number, toHeight: number): void {
    const server = this.hosts[peer];
    if (server === undefined || server.replica === null || peer === requester) return;
    const max = this.limits.stateTransferBlocksPerRequestMax ?? 1;
    const last = Math.min(toHeight, fromHeight + max - 1, server.ledger.length);
    if (last < fromHeight || fromHeight < 1) return;
    let blocks = server.ledger.slice(fromHeight - 1, last);
    if (server.adversary !== undefined) {
      const answer = server.adversary.tamperBlocks(blocks);
      if (answer === null) return;
      blocks = answer.slice();
    }
    const route = this.network.route(peer, requester);
    if (route.dropped !== undefined) {
      this.count(route.dropped === 'partition' ? 'partition-drop' : 'loss');
      return;
    }
    this.count('state-transfer');
    for (const delay of route.delaysMs) {
      this.schedule(this.queue.now + delay, { kind: 'blocks', to: requester, from: peer, blocks });
    }
  }

  private deliver(
    host: Host,
    height: number,
    block: SimBlock,
    certificate: CertifiedBlock<SimBlock>['certificate'],
  ): void {
    this.mark(
      () =>
        `replica ${host.id} DELIVERS h=${height} d=${shortHash(safeDigest(block))} txs=${block?.entries?.length} cert v=${certificate.view} sigs=${certificate.signatures.length}`,
    );
    const found = this.checker.onDeliver(host.id, height, block, certificate, this.queue.now);
    if (found.length > 0) {
      for (const v of found.slice(1)) this.violations.push(v);
      this.fail(found[0] as Violation);
    }
    if (height !== host.ledger.length + 1) return;
    host.ledger.push({ block, certificate });
    for (const entry of block.entries) {
      const key = requestKeyString(entry);
      if (host.deliveredKeys.has(key)) continue;
      host.deliveredKeys.add(key);
      host.committedAt.set(key, height as Height);
      const client = this.clientFor(entry.requestId, entry.clientId);
      if (host.honest && client?.valid === true && client.request.payload === entry.payload) {
        client.honestDeliveries++;
        if (client.honestDeliveries === this.livenessQuorum) this.requestsSatisfied++;
      }
    }
    // The application applied the block durably; it tells the replica at once.
    const event: Event<SimBlock, SimRequest> = {
      kind: 'block-executed',
      height: height as Height,
      hash: blockDigest(block),
    };
    this.schedule(this.queue.now, { kind: 'local', to: host.id, incarnation: host.incarnation, event });
  }

  private clientFor(requestId: string, clientId: string): ClientRequest | undefined {
    if (!requestId.startsWith('req-')) return undefined;
    const client = this.clients[Number(requestId.slice(4))];
    return client?.request.clientId === clientId ? client : undefined;
  }

  private result(): SeedResult {
    const failed = this.violations.length > 0 || this.options.keepTrace === true;
    let highestView = 0;
    for (const id of this.honest) highestView = Math.max(highestView, this.hosts[id]?.replica?.view ?? 0);
    return {
      seed: this.options.seed,
      n: this.n,
      f: this.f,
      byzantine: this.plan.byzantine.map((b) => b.id),
      blocksCommitted: this.checker.committedHeight(),
      viewChanges: this.viewsSeen.size,
      highestView,
      faults: { ...this.faults },
      requestsSubmitted: this.clients.filter((c) => c.submitted).length,
      violations: this.violations.slice(),
      events: this.events,
      virtualMs: this.queue.now,
      signatureChecks: this.verifier.verifications,
      plan: failed ? describePlan(this.plan).concat(describeLimits(this.limits)) : [],
      milestones: failed ? this.milestones.snapshot().map(formatEntry) : [],
      trace: failed ? this.trace.snapshot().map(formatEntry) : [],
    };
  }
}

function describeLimits(limits: Partial<ReplicaLimits>): string[] {
  return [
    `limits: ${Object.entries(limits)
      .map(([k, v]) => `${k}=${v}`)
      .join(' ')}`,
  ];
}

function safeDigest(block: SimBlock): string {
  try {
    return blockDigest(block);
  } catch {
    return 'unhashable';
  }
}

function errorText(error: unknown): string {
  if (error instanceof Error) return `${error.name}: ${error.message}\n${error.stack ?? ''}`;
  return String(error);
}

function formatEntry(e: TraceEntry): string {
  return `${formatTime(e.timeMs)}  ${typeof e.what === 'string' ? e.what : e.what()}`;
}
