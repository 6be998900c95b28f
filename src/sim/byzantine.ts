/**
 * Byzantine replicas. A Byzantine replica runs the real Replica code with its own real key, and an
 * Adversary sits between that replica and the network: it rewrites, splits, drops or adds
 * messages. It can sign anything with its OWN key (so its forgeries carry valid signatures where a
 * real attacker's would), but never with another validator's key: claiming to be someone else only
 * yields signatures that do not verify.
 *
 * Behaviours (chosen per replica by the fault plan, see faults.ts):
 *  - equivocate: as primary, different blocks to different backups for the same sequence number;
 *  - conflicting-votes: prepares and commits for different digests to different peers;
 *  - bad-signatures: garbage signatures, or another validator's id on its own signature;
 *  - silent: sends nothing and serves no state transfer;
 *  - replay: records messages and resends them much later (its own and others');
 *  - bogus-view-change: view-changes with forged prepared certificates and checkpoint proofs, and
 *    new-views whose O set does not follow from their V set;
 *  - invalid-block: as primary, blocks the application rejects or whose digest does not match;
 *    as a state-transfer server, blocks that do not match their certificates.
 */

import { signedPart } from '../consensus/messages.ts';
import type {
  Action,
  CertifiedBlock,
  Checkpoint,
  ConsensusMessage,
  NewView,
  PrePrepare,
  Prepare,
  ReplicaState,
  ViewChange,
} from '../consensus/types.ts';
import { simReplayBufferMax } from '../constants.ts';
import { sign } from '../crypto/ed25519.ts';
import { sha256Hex } from '../crypto/hash.ts';
import type { BlockHash, Height, SignatureHex, ValidatorId, View } from '../encoding/brand.ts';
import { blockDigest, type SimApplication, type SimBlock, type SimEntry } from './app.ts';
import type { ByzantineBehaviour } from './faults.ts';
import { simKey } from './keys.ts';
import type { Rng } from './rng.ts';

type Message = ConsensusMessage<SimBlock>;

export interface AdversaryContext {
  readonly id: number;
  readonly n: number;
  readonly f: number;
  readonly chainId: string;
  readonly behaviours: readonly ByzantineBehaviour[];
  readonly rng: Rng;
  readonly app: SimApplication;
  /** Counts one injected fault of a behaviour (for the run summary). */
  readonly count: (behaviour: ByzantineBehaviour) => void;
}

export interface Adversary {
  /** Sees every message that reaches the Byzantine replica (material for replays and forgeries). */
  observe(message: Message, nowMs: number): void;
  /** Rewrites the real replica's actions before the driver performs them. */
  transform(actions: readonly Action<SimBlock>[], replica: ReplicaState, nowMs: number): Action<SimBlock>[];
  /** Extra messages sent on the adversary's own schedule (replays, bogus view-changes). */
  onTimer(replica: ReplicaState, nowMs: number): Action<SimBlock>[];
  /** What this replica answers to a state-transfer request; null sends nothing. */
  tamperBlocks(blocks: readonly CertifiedBlock<SimBlock>[]): readonly CertifiedBlock<SimBlock>[] | null;
}

/** View-changes of others kept to build bogus new-views from. */
const viewChangesKeptMax = 64;

export function createAdversary(context: AdversaryContext): Adversary {
  return new ByzantineAdversary(context);
}

class ByzantineAdversary implements Adversary {
  private readonly has: (b: ByzantineBehaviour) => boolean;
  private readonly replayBuffer: Message[] = [];
  private readonly viewChanges: ViewChange<SimBlock>[] = [];
  /** The alternative pre-prepare per (view, seq), so an equivocation stays consistent per backup. */
  private readonly alternatives = new Map<string, PrePrepare<SimBlock>>();
  private readonly alternativesMax = 256;
  /** The invalid-block attack chosen per (view, seq). */
  private readonly invalidPlans = new Map<
    string,
    'none' | 'signed-invalid' | 'mismatch-invalid' | 'mismatch-valid'
  >();
  private readonly key: ReturnType<typeof simKey>;

