/**
 * The node's view of its validator-facing config server (B): does it offer (target, sha256), and
 * as which version and size? External validity of attest transactions and the article's
 * validateHash flow both ask it. Offers are immutable on a config server (a (target, version)
 * never changes content), so a positive answer is cached for good (bounded); a miss is asked
 * again next time, and concurrent questions about one hash share one request.
 */
import { Agent, request as httpRequest } from 'node:http';
import {
  configSourceFetchTimeoutMs,
  configSourceOffersCachedMax,
  configSourcePageRefetchMsMin,
  configSourcePageVersions,
} from '../constants.ts';
import { isHash32Hex } from '../encoding/brand.ts';

export interface Offer {
  readonly target: string;
  readonly version: number;
  readonly sha256: string;
  readonly size: number;
  readonly mediaType: string;
}

export type LookupResult =
  | { readonly ok: true; readonly offer: Offer | undefined }
  | { readonly ok: false; readonly reason: string };

export interface ConfigSourceOptions {
  readonly baseUrl: string;
  readonly timeoutMs?: number;
}

/** The largest version-list answer read from a config server (a filtered list is tiny). */
const answerBytesMax = 1024 * 1024;

export class ConfigSourceClient {
  readonly baseUrl: string;
  private readonly timeoutMs: number;
  private readonly offers = new Map<string, Offer>();
  private readonly inflight = new Map<string, Promise<LookupResult>>();
  private readonly pages = new Map<string, Promise<LookupResult>>();
  private readonly pageFetchedMs = new Map<string, number>();
  /** Keep-alive connections: a lookup is on the path of every new hash, so no handshake per ask. */
  private readonly agent = new Agent({ keepAlive: true, maxSockets: 16 });

  constructor(options: ConfigSourceOptions) {
    this.baseUrl = options.baseUrl.replace(/\/+$/, '');
    this.timeoutMs = options.timeoutMs ?? configSourceFetchTimeoutMs;
  }

  /** A cached answer only (no I/O): the offer if known. */
  cached(target: string, sha256: string): Offer | undefined {
    return this.offers.get(`${target}\u0000${sha256}`);
  }

  /**
   * Does the config server offer this hash for this target? Resolves {ok: false} when the server
   * cannot be asked (unreachable, timeout, bad answer): the caller decides what that means, and it
   * never waits longer than the fetch timeout.
   */
  lookup(target: string, sha256: string, afterVersion = 0): Promise<LookupResult> {
    if (!isHash32Hex(sha256)) return Promise.resolve({ ok: true, offer: undefined });
    const key = `${target}\u0000${sha256}`;
    const known = this.offers.get(key);
    if (known !== undefined) return Promise.resolve({ ok: true, offer: known });
    const running = this.inflight.get(key);
    if (running !== undefined) return running;
    const fetching = this.resolveOffer(target, sha256, afterVersion).finally(() => this.inflight.delete(key));
    this.inflight.set(key, fetching);
    return fetching;
  }

  /**
   * A miss first reads the page of versions newer than the caller's current one (one request
   * answers the lookups of every version on it, on every later call too), then, if the hash is
   * not on it, asks about the hash alone (it may be on a later page, or uploaded since).
   */
  private async resolveOffer(target: string, sha256: string, afterVersion: number): Promise<LookupResult> {
    const page = await this.fetchPage(target, afterVersion);
    const known = this.offers.get(`${target}\u0000${sha256}`);
    if (known !== undefined) return { ok: true, offer: known };
    if (!page.ok) return page;
    return this.fetchOffer(target, sha256);
  }

  private fetchPage(target: string, afterVersion: number): Promise<LookupResult> {
    const running = this.pages.get(target);
    if (running !== undefined) return running;
    const last = this.pageFetchedMs.get(target);
    if (last !== undefined && Date.now() - last < configSourcePageRefetchMsMin) {
      return Promise.resolve({ ok: true, offer: undefined });
    }
    const fetching = this.readPage(target, afterVersion).finally(() => {
      this.pages.delete(target);
      if (this.pageFetchedMs.size >= configSourceOffersCachedMax) this.pageFetchedMs.clear();
      this.pageFetchedMs.set(target, Date.now());
    });
    this.pages.set(target, fetching);
    return fetching;
  }

