/**
 * Test support for the consensus core (unit tests, transcripts, the benchmark): deterministic
 * Ed25519 keys, a tiny application whose blocks are plain objects, and an in-memory cluster that
 * routes the actions of n real replicas in FIFO order. Not used by the node.
 */
import { createPrivateKey, createPublicKey, type KeyObject } from 'node:crypto';
import type { DomainTag } from '../crypto/domains.ts';
import { sign, verify } from '../crypto/ed25519.ts';
import { canonicalHash } from '../crypto/hash.ts';
import type { BlockHash, Height, SignatureHex, ValidatorId, View } from '../encoding/brand.ts';
import { assert } from '../errors.ts';
import { verifyCommitCertificate } from './certificate.ts';
import { describeMessage, signedPart } from './messages.ts';
import { Replica } from './replica.ts';
import type {
  Action,
  Application,
  BuildInput,
  CertifiedBlock,
  CommitCertificate,
  ConsensusMessage,
  Event,
  PersistRecord,
  ReplicaConfig,
  ReplicaLimits,
  RequestKey,
  Signer,
  Verifier,
} from './types.ts';

/** PKCS#8 DER prefix of an Ed25519 private key; the 32-byte seed follows it. */
const PKCS8_PREFIX = Buffer.from('302e020100300506032b657004220420', 'hex');

/** A fixed key pair from a small integer seed, so transcripts are byte-for-byte reproducible. */
export function deterministicKey(seed: number): { privateKey: KeyObject; publicKey: KeyObject } {
  const raw = Buffer.alloc(32, 0);
  raw.writeUInt32BE(seed >>> 0, 28);
  raw[0] = 0xcc;
  const privateKey = createPrivateKey({
    key: Buffer.concat([PKCS8_PREFIX, raw]),
    format: 'der',
    type: 'pkcs8',
  });
  return { privateKey, publicKey: createPublicKey(privateKey) };
}

export interface TestRequest {
  readonly clientId: string;
  readonly requestId: string;
  readonly payload: string;
}

export interface TestBlock {
  readonly height: number;
  readonly parent: string;
  readonly view: number;
  readonly proposer: number;
  readonly timeMs: number;
  readonly requests: readonly TestRequest[];
}

export const testGenesisHash = canonicalHash({ genesis: 'consensus-testkit' }) as string as BlockHash;

const digestCache = new WeakMap<TestBlock, BlockHash>();

/** Blocks whose digest covers the whole block; a request with payload "bad" makes a block invalid. */
export class TestApp implements Application<TestBlock, TestRequest> {
  /** The replica's own committed chain, when the app answers duplicates of old requests. */
  private readonly chain: readonly CertifiedBlock<TestBlock>[] | undefined;

  constructor(chain?: readonly CertifiedBlock<TestBlock>[]) {
    this.chain = chain;
  }

  /** Request key -> height, extended as the chain grows (a real node asks its transaction index). */
  private readonly index = new Map<string, Height>();
  private indexed = 0;

  findCommitted(key: RequestKey): Height | null {
    if (this.chain === undefined) return null;
    for (; this.indexed < this.chain.length; this.indexed++) {
      const { block } = this.chain[this.indexed]!;
      for (const r of block.requests) this.index.set(`${r.clientId}/${r.requestId}`, block.height as Height);
    }
    return this.index.get(`${key.clientId}/${key.requestId}`) ?? null;
  }

  digest(block: TestBlock): BlockHash {
    // Blocks are immutable, so a digest computed once stays right (a real app caches it the same way).
    let digest = digestCache.get(block);
    if (digest === undefined) {
      digest = canonicalHash(block) as string as BlockHash;
      digestCache.set(block, digest);
    }
    return digest;
  }
  parent(block: TestBlock): BlockHash {
    return block.parent as BlockHash;
  }
  height(block: TestBlock): Height {
    return block.height as Height;
  }
  build(input: BuildInput<TestRequest>): TestBlock {
    return {
      height: input.height,
      parent: input.parent,
      view: input.view,
      proposer: input.proposer,
      timeMs: input.nowMs,
      requests: [...input.requests],
    };
  }
  requestKeys(block: TestBlock): readonly RequestKey[] {
    return block.requests.map((r) => ({ clientId: r.clientId, requestId: r.requestId }));
  }
  requestKey(request: TestRequest): RequestKey {
    return { clientId: request.clientId, requestId: request.requestId };
  }
  requestBytes(request: TestRequest): number {
    return 64 + request.payload.length;
  }
  checkRequest(request: TestRequest): string | null {
    return request.payload.length > 10_000 ? 'payload too long' : null;
  }
  checkBody(): string | null {
    return null;
  }
  /** The external validity check the cluster answers validate actions with. */
  validate(block: TestBlock): string | null {
    return block.requests.some((r) => r.payload === 'bad') ? 'block contains a request marked bad' : null;
  }
}