  constructor(private readonly ctx: AdversaryContext) {
    const set = new Set(ctx.behaviours);
    this.has = (b) => set.has(b);
    this.key = simKey(ctx.id);
  }

  observe(message: Message): void {
    if (this.has('replay')) this.remember(message);
    if (message.kind === 'view-change' && this.has('bogus-view-change')) {
      this.viewChanges.push(message);
      if (this.viewChanges.length > viewChangesKeptMax) this.viewChanges.shift();
    }
  }

  transform(actions: readonly Action<SimBlock>[], replica: ReplicaState): Action<SimBlock>[] {
    const out: Action<SimBlock>[] = [];
    for (const action of actions) {
      if (action.kind !== 'send' && action.kind !== 'broadcast') {
        if (action.kind === 'request-blocks' && this.has('silent')) continue;
        out.push(action);
        continue;
      }
      if (this.has('silent')) {
        this.ctx.count('silent');
        continue;
      }
      if (this.has('replay')) this.remember(action.message);
      const targets: readonly ValidatorId[] = action.kind === 'send' ? [action.to] : this.others();
      for (const to of targets) {
        for (const message of this.mutate(action.message, to, replica))
          out.push({ kind: 'send', to, message });
      }
    }
    return out;
  }

  onTimer(replica: ReplicaState): Action<SimBlock>[] {
    if (this.has('silent')) return [];
    const rng = this.ctx.rng;
    const out: Action<SimBlock>[] = [];
    if (this.has('replay') && this.replayBuffer.length > 0) {
      for (let i = rng.int(1, 4); i > 0; i--) {
        const message = rng.pick(this.replayBuffer);
        out.push({ kind: 'send', to: rng.pick(this.others()), message });
        this.ctx.count('replay');
      }
    }
    if (this.has('bogus-view-change') && rng.chance(0.3)) {
      const vc = this.bogusViewChange(replica);
      for (const to of this.others()) out.push({ kind: 'send', to, message: vc });
      this.ctx.count('bogus-view-change');
      const nv = this.bogusNewView(replica);
      if (nv !== undefined) {
        for (const to of this.others()) out.push({ kind: 'send', to, message: nv });
      }
    }
    if (this.has('bad-signatures') && rng.chance(0.3)) {
      // A checkpoint for a height nobody reached, claiming to come from an honest validator.
      const seq = (replica.lastDelivered + rng.int(1, 20)) as Height;
      const forged: Checkpoint = {
        kind: 'checkpoint',
        seq,
        digest: this.randomDigest(),
        replica: this.otherId(),
        signature: this.garbageSignature(),
      };
      out.push({ kind: 'send', to: rng.pick(this.others()), message: forged });
      this.ctx.count('bad-signatures');
    }
    return out;
  }

  tamperBlocks(blocks: readonly CertifiedBlock<SimBlock>[]): readonly CertifiedBlock<SimBlock>[] | null {
    if (this.has('silent')) return null;
    if (!this.has('invalid-block') || blocks.length === 0 || !this.ctx.rng.chance(0.5)) return blocks;
    this.ctx.count('invalid-block');
    const index = this.ctx.rng.int(0, blocks.length - 1);
    return blocks.map((b, i) =>
      i === index ? { block: this.invalidBlock(b.block), certificate: b.certificate } : b,
    );
  }

