/**
 * Pieces both transports share, so the TLS and in-memory links behave the same: the bounded
 * per-peer send queue, the receive path (frames -> keepalive or JSON object -> handlers, with
 * every rejection counted), and the handler lists.
 */
import { peerSendQueueBytesMax, peerSendQueueFramesMax } from '../constants.ts';
import type { ValidatorId } from '../encoding/brand.ts';
import { assert } from '../errors.ts';
import { FrameDecoder, FrameError } from './frames.ts';
import {
  decodeMessage,
  type MessageHandler,
  type PeerStatus,
  type PeerStatusHandler,
  type TransportCounters,
} from './transport.ts';

/**
 * Frames waiting for one peer, oldest first, bounded by count and bytes. When a push would
 * exceed a bound the oldest frames are dropped (see transport.ts for why oldest).
 */
export class SendQueue {
  readonly #framesMax: number;
  readonly #bytesMax: number;
  #frames: Buffer[] = [];
  #head = 0;
  #bytes = 0;

  constructor(framesMax: number = peerSendQueueFramesMax, bytesMax: number = peerSendQueueBytesMax) {
    assert(framesMax > 0 && bytesMax > 0, 'a send queue holds at least one frame');
    this.#framesMax = framesMax;
    this.#bytesMax = bytesMax;
  }

  get length(): number {
    return this.#frames.length - this.#head;
  }

  get bytes(): number {
    return this.#bytes;
  }

  /** Adds a frame; returns how many old frames were dropped to make room. */
  push(frame: Buffer): number {
    assert(frame.byteLength <= this.#bytesMax, 'a single frame fits in an empty queue');
    let dropped = 0;
    while (this.length >= this.#framesMax || this.#bytes + frame.byteLength > this.#bytesMax) {
      this.shift();
      dropped++;
    }
    this.#frames.push(frame);
    this.#bytes += frame.byteLength;
    assert(
      this.length <= this.#framesMax && this.#bytes <= this.#bytesMax,
      'the queue stays within its bounds',
    );
    return dropped;
  }

  shift(): Buffer | undefined {
    if (this.length === 0) return undefined;
    const frame = this.#frames[this.#head];
    assert(frame !== undefined, 'a non-empty queue has a head frame');
    this.#frames[this.#head] = EMPTY;
    this.#head++;
    this.#bytes -= frame.byteLength;
    // Compact once the consumed prefix dominates, so shifting stays amortised O(1).
    if (this.#head > 1024 && this.#head * 2 > this.#frames.length) {
      this.#frames = this.#frames.slice(this.#head);
      this.#head = 0;
    }
    return frame;
  }

  clear(): void {
    this.#frames = [];
    this.#head = 0;
    this.#bytes = 0;
  }
}

const EMPTY = Buffer.alloc(0);

/** Why a link was closed by its receiving side. */
export type LinkRejection =
  | { readonly kind: 'oversize'; readonly detail: string }
  | { readonly kind: 'invalid-message'; readonly detail: string };

/**
 * The receiving half of one link: turns stream chunks into messages for the handlers. Keepalive
 * frames only refresh liveness. Returns a rejection when the link must be closed; after that the
 * reader refuses everything.
 */
export class LinkReader {
  readonly #from: ValidatorId;
  readonly #decoder: FrameDecoder;
  readonly #counters: TransportCounters;
  readonly #deliver: (from: ValidatorId, message: Record<string, unknown>) => void;
  #rejected = false;

  constructor(
    from: ValidatorId,
    frameLimitBytes: number,
    counters: TransportCounters,
    deliver: (from: ValidatorId, message: Record<string, unknown>) => void,
  ) {
    this.#from = from;
    this.#decoder = new FrameDecoder(frameLimitBytes);
    this.#counters = counters;
    this.#deliver = deliver;
  }

  /** Feeds a chunk. Returns the number of whole frames received, or a rejection. */
  push(chunk: Uint8Array): number | LinkRejection {
    if (this.#rejected) return { kind: 'invalid-message', detail: 'the link was already rejected' };
    let payloads: Buffer[];
    try {
      payloads = this.#decoder.push(chunk);
    } catch (error) {
      if (!(error instanceof FrameError)) throw error;
      this.#rejected = true;
      this.#counters.framesRejectedOversize++;
      return { kind: 'oversize', detail: error.message };
    }
    for (const payload of payloads) {
      this.#counters.framesIn++;
      this.#counters.bytesIn += 4 + payload.byteLength;
      if (payload.byteLength === 0) continue;
      const message = decodeMessage(payload);
      if (message === null) {
        this.#rejected = true;
        this.#counters.messagesRejectedInvalid++;
        return {
          kind: 'invalid-message',
          detail: `a ${payload.byteLength}-byte frame is not a JSON object`,
        };
      }
      this.#deliver(this.#from, message);
      // A handler may have stopped the transport or closed this link; deliver nothing more then.
      if (this.#rejected) break;
    }
    return payloads.length;
  }

  /** Stops delivery from this link, for example because its connection was closed. */
  close(): void {
    this.#rejected = true;
  }
}

/** The two handler lists of a transport, with add-returns-remove semantics. */
export class Handlers {
  readonly #message = new Set<MessageHandler>();
  readonly #status = new Set<PeerStatusHandler>();

  onMessage(handler: MessageHandler): () => void {
    this.#message.add(handler);
    return () => this.#message.delete(handler);
  }

  onPeerStatus(handler: PeerStatusHandler): () => void {
    this.#status.add(handler);
    return () => this.#status.delete(handler);
  }

  message(from: ValidatorId, message: Record<string, unknown>): void {
    for (const handler of this.#message) handler(from, message);
  }

  status(status: PeerStatus): void {
    for (const handler of this.#status) handler(status);
  }
}

/** Full-jitter exponential backoff: a delay in [d/2, d] with d = min(max, min * 2^attempt). */
export function backoffDelayMs(attempt: number, minMs: number, maxMs: number, random: () => number): number {
  assert(attempt >= 0 && minMs > 0 && maxMs >= minMs, 'backoff arguments are sane');
  const ceiling = Math.min(maxMs, minMs * 2 ** Math.min(attempt, 30));
  return Math.round(ceiling / 2 + random() * (ceiling / 2));
}
