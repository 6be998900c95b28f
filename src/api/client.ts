/**
 * The typed HTTP client of a validator's API, built from the same route table as the server
 * (src/api/routes.ts), on fetch. The CLI, the device agent, `configchain up` and the benchmarks
 * use it. Answers a route documents (including its documented error statuses, such as 422 for a
 * rejected transaction or 503 from /ready) come back as {status, body}; anything else throws an
 * ApiRequestError carrying the server's error code and message.
 */
import type { TargetProof, TxProof } from '../device/contract.ts';
import type { Height, TxId } from '../encoding/brand.ts';
import { ConfigChainError } from '../errors.ts';
import type { DeviceEntry, RolloutEntry, Transaction } from '../ledger/types.ts';
import type { BlockEvent, NodeStatus } from './facade.ts';
import {
  type RouteAnswer,
  type RouteBody,
  type RouteName,
  type RouteParams,
  type RouteQuery,
  routePath,
  routes,
} from './routes.ts';

export class ApiRequestError extends ConfigChainError<string, { status: number; url: string }> {
  readonly status: number;

  constructor(code: string, message: string, status: number, url: string) {
    super(code, message, { status, url });
    this.name = 'ApiRequestError';
    this.status = status;
  }
}

/**
 * Signs requests as a device (the header of src/device/contract.ts). Kept as an interface so this
 * client needs no node:crypto and also runs in a browser; deviceSigner() in ./device-signer.ts
 * makes one from a device key.
 */
export interface DeviceSigner {
  readonly deviceId: string;
  /** The Authorization header for one request: method, path with query, the exact body bytes. */
  authorize(method: string, path: string, body: Uint8Array): string | Promise<string>;
}

export interface ClientOptions {
  /** Per-request timeout; default 10 s. */
  readonly timeoutMs?: number;
  /** When given, every request is signed as this device. */
  readonly device?: DeviceSigner;
}

/** One server-sent event of GET /v1/events. */
export type NodeEvent =
  | { readonly event: 'block'; readonly data: BlockEvent }
  | { readonly event: 'status'; readonly data: NodeStatus };

/** A content copy read from a validator. */
export interface ContentAnswer {
  readonly bytes: Uint8Array;
  readonly mediaType: string;
  readonly sha256: string;
}

type Input<N extends RouteName> = (RouteParams<N> extends undefined ? unknown : { params: RouteParams<N> }) &
  (RouteQuery<N> extends undefined ? unknown : { query?: RouteQuery<N> }) &
  (RouteBody<N> extends undefined ? unknown : { body: RouteBody<N> });

/** The article's three answers and the API's own failures, as an outcome. */
export type ValidateAnswer =
  | { readonly outcome: 'current' | 'added' | 'invalid'; readonly status: number; readonly text: string }
  | { readonly outcome: 'error' | 'unavailable'; readonly status: number; readonly text: string };

export class ApiClient {
  readonly baseUrl: string;
  private readonly timeoutMs: number;
  private readonly signer: DeviceSigner | undefined;

  constructor(baseUrl: string, options: ClientOptions = {}) {
    this.baseUrl = baseUrl.replace(/\/+$/, '');
    this.timeoutMs = options.timeoutMs ?? 10_000;
    this.signer = options.device;
  }

  /** Headers for one request: the device signature when the client signs as a device. */
  private async headersFor(
    method: string,
    url: string,
    body: Uint8Array | undefined,
  ): Promise<Record<string, string>> {
    const headers: Record<string, string> = {};
    if (body !== undefined) headers['content-type'] = 'application/json';
    if (this.signer !== undefined) {
      const path = url.slice(this.baseUrl.length) || '/';
      headers.authorization = await this.signer.authorize(method, path, body ?? new Uint8Array(0));
    }
    return headers;
  }

  /** Calls one route by name; the input and the answer are typed by the route's schemas. */
  async call<N extends RouteName>(name: N, input: Input<N>): Promise<RouteAnswer<N>> {
    const def = routes[name];
    const i = input as { params?: Record<string, unknown>; query?: Record<string, unknown>; body?: unknown };
    let url = this.baseUrl + routePath(def.url, i.params);
    if (i.query !== undefined) {
      const search = new URLSearchParams();
      for (const [k, v] of Object.entries(i.query)) if (v !== undefined) search.set(k, String(v));
      const qs = search.toString();
      if (qs !== '') url += `?${qs}`;
    }
    const bodyBytes = i.body === undefined ? undefined : new TextEncoder().encode(JSON.stringify(i.body));
    const response = await fetch(url, {
      method: def.method,
      signal: AbortSignal.timeout(this.timeoutMs),
      headers: await this.headersFor(def.method, url, bodyBytes),
      ...(bodyBytes === undefined ? {} : { body: bodyBytes }),
    });
    const text = await response.text();
    if (!(response.status in def.responses)) throw answerError(def.method, url, response, text);
    return { status: response.status, body: parseBody(response, text) } as RouteAnswer<N>;
  }

