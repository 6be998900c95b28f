/**
 * Adversaries for the attack suite of issue 5: real HTTP servers on 127.0.0.1 that a test puts
 * between a device and the honest system. Each one proxies a real upstream (the real config
 * server A, or a real validator's API) and lies in one chosen way:
 *
 * - startCompromisedConfigServer: serves other bytes for an artifact, an older version's bytes,
 *   or endless data (it keeps streaming past any release size and counts what it sent);
 * - startLyingValidator: rewrites the TargetProof JSON of GET /v1/targets/:target/proof with one
 *   of the forgeries of forgeProof() (a forged header, a certificate with too few, unknown or
 *   duplicated signers, a tampered state proof, or a fully consistent forged entry that only the
 *   signatures can expose);
 * - startFreezingCache: records the first proof it sees for each path and serves it forever.
 *
 * The lie is a mutable field, so one adversary can be honest first and turn later. Every
 * adversary forwards the request's method, path, query and headers unchanged (a device's signed
 * Authorization covers the path, so the proxy must not alter it), and bounds what it buffers.
 */
import { generateKeyPairSync } from 'node:crypto';
import {
  createServer,
  request as httpRequest,
  type IncomingHttpHeaders,
  type IncomingMessage,
  type Server,
  type ServerResponse,
} from 'node:http';
import type { AddressInfo } from 'node:net';
import { commitPayload, quorumSize } from '../../src/consensus/certificate.ts';
import { Domain } from '../../src/crypto/domains.ts';
import { sign } from '../../src/crypto/ed25519.ts';
import { sha256 } from '../../src/crypto/hash.ts';
import type { TargetProof } from '../../src/device/contract.ts';
import type { BlockHash, Hash32Hex, ValidatorId } from '../../src/encoding/brand.ts';
import { fromHex, toHex } from '../../src/encoding/bytes.ts';
import { blockHash } from '../../src/ledger/block.ts';
import { entryHash } from '../../src/ledger/state.ts';
import type { CommitCertificate, TargetEntry } from '../../src/ledger/types.ts';
import { keyPath } from '../../src/merkle/sparse.ts';

/** No adversary buffers more than this of one request or upstream answer. */
const BUFFERED_BYTES_MAX = 16 * 1024 * 1024;
/** Upstream requests give up after this long, so a dead upstream cannot hang a test. */
const UPSTREAM_TIMEOUT_MS = 15_000;

export interface Adversary {
  /** Base URL, e.g. http://127.0.0.1:41234 */
  readonly url: string;
  /** Paths (with query) of every request received, oldest first (the last 1,000). */
  readonly requests: string[];
  close(): Promise<void>;
}

interface UpstreamAnswer {
  readonly status: number;
  readonly headers: IncomingHttpHeaders;
  readonly body: Buffer;
}

// Plumbing ----------------------------------------------------------------------------------------

async function readBounded(stream: IncomingMessage): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let total = 0;
  for await (const chunk of stream) {
    const buffer = chunk as Buffer;
    total += buffer.byteLength;
    if (total > BUFFERED_BYTES_MAX) throw new Error(`adversary: more than ${BUFFERED_BYTES_MAX} bytes`);
    chunks.push(buffer);
  }
  return Buffer.concat(chunks);
}

/** Headers a proxy must not copy: they describe one hop or the body it is about to change. */
const HOP_HEADERS = new Set([
  'connection',
  'keep-alive',
  'transfer-encoding',
  'content-length',
  'host',
  'upgrade',
  'te',
  'trailer',
  'proxy-connection',
]);

function endToEnd(headers: IncomingHttpHeaders): Record<string, string | string[]> {
  const out: Record<string, string | string[]> = {};
  for (const [name, value] of Object.entries(headers)) {
    if (value !== undefined && !HOP_HEADERS.has(name)) out[name] = value;
  }
  return out;
}