export interface Keyring {
  readonly keys: readonly { privateKey: KeyObject; publicKey: KeyObject }[];
  signer(id: number): Signer;
  readonly verifier: Verifier;
}

export function keyring(n: number, seedBase = 1): Keyring {
  const keys = Array.from({ length: n }, (_, i) => deterministicKey(seedBase + i));
  return {
    keys,
    signer: (id) => ({ sign: (domain, payload) => sign(domain, payload, keys[id]!.privateKey) }),
    verifier: {
      verify(domain: DomainTag, payload: unknown, signature: SignatureHex, validator: ValidatorId): boolean {
        const key = keys[validator];
        return key !== undefined && verify(domain, payload, signature, key.publicKey);
      },
    },
  };
}

const short = (h: string): string => h.slice(0, 6);

interface Member {
  replica: Replica<TestBlock, TestRequest> | undefined;
  readonly records: PersistRecord<TestBlock>[];
  readonly chain: CertifiedBlock<TestBlock>[];
  executedHash: BlockHash;
}

interface Item {
  readonly to: number;
  readonly event: Event<TestBlock, TestRequest>;
}

export interface ClusterOptions {
  readonly n: number;
  readonly limits?: Partial<ReplicaLimits>;
  readonly faults?: ReplicaConfig['faults'];
  /** Record a transcript line for every send, delivery, view change and reply. */
  readonly transcript?: boolean;
  readonly chainId?: string;
  /** A seeded generator in [0, 1): when given, the next item is picked at random (reordering). */
  readonly random?: () => number;
  /** With `random`: the probability that a consensus message is lost. */
  readonly lossRate?: number;
  /** Rewrites traffic from -> to (a Byzantine sender): the messages actually delivered instead. */
  readonly intercept?: (
    from: number,
    to: number,
    message: ConsensusMessage<TestBlock>,
  ) => readonly ConsensusMessage<TestBlock>[];
}