  /**
   * POST /validateHash as the article's device does. Never throws for an HTTP answer: a 503 is
   * 'unavailable' (no decision), a 400 'error'; network failures do throw.
   */
  async validateHash(hash: string, target?: string): Promise<ValidateAnswer> {
    const answer = await this.call('validateHash', {
      body: target === undefined ? { hash } : { hash, target },
    });
    const text = answer.body as string;
    if (answer.status === 200) {
      if (text === 'Success: Current hash is valid') return { outcome: 'current', status: 200, text };
      if (text === 'Success: Hash is valid. New block was added to the chain.') {
        return { outcome: 'added', status: 200, text };
      }
      return { outcome: 'invalid', status: 200, text };
    }
    return { outcome: answer.status === 503 ? 'unavailable' : 'error', status: answer.status, text };
  }

  async chain() {
    return (await this.call('chain', {})).body;
  }

  async nodes() {
    return (await this.call('nodes', {})).body.nodes;
  }

  async status() {
    return (await this.call('status', {})).body;
  }

  async validators() {
    return (await this.call('validators', {})).body;
  }

  async blocks(from: number, limit?: number) {
    return (await this.call('blocks', { query: limit === undefined ? { from } : { from, limit } })).body;
  }

  async block(height: Height | number) {
    return (await this.call('blockByHeight', { params: { height } })).body;
  }

  async blockByHash(hash: string) {
    return (await this.call('blockByHash', { params: { hash } })).body;
  }

  async tx(id: TxId | string) {
    return (await this.call('tx', { params: { id } })).body;
  }

  async target(target: string) {
    return (await this.call('target', { params: { target } })).body;
  }

  /** A target's entries and device reports, newest first. */
  async targetHistory(target: string, limit?: number) {
    return (await this.call('targetHistory', { params: { target }, ...(limit ? { query: { limit } } : {}) }))
      .body;
  }

  async submitTx(tx: Transaction, waitMs = 0) {
    return (await this.call('submitTx', { body: { tx: tx as never, waitMs } })).body;
  }

  async health(): Promise<boolean> {
    try {
      return (await this.call('health', {})).status === 200;
    } catch {
      return false;
    }
  }

  /** Readiness; a node that does not answer is reported as not ready with the reason. */
  async ready(): Promise<{ ready: boolean; reasons: readonly string[] }> {
    try {
      return (await this.call('ready', {})).body;
    } catch (err) {
      return { ready: false, reasons: [`${this.baseUrl} does not answer: ${(err as Error).message}`] };
    }
  }

  async metrics(): Promise<string> {
    return (await this.call('metrics', {})).body as string;
  }

  /** GET /v1/targets/:target/proof (sign as the device on networks that need it). */
  async targetProof(target: string): Promise<TargetProof> {
    return (await this.call('targetProof', { params: { target } })).body as unknown as TargetProof;
  }

  async txProof(id: TxId | string): Promise<TxProof> {
    return (await this.call('txProof', { params: { id } })).body as unknown as TxProof;
  }

  /** One page of the device registry; pass the answer's `next` as `after` for the next page. */
  async devices(
    after?: string,
    limit?: number,
  ): Promise<{ devices: readonly DeviceEntry[]; next: string | null }> {
    const query = { ...(after === undefined ? {} : { after }), ...(limit === undefined ? {} : { limit }) };
    const body = (await this.call('devices', { query })).body;
    return { devices: body.devices as unknown as DeviceEntry[], next: body.next };
  }

  async device(id: string): Promise<DeviceEntry> {
    return (await this.call('device', { params: { id } })).body as unknown as DeviceEntry;
  }

  /** GET /v1/rollouts: the staged rollouts, newest first. */
  async rollouts(limit?: number): Promise<readonly RolloutEntry[]> {
    const body = (await this.call('rollouts', { query: limit === undefined ? {} : { limit } })).body;
    return body.rollouts as unknown as RolloutEntry[];
  }

  /** GET /v1/rollouts/:id; throws ApiRequestError with code ROLLOUT_NOT_FOUND when there is none. */
  async rollout(id: string): Promise<RolloutEntry> {
    return (await this.call('rollout', { params: { id } })).body as unknown as RolloutEntry;
  }