/** Sends a request to the upstream and buffers the answer (bounded). */
function askUpstream(
  upstream: string,
  method: string,
  path: string,
  headers: IncomingHttpHeaders,
  body: Buffer,
): Promise<UpstreamAnswer> {
  const base = new URL(upstream);
  return new Promise((done, fail) => {
    const outgoing = httpRequest(
      {
        host: base.hostname,
        port: base.port,
        method,
        path,
        headers: { ...endToEnd(headers), 'content-length': String(body.byteLength) },
        timeout: UPSTREAM_TIMEOUT_MS,
      },
      (incoming) => {
        readBounded(incoming).then(
          (buffer) => done({ status: incoming.statusCode ?? 502, headers: incoming.headers, body: buffer }),
          fail,
        );
      },
    );
    outgoing.once('timeout', () => outgoing.destroy(new Error(`adversary: upstream ${upstream} timed out`)));
    outgoing.once('error', fail);
    outgoing.end(body);
  });
}

function reply(res: ServerResponse, answer: UpstreamAnswer): void {
  res.writeHead(answer.status, { ...endToEnd(answer.headers), 'content-length': answer.body.byteLength });
  res.end(answer.body);
}

type Handler = (req: IncomingMessage, res: ServerResponse, body: Buffer) => Promise<void>;

async function serve(handler: Handler): Promise<{ server: Server; adversary: Adversary }> {
  const requests: string[] = [];
  const server = createServer((req, res) => {
    requests.push(req.url ?? '');
    if (requests.length > 1000) requests.shift();
    readBounded(req)
      .then((body) => handler(req, res, body))
      .catch((error: unknown) => {
        if (!res.headersSent) {
          res.writeHead(502, { 'content-type': 'text/plain' });
          res.end(`adversary failed: ${String(error)}`);
        } else {
          res.destroy();
        }
      });
  });
  // The default 5 s keep-alive would keep idle sockets from the device around after close().
  server.keepAliveTimeout = 1000;
  await new Promise<void>((done, fail) => {
    server.once('error', fail);
    server.listen(0, '127.0.0.1', () => done());
  });
  const { port } = server.address() as AddressInfo;
  const adversary: Adversary = {
    url: `http://127.0.0.1:${port}`,
    requests,
    close: () =>
      new Promise<void>((done) => {
        server.close(() => done());
        server.closeAllConnections();
      }),
  };
  return { server, adversary };
}

// A compromised config server -----------------------------------------------------------------

export type ConfigServerLie =
  | { readonly kind: 'honest' }
  /** Every content request (by hash, by version, latest) answers these bytes instead. */
  | { readonly kind: 'substitute'; readonly bytes: Buffer }
  /** Every content request answers the bytes of this (older, really released) version. */
  | { readonly kind: 'older'; readonly target: string; readonly version: number }
  /**
   * Every content request answers an endless chunked stream; it stops only when the client
   * closes the connection, or at capBytes so that a test of a broken device still ends.
   */
  | { readonly kind: 'endless'; readonly capBytes: number };

export interface EndlessStream {
  /** Payload bytes handed to the socket before the connection closed (or the cap was hit). */
  readonly bytesSent: number;
  /** True when the client closed the connection before the cap; false when the cap ended it. */
  readonly closedByClient: boolean;
}

export interface CompromisedConfigServer extends Adversary {
  lie: ConfigServerLie;
  /** One entry per endless stream, resolved when that stream ended. */
  readonly endless: Promise<EndlessStream>[];
}

/** The config server's content routes (src/configserver/server.ts). */
const CONTENT_PATH = /^\/v1\/(artifacts\/[0-9a-f]{64}|targets\/[^/]+\/(versions\/\d+|latest))$/;

