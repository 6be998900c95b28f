/**
 * Peer links over node:tls with mutual authentication against the network's own CA.
 *
 * Topology: every validator dials every other validator and sends its messages only on that
 * outbound connection; the connection a peer dials to us carries only its messages to us. So
 * each ordered pair (a, b) has exactly one connection carrying a's messages to b, which gives
 * per-link ordering without any tie-breaking between simultaneous dials.
 *
 * Identity: the CA is the only trust anchor both ways (TLS 1.3 only). An inbound connection's
 * validator id comes from its client certificate's CN (validator-<id>) and nothing else; an
 * outbound connection to peer k must present validator-k (and match the host in its SAN).
 *
 * Liveness: both ends send a zero-length frame every keepaliveMs and close a connection that
 * has received nothing for idleTimeoutMs, so a stopped (SIGSTOP) or wedged peer shows as down
 * within a few seconds. An outbound link counts as up only once the peer has sent its first
 * frame on it: that proves the peer accepted our certificate, which in TLS 1.3 the client
 * cannot otherwise know when its handshake completes. Lost links are redialled with
 * exponential backoff and jitter.
 */
import { X509Certificate } from 'node:crypto';
import type { Socket } from 'node:net';
import {
  checkServerIdentity,
  connect,
  createSecureContext,
  createServer,
  type PeerCertificate,
  type SecureContext,
  type Server,
  type TLSSocket,
} from 'node:tls';
import type { Logger } from 'pino';
import {
  frameBytesMax,
  peerHandshakeTimeoutMs,
  peerIdleTimeoutMs,
  peerInboundConnectionsMax,
  peerKeepaliveMs,
  peerReconnectMsMax,
  peerReconnectMsMin,
} from '../constants.ts';
import type { ValidatorId } from '../encoding/brand.ts';
import { assert, ConfigChainError } from '../errors.ts';
import { encodeFrame, keepaliveFrame } from './frames.ts';
import { backoffDelayMs, Handlers, LinkReader, SendQueue } from './link.ts';
import { validatorCommonName, validatorIdFromCommonName } from './pki.ts';
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

export interface PeerAddress {
  readonly id: ValidatorId | number;
  readonly host: string;
  readonly port: number;
}

/** PEM texts: the network CA certificate, and this validator's certificate and private key. */
export interface TlsCredentials {
  readonly caPem: string;
  readonly certPem: string;
  readonly keyPem: string;
}

export interface LinkTiming {
  readonly keepaliveMs: number;
  readonly idleTimeoutMs: number;
  readonly handshakeTimeoutMs: number;
  readonly reconnectMsMin: number;
  readonly reconnectMsMax: number;
}

export const defaultLinkTiming: LinkTiming = {
  keepaliveMs: peerKeepaliveMs,
  idleTimeoutMs: peerIdleTimeoutMs,
  handshakeTimeoutMs: peerHandshakeTimeoutMs,
  reconnectMsMin: peerReconnectMsMin,
  reconnectMsMax: peerReconnectMsMax,
};

export interface TlsTransportOptions {
  readonly self: ValidatorId;
  /** Every validator, self included; self's entry is where this node listens. */
  readonly validators: readonly PeerAddress[];
  readonly tls: TlsCredentials;
  readonly logger: Logger;
  /** Listen on another address than self's entry (for example 0.0.0.0). */
  readonly listenHost?: string;
  /** Tests shorten these; production uses the constants. */
  readonly timing?: Partial<LinkTiming>;
  /** Tests lower this; production uses frameBytesMax. */
  readonly frameBytesMax?: number;
  /** The jitter source; Math.random unless a test wants determinism. */
  readonly random?: () => number;
  /** The wall clock for lastSeenMs; Date.now unless a test wants otherwise. Idleness uses a monotonic clock. */
  readonly now?: () => number;
}

const TLS_VERSION = 'TLSv1.3';

