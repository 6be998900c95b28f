/**
 * The peer transport the node hands to its PBFT replica: a small interface with two
 * implementations, TlsTransport (real processes, mutual TLS) and MemoryTransport (in-process
 * clusters and tests). Both pass the same compliance suite (transport-compliance.ts).
 *
 * Semantics every implementation keeps:
 * - Messages are JSON objects. A message is serialised once per send or broadcast (broadcast
 *   writes the same bytes to every peer) and parsed once on arrival; the receiver gets a fresh
 *   object, never the sender's. The object given to the handler is untrusted input from a
 *   peer: the caller validates its shape and its signature.
 * - Delivery is in order per directed link (a to b) while the link stays up, and at most once.
 *   It is NOT reliable: frames are lost when a link drops or a send queue overflows. PBFT
 *   tolerates loss (retransmission by timers, view change, state transfer).
 * - Each peer has a bounded send queue (peerSendQueueFramesMax frames and peerSendQueueBytesMax
 *   bytes). When it is full the OLDEST frame is dropped: after an outage the newest consensus
 *   messages (higher views, later sequence numbers) are the useful ones, and anything older
 *   is recovered by state transfer anyway. Drops are counted in TransportCounters.
 * - A peer is "connected" when this node's link to it is authenticated and the peer has
 *   answered on it, so a send is expected to reach it. lastSeenMs is the wall-clock time of
 *   the last frame received from that peer (any link, keepalives included), or null if never.
 * - Handlers run on the event loop, never re-entrantly inside send or broadcast. A handler
 *   that throws is a programmer error and is not caught.
 */
import type { ValidatorId } from '../encoding/brand.ts';

/** A message as given to send or broadcast: a JSON object, or its UTF-8 JSON bytes already encoded. */
export type OutboundMessage = Uint8Array | object;

export type MessageHandler = (from: ValidatorId, message: Record<string, unknown>) => void;

export interface PeerStatus {
  readonly id: ValidatorId;
  readonly connected: boolean;
  /** Wall-clock milliseconds (Date.now()) of the last frame received from this peer; null if never. */
  readonly lastSeenMs: number | null;
}

export type PeerStatusHandler = (status: PeerStatus) => void;

/**
 * Monotonic counters for Prometheus (the node exports them as counters, except
 * peersConnected which is a gauge). All byte counts include the 4-byte frame header.
 */
export interface TransportCounters {
  framesIn: number;
  framesOut: number;
  bytesIn: number;
  bytesOut: number;
  /** Frames dropped because a peer's send queue was full (oldest dropped first). */
  framesDropped: number;
  /** Frames announcing more than frameBytesMax bytes; the link was closed. */
  framesRejectedOversize: number;
  /** Frames whose payload was not a JSON object; the link was closed. */
  messagesRejectedInvalid: number;
  /** Connections refused: failed TLS handshake, unknown or wrong identity, handshake timeout. */
  connectionsRejected: number;
  /** Links that went from up to down (peer closed, idle timeout, error). */
  linksLost: number;
  /** Current number of connected peers. */
  peersConnected: number;
}

export interface Transport {
  /** This node's validator id. */
  readonly self: ValidatorId;
  /**
   * Start listening and dialling peers. Resolves once this node accepts connections; peers
   * come up later (watch onPeerStatus). Rejects with a ConfigChainError if it cannot listen
   * (code NET_LISTEN_FAILED, data.errno e.g. 'EADDRINUSE').
   */
  start(): Promise<void>;
  /** Close every link and stop listening. Queued frames are discarded. Idempotent. */
  stop(): Promise<void>;
  /**
   * Queue a message for one peer. Sending to self or to an id outside the validator set is a
   * programmer error (assertion). Never throws for a down peer: the frame waits in the bounded
   * queue until the link comes up.
   */
  send(to: ValidatorId, message: OutboundMessage): void;
  /** Send one message to every peer except self, serialised once. */
  broadcast(message: OutboundMessage): void;
  /** Register a handler for incoming messages. Returns a function that removes it. */
  onMessage(handler: MessageHandler): () => void;
  /** Register a handler called whenever a peer goes up or down. Returns a function that removes it. */
  onPeerStatus(handler: PeerStatusHandler): () => void;
  /** Status of every peer except self, ordered by id. */
  peerStatus(): PeerStatus[];
  /** A snapshot of the counters. */
  counters(): TransportCounters;
}

export function emptyCounters(): TransportCounters {
  return {
    framesIn: 0,
    framesOut: 0,
    bytesIn: 0,
    bytesOut: 0,
    framesDropped: 0,
    framesRejectedOversize: 0,
    messagesRejectedInvalid: 0,
    connectionsRejected: 0,
    linksLost: 0,
    peersConnected: 0,
  };
}

/** Serialise a message once: JSON objects become UTF-8 JSON bytes; bytes pass through unchanged. */
export function encodeMessage(message: OutboundMessage): Uint8Array {
  if (message instanceof Uint8Array) return message;
  const text = JSON.stringify(message);
  // JSON.stringify returns undefined for functions and symbols: a caller bug, not peer input.
  if (typeof text !== 'string' || !text.startsWith('{')) {
    throw new TypeError('a transport message must be a JSON object');
  }
  return Buffer.from(text, 'utf8');
}

/**
 * Parse a received payload. Returns null for anything but a JSON object, so the caller can
 * close the link and count it: peer input never throws past this point.
 */
export function decodeMessage(payload: Uint8Array): Record<string, unknown> | null {
  let value: unknown;
  try {
    value = JSON.parse(Buffer.from(payload.buffer, payload.byteOffset, payload.byteLength).toString('utf8'));
  } catch {
    return null;
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return null;
  return value as Record<string, unknown>;
}