export async function startCompromisedConfigServer(upstream: string): Promise<CompromisedConfigServer> {
  const endless: Promise<EndlessStream>[] = [];
  const state: { lie: ConfigServerLie } = { lie: { kind: 'honest' } };
  const { adversary } = await serve(async (req, res, body) => {
    const url = req.url ?? '/';
    const path = url.split('?')[0] ?? url;
    const lie = state.lie;
    if (req.method !== 'GET' || !CONTENT_PATH.test(path) || lie.kind === 'honest') {
      reply(res, await askUpstream(upstream, req.method ?? 'GET', url, req.headers, body));
      return;
    }
    if (lie.kind === 'endless') {
      endless.push(streamEndlessly(res, lie.capBytes));
      return;
    }
    // Ask the upstream for what was requested, so the answer keeps the real headers (a lying
    // server claims the requested version and hash), then swap the body.
    const { range: _range, 'if-none-match': _etag, ...headers } = req.headers;
    const real = await askUpstream(upstream, 'GET', url, headers, Buffer.alloc(0));
    let bytes: Buffer;
    if (lie.kind === 'substitute') {
      bytes = lie.bytes;
    } else {
      const older = await askUpstream(
        upstream,
        'GET',
        `/v1/targets/${encodeURIComponent(lie.target)}/versions/${lie.version}`,
        {},
        Buffer.alloc(0),
      );
      if (older.status !== 200) throw new Error(`upstream has no version ${lie.version} of ${lie.target}`);
      bytes = older.body;
    }
    // A lying server answers 200 even for a hash the real one does not hold.
    const headers200 = real.status === 200 ? real.headers : { 'content-type': 'application/octet-stream' };
    reply(res, { status: 200, headers: headers200, body: bytes });
  });
  return {
    ...adversary,
    endless,
    get lie() {
      return state.lie;
    },
    set lie(value: ConfigServerLie) {
      state.lie = value;
    },
  };
}

/**
 * Streams a repeating pattern with backpressure until the client closes or capBytes is reached.
 * It counts a chunk as sent once the socket accepted it, so bytesSent is an upper bound on what
 * the client could have read.
 */
function streamEndlessly(res: ServerResponse, capBytes: number): Promise<EndlessStream> {
  const chunk = Buffer.alloc(16 * 1024, 0x41);
  res.writeHead(200, { 'content-type': 'application/octet-stream', 'cache-control': 'no-cache' });
  return new Promise((done) => {
    let bytesSent = 0;
    let finished = false;
    const finish = (closedByClient: boolean) => {
      if (finished) return;
      finished = true;
      done({ bytesSent, closedByClient });
    };
    res.once('close', () => finish(bytesSent < capBytes));
    const pump = () => {
      while (!res.destroyed && bytesSent < capBytes) {
        bytesSent += chunk.byteLength;
        if (!res.write(chunk)) {
          res.once('drain', pump);
          return;
        }
      }
      if (bytesSent >= capBytes && !res.destroyed) {
        res.end();
        finish(false);
      }
    };
    pump();
  });
}

// A lying validator ----------------------------------------------------------------------------

export type ProofForgery =
  /** header.stateRoot changed: the header no longer hashes to the certified block hash. */
  | 'header-state-root'
  /** header.timestampMs set to now, to make a stale header look fresh. */
  | 'header-timestamp'
  /** entry.version raised: the entry no longer matches the state proof's leaf. */
  | 'entry-version'
  /** One signature short of a quorum (2f of 3f+1). */
  | 'too-few-signers'
  /** Every signature replaced by one from a key no genesis names (validator ids kept). */
  | 'unknown-key'
  /** One signature attributed to validator n, which genesis does not have. */
  | 'unknown-signer'
  /** A quorum counted with one validator's signature twice and another's dropped. */
  | 'duplicate-signer'
  /** One sibling hash of the state proof flipped (or one added, when it has none). */
  | 'state-proof'
  /**
   * The strongest liar: a new entry (higher version, another hash), with the state proof's leaf,
   * the header's state root and the certificate's block hash all recomputed to agree. Only the
   * validators' signatures are left to expose it.
   */
  | 'consistent-forged-entry';

