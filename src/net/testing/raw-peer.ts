/**
 * A raw TLS client for tests that attack a peer port (issue 4 acceptance (f)): it connects with
 * any identity, or none, writes whatever bytes it is given, and reports what the server did.
 * It never checks the server's identity, since it only probes.
 */
import { connect, type TLSSocket } from 'node:tls';
import { encodeFrame } from '../frames.ts';

export interface RawPeerOptions {
  readonly host?: string;
  readonly port: number;
  /** The CA to present to the server as trusted; irrelevant to the probe, required by node:tls. */
  readonly caPem: string;
  /** The client certificate and key to present; omit to present none. */
  readonly identity?: { readonly certPem: string; readonly keyPem: string };
}

export interface RawPeerResult {
  /** The TLS handshake completed on the client side (in TLS 1.3 the server may still refuse the client after). */
  readonly handshake: boolean;
  /** Bytes the server sent (a validator that accepts us sends keepalive frames). */
  readonly bytesReceived: number;
  /** The server closed the connection before waitMs passed. */
  readonly closedByServer: boolean;
}

/** Opens a raw TLS connection; exported so a test can hold it open or stay silent. */
export function rawPeerSocket(options: RawPeerOptions): TLSSocket {
  const socket = connect({
    host: options.host ?? '127.0.0.1',
    port: options.port,
    ca: [options.caPem],
    ...(options.identity === undefined
      ? {}
      : { cert: options.identity.certPem, key: options.identity.keyPem }),
    minVersion: 'TLSv1.3',
    rejectUnauthorized: false,
  });
  socket.on('error', () => {});
  return socket;
}

/** Connects, writes bytes once the handshake completes, and watches for waitMs. */
export async function probePeerPort(
  options: RawPeerOptions,
  bytes: Uint8Array,
  waitMs = 300,
): Promise<RawPeerResult> {
  const socket = rawPeerSocket(options);
  let handshake = false;
  let bytesReceived = 0;
  let closedByServer = false;
  socket.on('secureConnect', () => {
    handshake = true;
    socket.write(bytes);
  });
  socket.on('data', (chunk: Buffer) => {
    bytesReceived += chunk.length;
  });
  await new Promise<void>((resolve) => {
    const timer = setTimeout(resolve, waitMs);
    socket.once('close', () => {
      closedByServer = true;
      clearTimeout(timer);
      resolve();
    });
  });
  socket.destroy();
  return { handshake, bytesReceived, closedByServer };
}

/** One frame holding a message, as a validator would send it. */
export function messageFrame(message: object): Buffer {
  return encodeFrame(Buffer.from(JSON.stringify(message), 'utf8'));
}