  private async readPage(target: string, afterVersion: number): Promise<LookupResult> {
    const after = Math.max(0, Math.floor(afterVersion));
    const path = `/v1/targets/${encodeURIComponent(target)}/versions?after=${after}&limit=${configSourcePageVersions}`;
    const answer = await this.get(path);
    if (!answer.ok) return answer;
    if (answer.status !== 200) return { ok: true, offer: undefined };
    let list: unknown[] | null;
    try {
      list = extractVersions(JSON.parse(answer.text));
    } catch {
      list = null;
    }
    for (const entry of list ?? []) {
      const offer = toOffer(target, entry);
      if (offer !== null) this.remember(offer);
    }
    return { ok: true, offer: undefined };
  }

  private remember(offer: Offer): void {
    const key = `${offer.target}\u0000${offer.sha256}`;
    const previous = this.offers.get(key);
    if (previous !== undefined && previous.version >= offer.version) return;
    if (previous === undefined && this.offers.size >= configSourceOffersCachedMax) {
      const oldest = this.offers.keys().next();
      if (oldest.done !== true) this.offers.delete(oldest.value);
    }
    this.offers.set(key, offer);
  }

  private async fetchOffer(target: string, sha256: string): Promise<LookupResult> {
    const path = `/v1/targets/${encodeURIComponent(target)}/versions?sha256=${sha256}`;
    const answer = await this.get(path);
    if (!answer.ok) return answer;
    if (answer.status === 404) return { ok: true, offer: undefined };
    if (answer.status !== 200) {
      return { ok: false, reason: `config server ${this.baseUrl} answered ${answer.status} for ${path}` };
    }
    let body: unknown;
    try {
      body = JSON.parse(answer.text);
    } catch {
      return { ok: false, reason: `config server ${this.baseUrl} sent a version list that is not JSON` };
    }
    const list = extractVersions(body);
    if (list === null) {
      return { ok: false, reason: `config server ${this.baseUrl} sent a version list in an unknown format` };
    }
    let best: Offer | undefined;
    for (const entry of list) {
      const offer = toOffer(target, entry);
      if (offer === null || offer.sha256 !== sha256) continue;
      if (best === undefined || best.version < offer.version) best = offer;
    }
    if (best !== undefined) this.remember(best);
    return { ok: true, offer: best };
  }

  /** One GET with a deadline; never throws, never waits past the timeout. */
  private get(
    path: string,
  ): Promise<{ ok: true; status: number; text: string } | { ok: false; reason: string }> {
    const url = new URL(`${this.baseUrl}${path}`);
    return new Promise((resolve) => {
      const fail = (why: string) =>
        resolve({ ok: false, reason: `config server ${this.baseUrl} is unreachable (${why})` });
      const req = httpRequest(
        url,
        {
          method: 'GET',
          agent: this.agent,
          timeout: this.timeoutMs,
          headers: { accept: 'application/json' },
        },
        (res) => {
          const chunks: Buffer[] = [];
          let bytes = 0;
          res.on('data', (chunk: Buffer) => {
            bytes += chunk.length;
            if (bytes > answerBytesMax) {
              req.destroy(new Error(`answer larger than ${answerBytesMax} bytes`));
              return;
            }
            chunks.push(chunk);
          });
          res.on('end', () =>
            resolve({ ok: true, status: res.statusCode ?? 0, text: Buffer.concat(chunks).toString('utf8') }),
          );
          res.on('error', (error) => fail(error.message));
        },
      );
      const deadline = setTimeout(
        () => req.destroy(new Error(`no answer within ${this.timeoutMs} ms`)),
        this.timeoutMs,
      );
      req.on('error', (error) => fail(error.message));
      req.on('close', () => clearTimeout(deadline));
      req.on('timeout', () => req.destroy(new Error(`no answer within ${this.timeoutMs} ms`)));
      req.end();
    });
  }

  /** Closes idle keep-alive connections (at shutdown). */
  close(): void {
    this.agent.destroy();
  }
}

function extractVersions(body: unknown): unknown[] | null {
  if (Array.isArray(body)) return body;
  if (typeof body === 'object' && body !== null) {
    const record = body as Record<string, unknown>;
    if (Array.isArray(record.versions)) return record.versions;
  }
  return null;
}

function toOffer(target: string, entry: unknown): Offer | null {
  if (typeof entry !== 'object' || entry === null) return null;
  const e = entry as Record<string, unknown>;
  if (typeof e.version !== 'number' || !Number.isSafeInteger(e.version) || e.version < 1) return null;
  if (!isHash32Hex(e.sha256)) return null;
  if (typeof e.size !== 'number' || !Number.isSafeInteger(e.size) || e.size < 0) return null;
  return {
    target,
    version: e.version,
    sha256: e.sha256,
    size: e.size,
    mediaType: typeof e.mediaType === 'string' ? e.mediaType : 'application/octet-stream',
  };
}
