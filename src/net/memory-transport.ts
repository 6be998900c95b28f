/**
 * The Transport interface inside one process, for in-process clusters and tests. A MemoryNetwork
 * links its members pairwise; a link is up while both ends are started and the link is neither
 * cut (disconnect) nor closed for bad data. Frames travel as bytes through the same decoder as on
 * TLS, one setImmediate per frame, so ordering, limits and rejections behave as on real links.
 *
 * Differences from TlsTransport: no keepalives (lastSeenMs moves only with messages), and a
 * link closed for bad data comes back after reconnectMs instead of a redial with backoff.
 */
import { frameBytesMax, peerReconnectMsMin } from '../constants.ts';
import type { ValidatorId } from '../encoding/brand.ts';
import { assert } from '../errors.ts';
import { encodeFrame } from './frames.ts';
import { Handlers, LinkReader, type LinkRejection, SendQueue } from './link.ts';
import {
  emptyCounters,
  encodeMessage,
  type MessageHandler,
  type OutboundMessage,
  type PeerStatus,
  type PeerStatusHandler,
  type Transport,
  type TransportCounters,
} from './transport.ts';

export interface MemoryNetworkOptions {
  readonly validators: number;
  readonly frameBytesMax?: number;
  /** How long a link closed for bad data stays down. */
  readonly reconnectMs?: number;
  readonly now?: () => number;
  /** Called when a link is closed for bad data (the TLS transport logs instead). */
  readonly onReject?: (from: ValidatorId, to: ValidatorId, rejection: LinkRejection) => void;
}

interface PairState {
  cut: boolean;
  rejectedTimer: NodeJS.Timeout | null;
  /** Bumped whenever the link goes down, so frames in flight on the old link are lost, as on TCP. */
  epoch: number;
  up: boolean;
}

export class MemoryNetwork {
  readonly size: number;
  readonly frameLimitBytes: number;
  readonly #reconnectMs: number;
  readonly now: () => number;
  readonly #onReject: MemoryNetworkOptions['onReject'];
  readonly #members: (MemoryTransport | null)[];
  readonly #pairs = new Map<string, PairState>();

  constructor(options: MemoryNetworkOptions) {
    assert(Number.isSafeInteger(options.validators) && options.validators >= 1, 'a network has validators');
    this.size = options.validators;
    this.frameLimitBytes = options.frameBytesMax ?? frameBytesMax;
    this.#reconnectMs = options.reconnectMs ?? peerReconnectMsMin;
    this.now = options.now ?? Date.now;
    this.#onReject = options.onReject;
    this.#members = Array.from({ length: this.size }, () => null);
    for (let a = 0; a < this.size; a++) {
      for (let b = a + 1; b < this.size; b++) {
        this.#pairs.set(pairKey(a, b), { cut: false, rejectedTimer: null, epoch: 0, up: false });
      }
    }
  }

  /**
   * A new transport for validator id (not started). The previous one for that id, if any, must
   * be stopped: this is how a test restarts a validator.
   */
  transport(id: ValidatorId | number): MemoryTransport {
    this.#checkId(id);
    const previous = this.#members[id];
    assert(
      previous === null || previous === undefined || !previous.started,
      `validator ${id} is still running`,
    );
    const transport = new MemoryTransport(this, id as ValidatorId);
    this.#members[id] = transport;
    return transport;
  }

  /** The current transport of validator id, if one was created. */
  member(id: ValidatorId | number): MemoryTransport | null {
    this.#checkId(id);
    return this.#members[id] ?? null;
  }

  /** Cuts the link between a and b in both directions; frames in flight are lost. */
  disconnect(a: ValidatorId | number, b: ValidatorId | number): void {
    this.#pair(a, b).cut = true;
    this.#refresh(a, b);
  }

  reconnect(a: ValidatorId | number, b: ValidatorId | number): void {
    this.#pair(a, b).cut = false;
    this.#refresh(a, b);
  }

  isUp(a: ValidatorId | number, b: ValidatorId | number): boolean {
    return this.#pair(a, b).up;
  }

  /**
   * Puts raw bytes on the link from `from` to `to` as if `from` had written them: the way tests
   * send garbage. Ignored while the link is down.
   */
  injectBytes(from: ValidatorId | number, to: ValidatorId | number, bytes: Uint8Array): void {
    this.#carry(from as ValidatorId, to as ValidatorId, Buffer.from(bytes));
  }

  /** @internal Called by MemoryTransport on start and stop. */
  memberChanged(id: ValidatorId): void {
    for (let other = 0; other < this.size; other++) if (other !== id) this.#refresh(id, other);
  }

  /** @internal Delivers a frame on the link from -> to, after the current turn of the event loop. */
  carry(from: ValidatorId, to: ValidatorId, frame: Buffer): void {
    this.#carry(from, to, frame);
  }

  /** @internal The receiving side found bad data: close the link and bring it back later. */
  reject(from: ValidatorId, to: ValidatorId, rejection: LinkRejection): void {
    const pair = this.#pair(from, to);
    this.#onReject?.(from, to, rejection);
    if (pair.rejectedTimer !== null) return;
    pair.rejectedTimer = setTimeout(() => {
      pair.rejectedTimer = null;
      this.#refresh(from, to);
    }, this.#reconnectMs);
    this.#refresh(from, to);
  }

  #carry(from: ValidatorId, to: ValidatorId, bytes: Buffer): void {
    const pair = this.#pair(from, to);
    if (!pair.up) return;
    const epoch = pair.epoch;
    setImmediate(() => {
      if (pair.epoch !== epoch || !pair.up) return;
      this.#members[to]?.receive(from, bytes);
    });
  }

