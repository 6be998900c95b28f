/**
 * The node's view of its validator-facing config server (B): does it offer (target, sha256), and
 * as which version and size? External validity of attest transactions and the article's
 * validateHash flow both ask it. Offers are immutable on a config server (a (target, version)
 * never changes content), so a positive answer is cached for good (bounded); a miss is asked
 * again next time, and concurrent questions about one hash share one request.
 */
import { configSourceFetchTimeoutMs, configSourceOffersCachedMax } from '../constants.ts';
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

export class ConfigSourceClient {
  readonly baseUrl: string;
  private readonly timeoutMs: number;
  private readonly offers = new Map<string, Offer>();
  private readonly inflight = new Map<string, Promise<LookupResult>>();

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
  lookup(target: string, sha256: string): Promise<LookupResult> {
    if (!isHash32Hex(sha256)) return Promise.resolve({ ok: true, offer: undefined });
    const key = `${target}\u0000${sha256}`;
    const known = this.offers.get(key);
    if (known !== undefined) return Promise.resolve({ ok: true, offer: known });
    const running = this.inflight.get(key);
    if (running !== undefined) return running;
    const fetching = this.fetchOffer(target, sha256).finally(() => this.inflight.delete(key));
    this.inflight.set(key, fetching);
    return fetching;
  }

  private async fetchOffer(target: string, sha256: string): Promise<LookupResult> {
    const url = `${this.baseUrl}/v1/targets/${encodeURIComponent(target)}/versions?sha256=${sha256}`;
    let body: unknown;
    try {
      const response = await fetch(url, { signal: AbortSignal.timeout(this.timeoutMs) });
      if (response.status === 404) {
        await response.body?.cancel();
        return { ok: true, offer: undefined };
      }
      if (!response.ok) {
        await response.body?.cancel();
        return { ok: false, reason: `config server ${this.baseUrl} answered ${response.status} for ${url}` };
      }
      body = await response.json();
    } catch (error) {
      return {
        ok: false,
        reason: `config server ${this.baseUrl} is unreachable (${(error as Error).message})`,
      };
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
    if (best !== undefined) {
      if (this.offers.size >= configSourceOffersCachedMax) {
        const oldest = this.offers.keys().next();
        if (oldest.done !== true) this.offers.delete(oldest.value);
      }
      this.offers.set(`${target}\u0000${sha256}`, best);
    }
    return { ok: true, offer: best };
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