interface Conn {
  readonly socket: TLSSocket;
  readonly direction: 'out' | 'in';
  readonly peer: PeerState;
  readonly reader: LinkReader;
  /** Monotonic time (performance.now) of the last frame received, so a wall-clock jump cannot fake idleness. */
  lastFrameMs: number;
  /** Outbound: the peer has answered. Inbound: authenticated (always true once created). */
  up: boolean;
  /** The socket's buffer is over its high-water mark; wait for 'drain' before writing messages. */
  blocked: boolean;
  corked: boolean;
  handshakeTimer: NodeJS.Timeout | null;
}

interface PeerState {
  readonly id: ValidatorId;
  readonly address: PeerAddress;
  readonly queue: SendQueue;
  out: Conn | null;
  in: Conn | null;
  attempts: number;
  reconnectTimer: NodeJS.Timeout | null;
  lastSeenMs: number | null;
  connected: boolean;
}

export class TlsTransport implements Transport {
  readonly self: ValidatorId;
  readonly #options: TlsTransportOptions;
  readonly #timing: LinkTiming;
  readonly #frameLimitBytes: number;
  readonly #log: Logger;
  readonly #random: () => number;
  readonly #now: () => number;
  readonly #listen: { readonly host: string; readonly port: number };
  readonly #peers = new Map<ValidatorId, PeerState>();
  readonly #handlers = new Handlers();
  readonly #counters: TransportCounters = emptyCounters();
  /** Accepted TCP sockets, authenticated or not, so stop() can close those still in their handshake. */
  readonly #accepted = new Set<Socket>();
  /** Parsed once: every redial reuses it instead of parsing the PEM texts again. */
  readonly #clientContext: SecureContext;
  #server: Server | null = null;
  #ticker: NodeJS.Timeout | null = null;
  #state: 'new' | 'started' | 'stopped' = 'new';