/** mulberry32: a tiny seeded PRNG, enough to shuffle test traffic reproducibly. */
export function seededRandom(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/**
 * n replicas on an in-memory FIFO network. Validation answers, executions and state-transfer
 * answers are queued like messages, so they interleave as they would with a real driver.
 */
export class Cluster {
  readonly n: number;
  readonly app = new TestApp();
  readonly ring: Keyring;
  readonly chainId: string;
  readonly members: Member[];
  readonly lines: string[] = [];
  /** Rules deciding whether traffic from -> to is dropped (message undefined: state transfer). */
  readonly drops: ((
    from: number,
    to: number,
    message: ConsensusMessage<TestBlock> | undefined,
  ) => boolean)[] = [];
  nowMs = 0;
  processed = 0;
  private queue: Item[] = [];
  private head = 0;
  /** With `random`: network traffic (messages, requests, transfer answers) is picked at random. */
  private network: Item[] = [];
  private readonly options: ClusterOptions;

  constructor(options: ClusterOptions) {
    this.options = options;
    this.n = options.n;
    this.chainId = options.chainId ?? 'test-chain';
    this.ring = keyring(options.n);
    this.members = Array.from({ length: options.n }, () => ({
      replica: undefined,
      records: [],
      chain: [],
      executedHash: testGenesisHash,
    }));
    for (let i = 0; i < options.n; i++) this.members[i]!.replica = this.makeReplica(i, false);
  }

  config(id: number): ReplicaConfig {
    return {
      chainId: this.chainId,
      id: id as ValidatorId,
      n: this.n,
      genesisHash: testGenesisHash,
      signer: this.ring.signer(id),
      verifier: this.ring.verifier,
      ...(this.options.limits !== undefined ? { limits: this.options.limits } : {}),
      ...(this.options.faults !== undefined ? { faults: this.options.faults } : {}),
    };
  }

  private makeReplica(id: number, restoring: boolean): Replica<TestBlock, TestRequest> {
    const m = this.members[id]!;
    const app = new TestApp(m.chain);
    if (!restoring) return new Replica(this.config(id), app);
    const height = m.chain.length as Height;
    return new Replica(this.config(id), app, {
      records: m.records,
      executed: { height, hash: m.executedHash },
    });
  }

  replica(id: number): Replica<TestBlock, TestRequest> {
    const r = this.members[id]!.replica;
    assert(r !== undefined, `replica ${id} is crashed`);
    return r;
  }

  log(line: string): void {
    if (this.options.transcript) this.lines.push(line);
  }

  crash(id: number): void {
    this.members[id]!.replica = undefined;
    this.log(`r${id} CRASH`);
  }

  restart(id: number): void {
    assert(this.members[id]!.replica === undefined, 'restart a crashed replica');
    this.members[id]!.replica = this.makeReplica(id, true);
    this.log(`r${id} RESTART view=${this.replica(id).view} executed=${this.members[id]!.chain.length}`);
    // The first step re-announces what the restored replica needs; a tick is the natural trigger.
    this.push({ to: id, event: { kind: 'tick', nowMs: this.nowMs } });
  }

  isUp(id: number): boolean {
    return this.members[id]!.replica !== undefined;
  }

  push(item: Item): void {
    const local =
      item.event.kind === 'tick' ||
      item.event.kind === 'block-executed' ||
      item.event.kind === 'validation-result';
    if (this.options.random !== undefined && !local) this.network.push(item);
    else this.queue.push(item);
  }

  request(request: TestRequest, to: readonly number[] = [...Array(this.n).keys()]): void {
    for (const id of to) this.push({ to: id, event: { kind: 'request', request } });
  }

  /** Injects a message as if `from` sent it to each of `to` (for Byzantine scenarios). */
  inject(from: number, to: readonly number[], message: ConsensusMessage<TestBlock>): void {
    this.log(`r${from} -> ${to.map((t) => `r${t}`).join(',')} ${describeMessage(message)} (injected)`);
    for (const t of to) this.push({ to: t, event: { kind: 'message', from: from as ValidatorId, message } });
  }

  /** Signs a message with a replica's real key, so a test can play a Byzantine replica. */
  signAs<M extends ConsensusMessage<TestBlock>>(id: number, unsigned: Omit<M, 'signature'>): M {
    const draft = { ...unsigned, signature: '' } as unknown as M;
    const { domain, payload } = signedPart(this.chainId, draft);
    return { ...unsigned, signature: this.ring.signer(id).sign(domain, payload) } as unknown as M;
  }

  /** Processes queued items until none is left (or the step budget runs out). */
  run(stepsMax = 1_000_000): void {
    let steps = 0;
    while (this.head < this.queue.length || this.network.length > 0) {
      assert(steps++ < stepsMax, 'the cluster did not settle within its step budget');
      const random = this.options.random;
      // Local events of a replica (ticks, executions, validation answers) keep their order, as a
      // real driver's do; network traffic may be reordered.
      if (
        random !== undefined &&
        this.network.length > 0 &&
        (this.head >= this.queue.length || random() < 0.5)
      ) {
        const pick = Math.floor(random() * this.network.length);
        const chosen = this.network[pick]!;
        this.network[pick] = this.network[this.network.length - 1]!;
        this.network.pop();
        this.process(chosen);
        continue;
      }
      const item = this.queue[this.head++]!;
      if (this.head > 4096 && this.head * 2 > this.queue.length) {
        this.queue = this.queue.slice(this.head);
        this.head = 0;
      }
      this.process(item);
    }
  }

  /** Advances time by ms in increments of stepMs, ticking every live replica and settling each time. */
  tick(ms: number, stepMs = 50): void {
    const end = this.nowMs + ms;
    while (this.nowMs < end) {
      this.nowMs = Math.min(end, this.nowMs + stepMs);
      for (let i = 0; i < this.n; i++) {
        if (this.isUp(i)) this.push({ to: i, event: { kind: 'tick', nowMs: this.nowMs } });
      }
      this.run();
    }
  }

  private process(item: Item): void {
    const member = this.members[item.to]!;
    const replica = member.replica;
    if (replica === undefined) return;
    this.processed++;
    const actions = replica.step(item.event);
    this.perform(item.to, actions);
  }

  private perform(id: number, actions: readonly Action<TestBlock>[]): void {
    const m = this.members[id]!;
    for (const action of actions) {
      switch (action.kind) {
        case 'persist':
          m.records.push(...action.records);
          break;
        case 'broadcast':
          this.log(`r${id} -> * ${describeMessage(action.message)}`);
          for (let to = 0; to < this.n; to++) if (to !== id) this.route(id, to, action.message);
          break;
        case 'send':
          this.log(`r${id} -> r${action.to} ${describeMessage(action.message)}`);
          this.route(id, action.to, action.message);
          break;
        case 'deliver': {
          const c = action.certificate;
          this.log(
            `r${id} DELIVER h=${action.height} d=${short(c.blockHash)} v=${c.view} reqs=${action.block.requests.length} cert=[${c.signatures.map((s) => s.validator).join(',')}]`,
          );
          assert(action.height === m.chain.length + 1, 'the cluster sees deliveries in order');
          m.chain.push({ block: action.block, certificate: action.certificate });
          m.executedHash = action.certificate.blockHash;
          this.push({ to: id, event: { kind: 'block-executed', height: action.height, hash: c.blockHash } });
          break;
        }
        case 'validate': {
          const reason = this.app.validate(action.block);
          if (reason !== null)
            this.log(`r${id} INVALID s=${action.seq} d=${short(action.digest)}: ${reason}`);
          const base = {
            kind: 'validation-result',
            view: action.view,
            seq: action.seq,
            digest: action.digest,
          } as const;
          this.push({
            to: id,
            event: reason === null ? { ...base, valid: true } : { ...base, valid: false, reason },
          });
          break;
        }
        case 'request-blocks': {
          this.log(`r${id} -> r${action.to} REQUEST-BLOCKS ${action.fromHeight}..${action.toHeight}`);
          const server = this.members[action.to]!;
          if (server.replica === undefined || this.dropped(action.to, id)) break;
          const blocks = server.chain.slice(action.fromHeight - 1, action.toHeight);
          this.log(
            `r${action.to} -> r${id} BLOCKS ${blocks.length === 0 ? 'none' : `${blocks[0]!.block.height}..${blocks[blocks.length - 1]!.block.height}`}`,
          );
          this.push({ to: id, event: { kind: 'blocks', from: action.to as ValidatorId, blocks } });
          break;
        }
        case 'reply': {
          const r = action.result;
          const detail = r.status === 'rejected' ? r.reason : `h=${r.height}`;
          this.log(`r${id} REPLY ${action.clientId}/${action.requestId} ${r.status} ${detail}`);
          break;
        }
        case 'view-changed':
          this.log(`r${id} VIEW-CHANGED v=${action.view} primary=r${action.primary}`);
          break;
      }
    }
  }

  private dropped(from: number, to: number, message?: ConsensusMessage<TestBlock>): boolean {
    return this.drops.some((d) => d(from, to, message));
  }

  private route(from: number, to: number, message: ConsensusMessage<TestBlock>): void {
    if (this.dropped(from, to, message)) return;
    const { random, lossRate, intercept } = this.options;
    if (random !== undefined && lossRate !== undefined && random() < lossRate) return;
    const messages = intercept === undefined ? [message] : intercept(from, to, message);
    for (const m of messages)
      this.push({ to, event: { kind: 'message', from: from as ValidatorId, message: m } });
  }

  /** Fails loudly unless every live replica's chain is a prefix of the longest, with valid certificates. */
  checkAgreement(): void {
    const longest = this.members.reduce((a, b) => (b.chain.length > a.chain.length ? b : a)).chain;
    const publicKeys = this.ring.keys.map((k) => k.publicKey);
    for (const [id, m] of this.members.entries()) {
      for (const [i, item] of m.chain.entries()) {
        const digest = this.app.digest(item.block);
        assert(digest === this.app.digest(longest[i]!.block), `r${id} disagrees at height ${i + 1}`);
        const check = verifyCommitCertificate(item.certificate, {
          chainId: this.chainId,
          validators: publicKeys,
        });
        assert(check.ok, `r${id} certificate at ${i + 1}: ${check.ok ? '' : check.reason}`);
      }
    }
  }

  /** A commit certificate as a third party would get it from replica id at height h. */
  certificate(id: number, height: number): CommitCertificate {
    return this.members[id]!.chain[height - 1]!.certificate;
  }

  view(id: number): View {
    return this.replica(id).view;
  }
}

export function req(clientId: string, requestId: string | number, payload = 'x'): TestRequest {
  return { clientId, requestId: String(requestId), payload };
}