  /** The message (or messages) recipient `to` gets instead of `message`. */
  private mutate(message: Message, to: ValidatorId, replica: ReplicaState): Message[] {
    const rng = this.ctx.rng;
    if (message.kind === 'pre-prepare' && message.replica === this.ctx.id) {
      if (this.has('invalid-block')) {
        const forged = this.invalidPrePrepare(message, to);
        if (forged !== message) {
          this.ctx.count('invalid-block');
          return [forged];
        }
      }
      if (this.has('equivocate')) {
        const alt = this.alternative(message);
        if ((to + message.seq) % 2 === 0) {
          this.ctx.count('equivocate');
          return [alt];
        }
        // Some backups get both versions, in either order.
        if (rng.chance(0.2)) {
          this.ctx.count('equivocate');
          return rng.chance(0.5) ? [message, alt] : [alt, message];
        }
      }
    }
    if ((message.kind === 'prepare' || message.kind === 'commit') && this.has('conflicting-votes')) {
      if (rng.chance(0.5)) {
        this.ctx.count('conflicting-votes');
        const alt = this.alternatives.get(`${message.view}:${message.seq}`);
        const digest = alt !== undefined && alt.digest !== message.digest ? alt.digest : this.randomDigest();
        return [this.resign({ ...message, digest })];
      }
    }
    if (message.kind === 'new-view' && this.has('bogus-view-change') && rng.chance(0.7)) {
      this.ctx.count('bogus-view-change');
      return [this.wrongNewView(message)];
    }
    if (message.kind === 'view-change' && this.has('bogus-view-change') && rng.chance(0.5)) {
      this.ctx.count('bogus-view-change');
      return [this.forgePreparedSet(message, replica)];
    }
    if (this.has('bad-signatures') && rng.chance(0.3)) {
      this.ctx.count('bad-signatures');
      return rng.chance(0.5)
        ? [{ ...message, signature: this.garbageSignature() }]
        : [{ ...message, replica: this.otherId() } as Message];
    }
    return [message];
  }

  private alternative(pp: PrePrepare<SimBlock>): PrePrepare<SimBlock> {
    const key = `${pp.view}:${pp.seq}`;
    const known = this.alternatives.get(key);
    if (known !== undefined) return known;
    // A different but valid block: the same requests minus the last one, a shifted timestamp.
    const entries = pp.block.entries.slice(0, Math.max(0, pp.block.entries.length - 1));
    const block: SimBlock = { ...pp.block, entries, timeMs: pp.block.timeMs + 1 + this.ctx.rng.int(0, 50) };
    const alt = this.resign({ ...pp, block, digest: blockDigest(block) });
    if (this.alternatives.size >= this.alternativesMax) this.alternatives.clear();
    this.alternatives.set(key, alt);
    return alt;
  }

  /**
   * What backup `to` gets instead of the primary's pre-prepare. The plan is fixed per (view, seq)
   * so that backups see a consistent attack: an invalid block properly signed; the real digest
   * carrying an invalid block; or the real digest carrying another, valid block for half the
   * backups (only a replica that skips the digest check would prepare that one).
   */
  private invalidPrePrepare(pp: PrePrepare<SimBlock>, to: number): PrePrepare<SimBlock> {
    const key = `${pp.view}:${pp.seq}`;
    let plan = this.invalidPlans.get(key);
    if (plan === undefined) {
      plan = this.ctx.rng.pick(['none', 'signed-invalid', 'mismatch-invalid', 'mismatch-valid'] as const);
      if (this.invalidPlans.size >= this.alternativesMax) this.invalidPlans.clear();
      this.invalidPlans.set(key, plan);
    }
    switch (plan) {
      case 'none':
        return pp;
      case 'signed-invalid': {
        const bad = this.invalidBlock(pp.block);
        return this.resign({ ...pp, block: bad, digest: blockDigest(bad) });
      }
      case 'mismatch-invalid':
        return { ...pp, block: this.invalidBlock(pp.block) };
      case 'mismatch-valid':
        return (to + pp.seq) % 2 === 0 ? { ...pp, block: this.alternative(pp).block } : pp;
    }
  }