  #refresh(a: ValidatorId | number, b: ValidatorId | number): void {
    const pair = this.#pair(a, b);
    const ta = this.#members[a];
    const tb = this.#members[b];
    const up = !pair.cut && pair.rejectedTimer === null && ta?.started === true && tb?.started === true;
    if (up === pair.up) return;
    pair.up = up;
    if (!up) pair.epoch++;
    if (ta?.started) ta.linkChanged(b as ValidatorId, up);
    if (tb?.started) tb.linkChanged(a as ValidatorId, up);
  }

  #pair(a: ValidatorId | number, b: ValidatorId | number): PairState {
    this.#checkId(a);
    this.#checkId(b);
    assert(a !== b, 'a link joins two different validators');
    const pair = this.#pairs.get(pairKey(a, b));
    assert(pair !== undefined, 'every pair of validators has a link');
    return pair;
  }

  #checkId(id: number): void {
    assert(Number.isSafeInteger(id) && id >= 0 && id < this.size, `validator ${id} is in this network`);
  }
}

function pairKey(a: number, b: number): string {
  return a < b ? `${a}-${b}` : `${b}-${a}`;
}

interface MemoryPeer {
  readonly id: ValidatorId;
  readonly queue: SendQueue;
  connected: boolean;
  lastSeenMs: number | null;
  reader: LinkReader | null;
}

export class MemoryTransport implements Transport {
  readonly self: ValidatorId;
  readonly #network: MemoryNetwork;
  readonly #handlers = new Handlers();
  readonly #counters: TransportCounters = emptyCounters();
  readonly #peers = new Map<ValidatorId, MemoryPeer>();
  #state: 'new' | 'started' | 'stopped' = 'new';

  /** Use MemoryNetwork.transport(id). */
  constructor(network: MemoryNetwork, self: ValidatorId) {
    this.#network = network;
    this.self = self;
    for (let id = 0; id < network.size; id++) {
      if (id === self) continue;
      this.#peers.set(id as ValidatorId, {
        id: id as ValidatorId,
        queue: new SendQueue(),
        connected: false,
        lastSeenMs: null,
        reader: null,
      });
    }
  }

  get started(): boolean {
    return this.#state === 'started';
  }

  async start(): Promise<void> {
    assert(this.#state === 'new', 'a MemoryTransport starts once; create a new one to start again');
    this.#state = 'started';
    this.#network.memberChanged(this.self);
  }

  async stop(): Promise<void> {
    if (this.#state === 'stopped') return;
    const wasStarted = this.#state === 'started';
    this.#state = 'stopped';
    for (const peer of this.#peers.values()) {
      peer.queue.clear();
      peer.reader?.close();
      peer.reader = null;
      if (peer.connected) {
        peer.connected = false;
        this.#counters.peersConnected--;
      }
    }
    if (wasStarted) this.#network.memberChanged(this.self);
  }

  send(to: ValidatorId, message: OutboundMessage): void {
    const peer = this.#peer(to);
    if (this.#state === 'stopped') return;
    this.#enqueue(peer, encodeFrame(encodeMessage(message), this.#network.frameLimitBytes));
  }

  broadcast(message: OutboundMessage): void {
    if (this.#state === 'stopped') return;
    const frame = encodeFrame(encodeMessage(message), this.#network.frameLimitBytes);
    for (const peer of this.#peers.values()) this.#enqueue(peer, frame);
  }

  onMessage(handler: MessageHandler): () => void {
    return this.#handlers.onMessage(handler);
  }

  onPeerStatus(handler: PeerStatusHandler): () => void {
    return this.#handlers.onPeerStatus(handler);
  }

  peerStatus(): PeerStatus[] {
    return [...this.#peers.values()]
      .sort((a, b) => a.id - b.id)
      .map((peer) => ({ id: peer.id, connected: peer.connected, lastSeenMs: peer.lastSeenMs }));
  }

  counters(): TransportCounters {
    return { ...this.#counters };
  }

  /** @internal Called by the network when the link to peer goes up or down. */
  linkChanged(peerId: ValidatorId, up: boolean): void {
    const peer = this.#peer(peerId);
    if (peer.connected === up) return;
    peer.connected = up;
    this.#counters.peersConnected += up ? 1 : -1;
    peer.reader?.close();
    peer.reader = up
      ? new LinkReader(peerId, this.#network.frameLimitBytes, this.#counters, (from, message) =>
          this.#handlers.message(from, message),
        )
      : null;
    if (!up) this.#counters.linksLost++;
    this.#handlers.status({ id: peerId, connected: up, lastSeenMs: peer.lastSeenMs });
    if (up) {
      for (let frame = peer.queue.shift(); frame !== undefined; frame = peer.queue.shift())
        this.#write(peer, frame);
    }
  }

  /** @internal Bytes arriving on the link from a peer. */
  receive(from: ValidatorId, bytes: Buffer): void {
    const peer = this.#peer(from);
    if (this.#state !== 'started' || peer.reader === null) return;
    const result = peer.reader.push(bytes);
    if (typeof result !== 'number') {
      this.#network.reject(from, this.self, result);
      return;
    }
    if (result > 0) peer.lastSeenMs = this.#network.now();
  }

  #enqueue(peer: MemoryPeer, frame: Buffer): void {
    if (peer.connected && peer.queue.length === 0) {
      this.#write(peer, frame);
      return;
    }
    this.#counters.framesDropped += peer.queue.push(frame);
  }

  #write(peer: MemoryPeer, frame: Buffer): void {
    this.#counters.framesOut++;
    this.#counters.bytesOut += frame.byteLength;
    this.#network.carry(this.self, peer.id, frame);
  }

  #peer(id: ValidatorId): MemoryPeer {
    const peer = this.#peers.get(id);
    assert(peer !== undefined, `validator ${id} is not a peer of validator ${this.self}`);
    return peer;
  }
}