export const allProofForgeries: readonly ProofForgery[] = [
  'header-state-root',
  'header-timestamp',
  'entry-version',
  'too-few-signers',
  'unknown-key',
  'unknown-signer',
  'duplicate-signer',
  'state-proof',
  'consistent-forged-entry',
];

/** The hash the consistent forgery claims for the target: bytes no admin ever released. */
export const forgedSha256 = toHex(sha256('a configuration no admin released')) as Hash32Hex;

function flipHex(hex: string): string {
  const last = hex.at(-1) ?? '0';
  return `${hex.slice(0, -1)}${last === '0' ? '1' : '0'}`;
}

/**
 * Returns a forged copy of a TargetProof (the input is not modified). `validators` is n, the size
 * of the validator set, from which the forgeries that play with the quorum count.
 */
export function forgeProof(proof: TargetProof, forgery: ProofForgery, validators = 4): TargetProof {
  const quorum = quorumSize(validators);
  const copy = structuredClone(proof) as {
    -readonly [K in keyof TargetProof]: TargetProof[K];
  };
  const header = { ...copy.header };
  const signatures = [...copy.certificate.signatures];
  switch (forgery) {
    case 'header-state-root':
      return { ...copy, header: { ...header, stateRoot: flipHex(header.stateRoot) as Hash32Hex } };
    case 'header-timestamp':
      return { ...copy, header: { ...header, timestampMs: Date.now() } };
    case 'entry-version': {
      if (copy.entry === null) throw new Error('forgeProof: the proof has no entry to change');
      return { ...copy, entry: { ...copy.entry, version: copy.entry.version + 1 } };
    }
    case 'too-few-signers': {
      return { ...copy, certificate: { ...copy.certificate, signatures: signatures.slice(0, quorum - 1) } };
    }
    case 'unknown-key': {
      const { privateKey } = generateKeyPairSync('ed25519');
      const c = copy.certificate;
      const payload = commitPayload(header.chainId, c.view, c.height, c.blockHash);
      const signature = sign(Domain.pbftCommit, payload, privateKey);
      return {
        ...copy,
        certificate: { ...c, signatures: signatures.map((s) => ({ validator: s.validator, signature })) },
      };
    }
    case 'unknown-signer': {
      const last = signatures.at(-1);
      if (last === undefined) throw new Error('forgeProof: the certificate has no signatures');
      const others = signatures.slice(0, -1);
      return {
        ...copy,
        certificate: {
          ...copy.certificate,
          signatures: [...others, { validator: validators as ValidatorId, signature: last.signature }],
        },
      };
    }
    case 'duplicate-signer': {
      const first = signatures[0];
      if (first === undefined) throw new Error('forgeProof: the certificate has no signatures');
      return {
        ...copy,
        certificate: { ...copy.certificate, signatures: [first, ...signatures.slice(0, quorum - 1)] },
      };
    }
    case 'state-proof': {
      // Flip the deepest sibling; a proof in a one-entry tree has none, so it gets a made-up one.
      const siblings = [...copy.stateProof.siblings];
      const at = siblings.length - 1;
      if (at < 0) siblings.push(toHex(sha256('a made-up sibling')) as Hash32Hex);
      else siblings[at] = flipHex(siblings[at] as string) as Hash32Hex;
      return { ...copy, stateProof: { ...copy.stateProof, siblings } };
    }
    case 'consistent-forged-entry':
      return consistentForgery(copy);
  }
}