  /** A validator's copy of released content; undefined when it holds none (404). */
  async content(sha256: string): Promise<ContentAnswer | undefined> {
    return this.readContent(routePath(routes.content.url, { sha256 }));
  }

  /** The content of a target's committed version, from the validator's copy; undefined on 404. */
  async versionContent(target: string, version: number): Promise<ContentAnswer | undefined> {
    return this.readContent(routePath(routes.versionContent.url, { target, version }));
  }

  /** HEAD /v1/content/:sha256: does this validator hold a copy? */
  async holdsContent(sha256: string): Promise<boolean> {
    const url = this.baseUrl + routePath(routes.content.url, { sha256 });
    const response = await fetch(url, {
      method: 'HEAD',
      signal: AbortSignal.timeout(this.timeoutMs),
      headers: await this.headersFor('HEAD', url, undefined),
    });
    if (response.status === 200) return true;
    if (response.status === 404) return false;
    throw new ApiRequestError(
      `HTTP_${response.status}`,
      `HEAD ${url} answered ${response.status}`,
      response.status,
      url,
    );
  }

  private async readContent(path: string): Promise<ContentAnswer | undefined> {
    const url = this.baseUrl + path;
    const response = await fetch(url, {
      signal: AbortSignal.timeout(this.timeoutMs),
      headers: await this.headersFor('GET', url, undefined),
    });
    if (response.status === 404) {
      await response.body?.cancel();
      return undefined;
    }
    if (response.status !== 200) {
      const text = await response.text();
      throw answerError('GET', url, response, text);
    }
    const bytes = new Uint8Array(await response.arrayBuffer());
    return {
      bytes,
      mediaType: response.headers.get('content-type') ?? 'application/octet-stream',
      sha256: (response.headers.get('etag') ?? '').replaceAll('"', ''),
    };
  }

  /**
   * GET /v1/events as an async iterator of block and status events, until `signal` aborts or the
   * server ends the stream. Comments (keepalives) are skipped.
   */
  async *events(signal?: AbortSignal): AsyncGenerator<NodeEvent> {
    const url = this.baseUrl + routes.events.url;
    const response = await fetch(url, {
      headers: { ...(await this.headersFor('GET', url, undefined)), accept: 'text/event-stream' },
      ...(signal === undefined ? {} : { signal }),
    });
    if (response.status !== 200 || response.body === null) {
      const text = await response.text();
      throw answerError('GET', url, response, text);
    }
    const decoder = new TextDecoder();
    let buffer = '';
    const reader = response.body.getReader();
    try {
      for (;;) {
        const { done, value } = await reader.read();
        if (done) return;
        buffer += decoder.decode(value, { stream: true });
        for (let end = buffer.indexOf('\n\n'); end >= 0; end = buffer.indexOf('\n\n')) {
          const frame = buffer.slice(0, end);
          buffer = buffer.slice(end + 2);
          const parsed = parseFrame(frame);
          if (parsed !== undefined) yield parsed;
        }
      }
    } finally {
      reader.releaseLock();
      await response.body.cancel().catch(() => undefined);
    }
  }
}

/** A JSON answer parsed; any other answer as its text. */
function parseBody(response: Response, text: string): unknown {
  const contentType = response.headers.get('content-type') ?? '';
  return contentType.includes('json') && text !== '' ? JSON.parse(text) : text;
}

/**
 * The error for an answer the caller cannot use: the server's stable code and its message (which
 * says what to do) when the answer is the API's JSON error body, else HTTP_<status> and the text.
 */
function answerError(method: string, url: string, response: Response, text: string): ApiRequestError {
  let body: unknown;
  try {
    body = parseBody(response, text);
  } catch {
    // Not JSON after all: the text itself is reported below.
  }
  const err = body as { code?: unknown; message?: unknown } | null | undefined;
  const status = response.status;
  return new ApiRequestError(
    typeof err?.code === 'string' ? err.code : `HTTP_${status}`,
    `${method} ${url} answered ${status}: ${typeof err?.message === 'string' ? err.message : text.slice(0, 300)}`,
    status,
    url,
  );
}

/** One server-sent event frame; undefined for comments, retry lines and unknown events. */
function parseFrame(frame: string): NodeEvent | undefined {
  let event = 'message';
  const data: string[] = [];
  for (const line of frame.split('\n')) {
    if (line.startsWith('event:')) event = line.slice(6).trim();
    else if (line.startsWith('data:')) data.push(line.slice(5).trimStart());
  }
  if (data.length === 0 || (event !== 'block' && event !== 'status')) return undefined;
  return { event, data: JSON.parse(data.join('\n')) } as NodeEvent;
}
