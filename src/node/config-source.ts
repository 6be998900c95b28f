/**
 * The node's view of its validator-facing config server (B): which (target, version, sha256, size)
 * it offers. External validity of attest transactions and the article's validateHash flow both ask
 * it. Offers are immutable on a config server (a (target, version) never changes content), so a
 * positive answer is cached for good; a miss refetches the target's version list, at most one fetch
 * per target at a time, so a flood of unknown hashes costs one request per refetch interval.
 */
import {
  configSourceFetchTimeoutMs,
  configSourceRefetchMsMin,
  configSourceTargetsMax,
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

interface TargetCache {
  /** sha256 -> offer; the highest version wins if a hash is offered twice. */
  readonly byHash: Map<string, Offer>;
  fetchedAtMs: number;
  inflight: Promise<LookupResult> | null;
}

export interface ConfigSourceOptions {
  readonly baseUrl: string;
  readonly timeoutMs?: number;
  readonly refetchMsMin?: number;
  readonly now?: () => number;
}

export class ConfigSourceClient {
  readonly baseUrl: string;
  private readonly timeoutMs: number;
  private readonly refetchMsMin: number;
  private readonly now: () => number;
  private readonly targets = new Map<string, TargetCache>();

  constructor(options: ConfigSourceOptions) {
    this.baseUrl = options.baseUrl.replace(/\/+$/, '');
    this.timeoutMs = options.timeoutMs ?? configSourceFetchTimeoutMs;
    this.refetchMsMin = options.refetchMsMin ?? configSourceRefetchMsMin;
    this.now = options.now ?? Date.now;
  }

  /** A cached answer only (no I/O): the offer if known. */
  cached(target: string, sha256: string): Offer | undefined {
    return this.targets.get(target)?.byHash.get(sha256);
  }

  /**
   * Does the config server offer this hash for this target? Resolves {ok: false} when the server
   * cannot be asked (unreachable, timeout, bad answer): the caller decides what that means, and it
   * never hangs longer than the fetch timeout.
   */
  async lookup(target: string, sha256: string): Promise<LookupResult> {
    if (!isHash32Hex(sha256)) return { ok: true, offer: undefined };
    const known = this.cached(target, sha256);
    if (known !== undefined) return { ok: true, offer: known };
    let cache = this.targets.get(target);
    if (cache === undefined) {
      if (this.targets.size >= configSourceTargetsMax) {
        // Forget the oldest target: the cache is bounded, and a forgotten one is only refetched.
        const oldest = this.targets.keys().next();
        if (oldest.done !== true) this.targets.delete(oldest.value);
      }
      cache = { byHash: new Map(), fetchedAtMs: Number.NEGATIVE_INFINITY, inflight: null };
      this.targets.set(target, cache);
    }
    if (cache.inflight !== null) {
      const result = await cache.inflight;
      if (!result.ok) return result;
      return { ok: true, offer: cache.byHash.get(sha256) };
    }
    if (this.now() - cache.fetchedAtMs < this.refetchMsMin) return { ok: true, offer: undefined };
    const fetching = this.fetchTarget(target, cache);
    cache.inflight = fetching;
    try {
      const result = await fetching;
      if (!result.ok) return result;
      return { ok: true, offer: cache.byHash.get(sha256) };
    } finally {
      cache.inflight = null;
    }
  }

  private async fetchTarget(target: string, cache: TargetCache): Promise<LookupResult> {
    const url = `${this.baseUrl}/v1/targets/${encodeURIComponent(target)}/versions`;
    let body: unknown;
    try {
      const response = await fetch(url, { signal: AbortSignal.timeout(this.timeoutMs) });
      if (response.status === 404) {
        await response.body?.cancel();
        cache.fetchedAtMs = this.now();
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
    for (const entry of list) {
      const offer = toOffer(target, entry);
      if (offer === null) continue;
      const previous = cache.byHash.get(offer.sha256);
      if (previous === undefined || previous.version < offer.version) cache.byHash.set(offer.sha256, offer);
    }
    cache.fetchedAtMs = this.now();
    return { ok: true, offer: undefined };
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