  constructor(options: TlsTransportOptions) {
    this.self = options.self;
    this.#options = options;
    this.#timing = { ...defaultLinkTiming, ...options.timing };
    assert(
      this.#timing.idleTimeoutMs > this.#timing.keepaliveMs,
      'a link must outlive its keepalive interval',
    );
    this.#frameLimitBytes = options.frameBytesMax ?? frameBytesMax;
    this.#log = options.logger.child({ component: 'net', self: options.self });
    this.#random = options.random ?? Math.random;
    this.#now = options.now ?? Date.now;

    const ids = new Set(options.validators.map((v) => Number(v.id)));
    assert(ids.size === options.validators.length, 'validator ids are unique');
    const me = options.validators.find((v) => v.id === options.self);
    assert(me !== undefined, `validator ${options.self} is in the validator list`);
    this.#listen = { host: options.listenHost ?? me.host, port: me.port };
    for (const address of options.validators) {
      if (address.id === options.self) continue;
      const id = address.id as ValidatorId;
      this.#peers.set(id, {
        id,
        address,
        queue: new SendQueue(),
        out: null,
        in: null,
        attempts: 0,
        reconnectTimer: null,
        lastSeenMs: null,
        connected: false,
      });
    }
    this.#clientContext = secureContextFor(options.tls);
    const ownName = commonNameOf(options.tls.certPem);
    if (ownName !== validatorCommonName(options.self)) {
      throw new ConfigChainError(
        'NET_IDENTITY_MISMATCH',
        `the TLS certificate given to validator ${options.self} is for ${JSON.stringify(ownName)}, not ` +
          `${validatorCommonName(options.self)}; use validators/${options.self}/tls.crt of this network`,
        { self: options.self, commonName: ownName },
      );
    }
  }

  async start(): Promise<void> {
    assert(this.#state === 'new', 'a TlsTransport starts once; create a new one to start again');
    this.#state = 'started';
    const { caPem, certPem, keyPem } = this.#options.tls;
    const server = createServer(
      {
        ca: [caPem],
        cert: certPem,
        key: keyPem,
        requestCert: true,
        rejectUnauthorized: true,
        minVersion: TLS_VERSION,
        maxVersion: TLS_VERSION,
        handshakeTimeout: this.#timing.handshakeTimeoutMs,
      },
      (socket) => this.#onInbound(socket),
    );
    server.maxConnections = peerInboundConnectionsMax;
    server.on('connection', (socket: Socket) => {
      this.#accepted.add(socket);
      socket.once('close', () => this.#accepted.delete(socket));
    });
    server.on('tlsClientError', (error, socket) => {
      this.#counters.connectionsRejected++;
      this.#log.warn(
        { remote: `${socket.remoteAddress}:${socket.remotePort}`, err: error.message },
        'refused a peer connection in the TLS handshake (no valid certificate from the network CA)',
      );
    });
    this.#server = server;
    try {
      await new Promise<void>((resolve, reject) => {
        server.once('error', reject);
        server.listen(this.#listen.port, this.#listen.host, () => {
          server.off('error', reject);
          resolve();
        });
      });
    } catch (error) {
      this.#state = 'stopped';
      const errno = (error as NodeJS.ErrnoException).code ?? 'UNKNOWN';
      throw new ConfigChainError(
        'NET_LISTEN_FAILED',
        `cannot listen for peers on ${this.#listen.host}:${this.#listen.port} (${errno}); ` +
          'stop whatever holds that port, or create the network with another --base-port',
        { host: this.#listen.host, port: this.#listen.port, errno },
      );
    }
    if (this.#state !== 'started') {
      // stop() ran while we were binding: undo the listen and do not dial.
      server.close();
      return;
    }
    server.on('error', (error) => this.#log.error({ err: error.message }, 'peer server error'));
    this.#log.info({ host: this.#listen.host, port: this.#listen.port }, 'listening for peers');
    for (const peer of this.#peers.values()) this.#dial(peer);
    this.#ticker = setInterval(() => this.#tick(), this.#timing.keepaliveMs);
  }

  async stop(): Promise<void> {
    if (this.#state === 'stopped') return;
    const wasStarted = this.#state === 'started';
    this.#state = 'stopped';
    if (this.#ticker !== null) clearInterval(this.#ticker);
    this.#ticker = null;
    for (const peer of this.#peers.values()) {
      if (peer.reconnectTimer !== null) clearTimeout(peer.reconnectTimer);
      peer.reconnectTimer = null;
      peer.out?.socket.destroy();
      peer.in?.socket.destroy();
      peer.queue.clear();
      if (peer.connected) {
        peer.connected = false;
        this.#counters.peersConnected--;
      }
    }
    for (const socket of this.#accepted) socket.destroy();
    const server = this.#server;
    if (wasStarted && server !== null) await new Promise<void>((resolve) => server.close(() => resolve()));
    this.#log.info('peer transport stopped');
  }

  send(to: ValidatorId, message: OutboundMessage): void {
    const peer = this.#peer(to);
    if (this.#state === 'stopped') return;
    this.#enqueue(peer, encodeFrame(encodeMessage(message), this.#frameLimitBytes));
  }

  broadcast(message: OutboundMessage): void {
    if (this.#state === 'stopped') return;
    const frame = encodeFrame(encodeMessage(message), this.#frameLimitBytes);
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

  #peer(id: ValidatorId): PeerState {
    const peer = this.#peers.get(id);
    assert(peer !== undefined, `send to validator ${id}: not a peer of validator ${this.self}`);
    return peer;
  }

  #enqueue(peer: PeerState, frame: Buffer): void {
    const conn = peer.out;
    if (conn !== null && writable(conn) && peer.queue.length === 0) {
      this.#write(conn, frame);
      return;
    }
    this.#counters.framesDropped += peer.queue.push(frame);
  }

  #flush(peer: PeerState): void {
    const conn = peer.out;
    if (conn === null) return;
    while (writable(conn)) {
      const frame = peer.queue.shift();
      if (frame === undefined) break;
      this.#write(conn, frame);
    }
  }

  /** Writes a frame, corking the socket until the end of this tick so a burst goes out in one TLS record batch. */
  #write(conn: Conn, frame: Buffer): void {
    if (!conn.corked) {
      conn.corked = true;
      conn.socket.cork();
      process.nextTick(() => {
        conn.corked = false;
        conn.socket.uncork();
      });
    }
    if (!conn.socket.write(frame)) conn.blocked = true;
    this.#counters.framesOut++;
    this.#counters.bytesOut += frame.byteLength;
  }

  #dial(peer: PeerState): void {
    if (this.#state !== 'started' || peer.out !== null) return;
    const socket = connect({
      host: peer.address.host,
      port: peer.address.port,
      secureContext: this.#clientContext,
      minVersion: TLS_VERSION,
      maxVersion: TLS_VERSION,
      rejectUnauthorized: true,
      checkServerIdentity: (host, cert) => this.#checkServer(peer, host, cert),
    });
    socket.setNoDelay(true);
    const conn = this.#newConn(socket, 'out', peer);
    peer.out = conn;
    conn.handshakeTimer = setTimeout(() => {
      if (conn.up) return;
      this.#counters.connectionsRejected++;
      this.#log.debug({ peer: peer.id }, 'peer did not answer within the handshake timeout');
      socket.destroy();
    }, this.#timing.handshakeTimeoutMs);
    socket.on('error', (error: NodeJS.ErrnoException) => {
      // A refused or reset connection is the normal sight of a peer that is down; TLS failures are not.
      if (isTlsFailure(error)) {
        this.#counters.connectionsRejected++;
        this.#log.warn({ peer: peer.id, err: error.message }, 'TLS to peer failed');
      } else {
        this.#log.debug({ peer: peer.id, err: error.message }, 'peer connection error');
      }
    });
  }

  #checkServer(peer: PeerState, host: string, cert: PeerCertificate): Error | undefined {
    const hostError = checkServerIdentity(host, cert);
    if (hostError !== undefined) return hostError;
    const id = validatorIdFromCommonName(cert.subject?.CN);
    if (id === peer.id) return undefined;
    this.#counters.connectionsRejected++;
    this.#log.warn(
      { peer: peer.id, presented: cert.subject?.CN },
      'the peer at this address presented another identity; refusing it',
    );
    return new Error(
      `expected ${validatorCommonName(peer.id)} at ${host}:${peer.address.port}, ` +
        `the server presented ${JSON.stringify(cert.subject?.CN)}`,
    );
  }

  #onInbound(socket: TLSSocket): void {
    socket.setNoDelay(true);
    const cert = socket.getPeerCertificate();
    const commonName = cert?.subject?.CN;
    const id = validatorIdFromCommonName(commonName);
    const peer = id === null ? undefined : this.#peers.get(id);
    if (!socket.authorized || peer === undefined) {
      this.#counters.connectionsRejected++;
      this.#log.warn(
        { remote: `${socket.remoteAddress}:${socket.remotePort}`, commonName },
        'refused a peer connection: its certificate names no other validator of this network',
      );
      socket.destroy();
      return;
    }
    // A new connection from the same validator supersedes the old one (the peer restarted or redialled).
    peer.in?.socket.destroy();
    const conn = this.#newConn(socket, 'in', peer);
    conn.up = true;
    peer.in = conn;
    socket.on('error', (error) =>
      this.#log.debug({ peer: peer.id, err: error.message }, 'inbound peer error'),
    );
    // The first frame tells the dialler that its certificate was accepted.
    this.#write(conn, keepaliveFrame);
  }

  #newConn(socket: TLSSocket, direction: 'out' | 'in', peer: PeerState): Conn {
    const conn: Conn = {
      socket,
      direction,
      peer,
      reader: new LinkReader(peer.id, this.#frameLimitBytes, this.#counters, (from, message) =>
        this.#handlers.message(from, message),
      ),
      lastFrameMs: performance.now(),
      up: false,
      blocked: false,
      corked: false,
      handshakeTimer: null,
    };
    socket.on('data', (chunk: Buffer) => this.#onData(conn, chunk));
    socket.on('drain', () => {
      conn.blocked = false;
      if (conn.direction === 'out') this.#flush(peer);
    });
    socket.on('close', () => this.#onClose(conn));
    return conn;
  }

  #onData(conn: Conn, chunk: Buffer): void {
    if (this.#state !== 'started') return;
    const result = conn.reader.push(chunk);
    if (typeof result !== 'number') {
      this.#log.warn(
        { peer: conn.peer.id, direction: conn.direction, reason: result.kind, detail: result.detail },
        'closing a peer link that sent invalid data',
      );
      conn.socket.destroy();
      return;
    }
    if (result === 0) return;
    conn.lastFrameMs = performance.now();
    conn.peer.lastSeenMs = this.#now();
    if (conn.direction === 'out' && !conn.up) {
      conn.up = true;
      if (conn.handshakeTimer !== null) clearTimeout(conn.handshakeTimer);
      conn.handshakeTimer = null;
      conn.peer.attempts = 0;
      this.#log.info({ peer: conn.peer.id }, 'peer link up');
      this.#setConnected(conn.peer, true);
      this.#flush(conn.peer);
    }
  }

  #onClose(conn: Conn): void {
    if (conn.handshakeTimer !== null) clearTimeout(conn.handshakeTimer);
    conn.handshakeTimer = null;
    conn.reader.close();
    const peer = conn.peer;
    if (conn.direction === 'in') {
      if (peer.in === conn) peer.in = null;
      if (this.#state === 'started') this.#counters.linksLost++;
      return;
    }
    if (peer.out !== conn) return;
    peer.out = null;
    if (this.#state !== 'started') return;
    if (conn.up) {
      this.#counters.linksLost++;
      this.#log.info({ peer: peer.id }, 'peer link down');
      this.#setConnected(peer, false);
    }
    const delayMs = backoffDelayMs(
      peer.attempts++,
      this.#timing.reconnectMsMin,
      this.#timing.reconnectMsMax,
      this.#random,
    );
    peer.reconnectTimer = setTimeout(() => {
      peer.reconnectTimer = null;
      this.#dial(peer);
    }, delayMs);
  }

  #setConnected(peer: PeerState, connected: boolean): void {
    if (peer.connected === connected) return;
    peer.connected = connected;
    this.#counters.peersConnected += connected ? 1 : -1;
    this.#handlers.status({ id: peer.id, connected, lastSeenMs: peer.lastSeenMs });
  }

  /** Keepalives out, idle links closed. */
  #tick(): void {
    const now = performance.now();
    for (const peer of this.#peers.values()) {
      for (const conn of [peer.out, peer.in]) {
        if (conn === null || !conn.up) continue;
        if (now - conn.lastFrameMs > this.#timing.idleTimeoutMs) {
          this.#log.info(
            { peer: peer.id, direction: conn.direction, silentMs: now - conn.lastFrameMs },
            'closing an idle peer link',
          );
          conn.socket.destroy();
          continue;
        }
        this.#write(conn, keepaliveFrame);
      }
    }
  }
}