  /** A block the application check rejects (or that merely differs, for digest mismatches). */
  private invalidBlock(block: SimBlock): SimBlock {
    const rng = this.ctx.rng;
    const first = block.entries[0];
    switch (rng.int(0, 2)) {
      case 0: {
        const forged: SimEntry = {
          clientId: 'mallory',
          requestId: `forged-${rng.int(0, 1_000_000)}`,
          payload: 'malformed-forged',
          outcome: 'accepted',
        };
        return { ...block, entries: [...block.entries, forged] };
      }
      case 1:
        if (first !== undefined) {
          const flipped: SimEntry = {
            ...first,
            outcome: first.outcome === 'accepted' ? 'refused' : 'accepted',
          };
          return { ...block, entries: [flipped, ...block.entries.slice(1)] };
        }
        return {
          ...block,
          entries: [{ clientId: 'mallory', requestId: 'x', payload: 'refuse-x', outcome: 'accepted' }],
        };
      default:
        if (first !== undefined) return { ...block, entries: [first, ...block.entries] };
        return {
          ...block,
          entries: [{ clientId: 'mallory', requestId: 'y', payload: 'op-y', outcome: 'refused' }],
        };
    }
  }

  /** A view-change whose P set claims a block prepared that never was, with forged prepares. */
  private forgePreparedSet(vc: ViewChange<SimBlock>, replica: ReplicaState): ViewChange<SimBlock> {
    const rng = this.ctx.rng;
    const seq = (Math.max(vc.checkpoint.seq, replica.stableCheckpoint.seq) + rng.int(1, 3)) as Height;
    const view = Math.max(0, vc.newView - 1) as View;
    const block: SimBlock = {
      height: seq,
      parent: this.randomDigest(),
      view,
      proposer: (view % this.ctx.n) as ValidatorId,
      timeMs: 0,
      entries: [
        {
          clientId: 'mallory',
          requestId: `vc-${rng.int(0, 1_000_000)}`,
          payload: 'op-forged',
          outcome: 'accepted',
        },
      ],
    };
    const digest = blockDigest(block);
    const prePrepare: PrePrepare<SimBlock> = {
      kind: 'pre-prepare',
      view,
      seq,
      digest,
      block,
      replica: (view % this.ctx.n) as ValidatorId,
      signature: this.garbageSignature(),
    };
    const prepares: Prepare[] = [];
    for (let i = 0; i < 2 * this.ctx.f; i++) {
      const claimed = i === 0 ? (this.ctx.id as ValidatorId) : this.otherId();
      const p = {
        kind: 'prepare' as const,
        view,
        seq,
        digest,
        replica: claimed,
        signature: '' as SignatureHex,
      };
      // Its own prepare is properly signed; the others it can only fake.
      prepares.push(claimed === this.ctx.id ? this.resign(p) : { ...p, signature: this.garbageSignature() });
    }
    const forgedCheckpoint = rng.chance(0.3);
    const checkpoint = forgedCheckpoint
      ? {
          seq: (vc.checkpoint.seq + this.ctx.rng.int(1, 8)) as Height,
          digest: this.randomDigest(),
          proof: [],
        }
      : vc.checkpoint;
    return this.resign({ ...vc, checkpoint, prepared: [...vc.prepared, { prePrepare, prepares }] });
  }

  private bogusViewChange(replica: ReplicaState): ViewChange<SimBlock> {
    const base: ViewChange<SimBlock> = {
      kind: 'view-change',
      newView: (replica.view + this.ctx.rng.int(1, 2)) as View,
      checkpoint: { seq: replica.stableCheckpoint.seq, digest: replica.stableCheckpoint.digest, proof: [] },
      prepared: [],
      replica: this.ctx.id as ValidatorId,
      signature: '' as SignatureHex,
    };
    return this.forgePreparedSet(base, replica);
  }

