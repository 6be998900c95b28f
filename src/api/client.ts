/**
 * The typed HTTP client of a validator's API, built from the same route table as the server
 * (src/api/routes.ts), on fetch. The CLI, the device agent, `configchain up` and the benchmarks
 * use it. Answers a route documents (including its documented error statuses, such as 422 for a
 * rejected transaction or 503 from /ready) come back as {status, body}; anything else throws an
 * ApiRequestError carrying the server's error code and message.
 */
import type { Height, TxId } from '../encoding/brand.ts';
import { ConfigChainError } from '../errors.ts';
import type { Transaction } from '../ledger/types.ts';
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

export interface ClientOptions {
  /** Per-request timeout; default 10 s. */
  readonly timeoutMs?: number;
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

  constructor(baseUrl: string, options: ClientOptions = {}) {
    this.baseUrl = baseUrl.replace(/\/+$/, '');
    this.timeoutMs = options.timeoutMs ?? 10_000;
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
    const response = await fetch(url, {
      method: def.method,
      signal: AbortSignal.timeout(this.timeoutMs),
      ...(i.body !== undefined
        ? { body: JSON.stringify(i.body), headers: { 'content-type': 'application/json' } }
        : {}),
    });
    const text = await response.text();
    const contentType = response.headers.get('content-type') ?? '';
    const body: unknown = contentType.includes('json') && text !== '' ? JSON.parse(text) : text;
    if (!(response.status in def.responses)) {
      const err = body as { code?: unknown; message?: unknown };
      throw new ApiRequestError(
        typeof err?.code === 'string' ? err.code : `HTTP_${response.status}`,
        `${def.method} ${url} answered ${response.status}: ${typeof err?.message === 'string' ? err.message : text.slice(0, 300)}`,
        response.status,
        url,
      );
    }
    return { status: response.status, body } as RouteAnswer<N>;
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
}