/**
 * A message may be written now: the link is up, the socket is under its high-water mark, and it
 * is not being torn down (destroy() closes it only on a later tick; frames meanwhile wait in the queue).
 */
function writable(conn: Conn): boolean {
  return conn.up && !conn.blocked && !conn.socket.destroyed;
}

function isTlsFailure(error: NodeJS.ErrnoException): boolean {
  const code = error.code ?? '';
  return (
    code.startsWith('ERR_SSL') ||
    code.startsWith('ERR_TLS') ||
    code.includes('CERT') ||
    code === 'DEPTH_ZERO_SELF_SIGNED_CERT' ||
    code === 'UNABLE_TO_VERIFY_LEAF_SIGNATURE'
  );
}

/** The client-side TLS context; a typed error when the key and certificate are unusable or do not match. */
function secureContextFor(tls: TlsCredentials): SecureContext {
  try {
    return createSecureContext({
      ca: [tls.caPem],
      cert: tls.certPem,
      key: tls.keyPem,
      minVersion: TLS_VERSION,
      maxVersion: TLS_VERSION,
    });
  } catch (error) {
    throw new ConfigChainError(
      'NET_TLS_CREDENTIALS',
      `the peer TLS credentials cannot be used (${(error as Error).message}); ` +
        "check ca/ca.crt and this validator's tls.crt and tls.key, or recreate them with configchain init",
      { reason: (error as Error).message },
    );
  }
}

/** The CN of a PEM certificate, read with node's own parser. */
function commonNameOf(certPem: string): string | null {
  let subject: string;
  try {
    subject = new X509Certificate(certPem).subject;
  } catch {
    return null;
  }
  const match = /(?:^|\n)CN=([^\n]*)/.exec(subject);
  return match?.[1] ?? null;
}