  /** A new-view for a view this replica leads, built from view-changes it saw, with an O set of its choosing. */
  private bogusNewView(replica: ReplicaState): NewView<SimBlock> | undefined {
    const n = this.ctx.n;
    const byView = new Map<number, ViewChange<SimBlock>[]>();
    for (const vc of this.viewChanges) {
      if (vc.newView % n !== this.ctx.id || vc.newView <= replica.view - 1) continue;
      const list = byView.get(vc.newView) ?? [];
      if (!list.some((x) => x.replica === vc.replica)) list.push(vc);
      byView.set(vc.newView, list);
    }
    for (const [view, list] of byView) {
      if (list.length < 2 * this.ctx.f) continue;
      const seq = (replica.stableCheckpoint.seq + 1) as Height;
      const block: SimBlock = {
        height: seq,
        parent: replica.stableCheckpoint.digest,
        view: view as View,
        proposer: this.ctx.id as ValidatorId,
        timeMs: 0,
        entries: [],
      };
      const pp = this.resign({
        kind: 'pre-prepare' as const,
        view: view as View,
        seq,
        digest: blockDigest(block),
        block,
        replica: this.ctx.id as ValidatorId,
        signature: '' as SignatureHex,
      });
      return this.resign({
        kind: 'new-view',
        view: view as View,
        viewChanges: list.slice(0, 2 * this.ctx.f + 1),
        prePrepares: [pp],
        replica: this.ctx.id as ValidatorId,
        signature: '' as SignatureHex,
      });
    }
    return undefined;
  }

  /** The replica's real new-view with its O set changed: a block swapped, dropped or added. */
  private wrongNewView(nv: NewView<SimBlock>): NewView<SimBlock> {
    const rng = this.ctx.rng;
    const o = nv.prePrepares.slice();
    const i = o.length > 0 ? rng.int(0, o.length - 1) : -1;
    const target = o[i];
    if (target !== undefined && rng.chance(0.6)) {
      const block: SimBlock = {
        ...target.block,
        timeMs: target.block.timeMs + 7,
        entries: target.block.entries.slice(1),
      };
      o[i] = this.resign({ ...target, block, digest: blockDigest(block) });
    } else if (target !== undefined && rng.chance(0.5)) {
      o.splice(i, 1);
    } else {
      const last = o[o.length - 1];
      const seq = ((last?.seq ?? nv.viewChanges[0]?.checkpoint.seq ?? 0) + 1) as Height;
      const block: SimBlock = {
        height: seq,
        parent: last?.digest ?? this.randomDigest(),
        view: nv.view,
        proposer: this.ctx.id as ValidatorId,
        timeMs: 1,
        entries: [],
      };
      o.push(
        this.resign({
          kind: 'pre-prepare',
          view: nv.view,
          seq,
          digest: blockDigest(block),
          block,
          replica: this.ctx.id as ValidatorId,
          signature: '' as SignatureHex,
        }),
      );
    }
    return this.resign({ ...nv, prePrepares: o });
  }

  /** Signs a message with this replica's own key, whatever it claims. */
  private resign<M extends Message>(message: M): M {
    const { domain, payload } = signedPart(this.ctx.chainId, message);
    return { ...message, signature: sign(domain, payload, this.key.privateKey) };
  }

  private remember(message: Message): void {
    this.replayBuffer.push(message);
    if (this.replayBuffer.length > simReplayBufferMax)
      this.replayBuffer.splice(0, this.replayBuffer.length - simReplayBufferMax);
  }

  private others(): ValidatorId[] {
    const out: ValidatorId[] = [];
    for (let i = 0; i < this.ctx.n; i++) if (i !== this.ctx.id) out.push(i as ValidatorId);
    return out;
  }

  private otherId(): ValidatorId {
    return this.ctx.rng.pick(this.others());
  }

  private randomDigest(): BlockHash {
    return sha256Hex(`forged-${this.ctx.rng.nextU32()}-${this.ctx.rng.nextU32()}`) as string as BlockHash;
  }

  private garbageSignature(): SignatureHex {
    // Well-formed hex of the right length: it passes syntax checks and must fail verification.
    const digest = sha256Hex(`garbage-${this.ctx.rng.nextU32()}`);
    return `${digest}${digest}` as SignatureHex;
  }
}