function consistentForgery(proof: TargetProof): TargetProof {
  if (proof.entry === null) throw new Error('forgeProof: the proof has no entry to replace');
  const entry: TargetEntry = { ...proof.entry, version: proof.entry.version + 1, sha256: forgedSha256 };
  const valueHash = entryHash(entry);
  const path = keyPath(`target/${entry.target}`);
  let current = sha256(Buffer.concat([Buffer.from([0x00]), path, fromHex(valueHash)]));
  const siblings = proof.stateProof.siblings;
  for (let depth = siblings.length - 1; depth >= 0; depth--) {
    const sibling = fromHex(siblings[depth] as string);
    const bit = ((path[depth >> 3] ?? 0) >> (7 - (depth & 7))) & 1;
    const [left, right] = bit === 0 ? [current, sibling] : [sibling, current];
    current = sha256(Buffer.concat([Buffer.from([0x01]), left, right]));
  }
  const header = { ...proof.header, stateRoot: toHex(current) as Hash32Hex };
  const certificate: CommitCertificate = { ...proof.certificate, blockHash: blockHash(header) as BlockHash };
  return {
    ...proof,
    header,
    certificate,
    entry,
    stateProof: { siblings, leaf: { path: toHex(path) as Hash32Hex, valueHash } },
  };
}

/** A named forgery, or any rewrite of the honest proof (for example, another target's proof). */
export type ProofLie = ProofForgery | ((honest: TargetProof) => unknown);

export interface LyingValidator extends Adversary {
  /** The lie applied to every target proof; null passes proofs through unchanged. */
  forgery: ProofLie | null;
  /** How many proofs it answered with a forgery. */
  readonly forged: number;
}

const PROOF_PATH = /^\/v1\/targets\/[^/]+\/proof$/;

export async function startLyingValidator(
  upstream: string,
  forgery: ProofLie | null,
  validators = 4,
): Promise<LyingValidator> {
  const state: { forgery: ProofLie | null; forged: number } = { forgery, forged: 0 };
  const { adversary } = await serve(async (req, res, body) => {
    const url = req.url ?? '/';
    const answer = await askUpstream(upstream, req.method ?? 'GET', url, req.headers, body);
    const path = url.split('?')[0] ?? url;
    if (state.forgery === null || !PROOF_PATH.test(path) || answer.status !== 200) {
      reply(res, answer);
      return;
    }
    const proof = JSON.parse(answer.body.toString('utf8')) as TargetProof;
    const lie = state.forgery;
    const rewritten = typeof lie === 'function' ? lie(proof) : forgeProof(proof, lie, validators);
    const forged = Buffer.from(JSON.stringify(rewritten), 'utf8');
    state.forged++;
    reply(res, { ...answer, body: forged });
  });
  return {
    ...adversary,
    get forgery() {
      return state.forgery;
    },
    set forgery(value: ProofLie | null) {
      state.forgery = value;
    },
    get forged() {
      return state.forged;
    },
  };
}

// A freezing cache -----------------------------------------------------------------------------

export interface FreezingCache extends Adversary {
  /** Proof paths it has frozen, with the answer it keeps serving. */
  readonly frozen: ReadonlyMap<string, Buffer>;
  /** How many answers came from the frozen copy. */
  readonly servedStale: number;
}

/**
 * Records the first successful answer of every proof path (GET /v1/targets/:target/proof and
 * GET /v1/tx/:id/proof) and answers it forever after; everything else is proxied.
 */
export async function startFreezingCache(upstream: string): Promise<FreezingCache> {
  const frozen = new Map<string, UpstreamAnswer>();
  const state = { servedStale: 0 };
  const { adversary } = await serve(async (req, res, body) => {
    const url = req.url ?? '/';
    const path = url.split('?')[0] ?? url;
    const isProof = req.method === 'GET' && (PROOF_PATH.test(path) || /^\/v1\/tx\/[^/]+\/proof$/.test(path));
    const cached = isProof ? frozen.get(path) : undefined;
    if (cached !== undefined) {
      state.servedStale++;
      reply(res, cached);
      return;
    }
    const answer = await askUpstream(upstream, req.method ?? 'GET', url, req.headers, body);
    if (isProof && answer.status === 200) frozen.set(path, answer);
    reply(res, answer);
  });
  return {
    ...adversary,
    get frozen() {
      return new Map([...frozen].map(([k, v]) => [k, v.body]));
    },
    get servedStale() {
      return state.servedStale;
    },
  };
}
