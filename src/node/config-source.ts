/**
 * The node's view of its validator-facing config server (B): does it offer (target, sha256), and
 * as which version and size? External validity of attest transactions and the article's
 * validateHash flow both ask it. Offers are immutable on a config server (a (target, version)
 * never changes content), so a positive answer is cached for good (bounded); a miss is asked
 * again next time, and concurrent questions about one hash share one request.
 *
 * Releases go further (checkArtifact): before voting for a block with a release, the validator
 * downloads the artifact itself, streaming, aborts as soon as more bytes arrive than the release
 * says (or policy.artifactBytesMax allows), hashes it, and accepts only when hash and size match.
 * Definite verdicts are cached per (sha256, size), bounded; content small enough to copy is kept
 * until its release commits (takeContent), so the node stores its copy without a second download.
 */
import { createHash } from 'node:crypto';
import { Agent, request as httpRequest } from 'node:http';
import {
  artifactFetchTimeoutMs,
  artifactTransferBytesPerSecondMin,
  artifactVerdictsCachedMax,
  configSourceFetchTimeoutMs,
  configSourceOffersCachedMax,
  configSourcePageRefetchMsMin,
  configSourcePageVersions,
  contentPendingBytesMax,
} from '../constants.ts';
import { isHash32Hex } from '../encoding/brand.ts';

export interface Offer {
  readonly target: string;
  readonly version: number;
  readonly sha256: string;
  readonly size: number;
  readonly mediaType: string;
}

/**
 * Why a transaction naming (target, sha256, version, size) does not match what the validator-facing
 * config server offers, or null when it matches. One wording for the vote (LedgerApp.validate) and
 * for refusing a release at submission (ValidatorNode), so an operator sees the same reason in both.
 */
export function offerProblem(
  claim: {
    readonly target: string;
    readonly sha256: string;
    readonly version: number;
    readonly size: number;
  },
  offer: Offer | undefined,
): string | null {
  if (offer === undefined) {
    return `the validator-facing config server does not offer ${claim.sha256} for target ${claim.target}; upload it there first`;
  }
  if (offer.version !== claim.version || offer.size !== claim.size) {
    return `config server offers ${claim.sha256} as version ${offer.version} (${offer.size} bytes), not version ${claim.version} (${claim.size} bytes)`;
  }
  return null;
}

export type LookupResult =
  | { readonly ok: true; readonly offer: Offer | undefined }
  | { readonly ok: false; readonly reason: string };

export interface ConfigSourceOptions {
  readonly baseUrl: string;
  readonly timeoutMs?: number;
  /** The largest artifact fetched (genesis policy.artifactBytesMax); no limit beyond the release's size when absent. */
  readonly artifactBytesMax?: number;
  /** Fetched artifacts up to this size are kept for takeContent (policy.contentCopyBytesMax); 0 keeps none. */
  readonly keepContentBytesMax?: number;
  /** The whole download of one artifact must finish within this; artifactFetchTimeoutMs by default. */
  readonly artifactTimeoutMs?: number;
}

/**
 * The verdict on a release's artifact: it matches (hash and size), or why not. `definite` is true
 * when config server B answered and the artifact is wrong (cached: content under a hash never
 * changes); false when B could not be asked or does not hold it (asked again next time).
 */
export type ArtifactVerdict =
  | { readonly ok: true }
  | { readonly ok: false; readonly definite: boolean; readonly reason: string };

/** A download's outcome: the verdict, and the bytes when they matched and were kept. */
interface Download {
  readonly verdict: ArtifactVerdict;
  readonly bytes: Buffer | undefined;
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
  private readonly artifactBytesMax: number;
  private readonly keepContentBytesMax: number;
  private readonly artifactTimeoutMs: number;
  /** Definite verdicts by "sha256/size" (FIFO-bounded). */
  private readonly verdicts = new Map<string, ArtifactVerdict>();
  private readonly downloads = new Map<string, Promise<Download>>();
  /** Matching content kept until its release commits, by sha256 (bounded by bytes). */
  private readonly kept = new Map<string, Buffer>();
  private keptBytes = 0;

  constructor(options: ConfigSourceOptions) {
    this.baseUrl = options.baseUrl.replace(/\/+$/, '');
    this.timeoutMs = options.timeoutMs ?? configSourceFetchTimeoutMs;
    this.artifactBytesMax = options.artifactBytesMax ?? Number.MAX_SAFE_INTEGER;
    this.keepContentBytesMax = options.keepContentBytesMax ?? 0;
    this.artifactTimeoutMs = options.artifactTimeoutMs ?? artifactFetchTimeoutMs;
  }

  /**
   * Downloads the artifact with this hash from the config server and checks that it is exactly
   * `size` bytes hashing to `sha256`. Never throws; never reads past the size; concurrent checks
   * of one artifact share one download; definite verdicts are cached.
   */
  async checkArtifact(sha256: string, size: number): Promise<ArtifactVerdict> {
    const key = `${sha256}/${size}`;
    const known = this.verdicts.get(key);
    if (known !== undefined) return known;
    return (await this.download(sha256, size)).verdict;
  }

  /**
   * Matching content of at most keepContentBytesMax bytes that checkArtifact downloaded, handed
   * over once (the node stores it when the release commits).
   */
  takeContent(sha256: string): Buffer | undefined {
    const bytes = this.kept.get(sha256);
    if (bytes === undefined) return undefined;
    this.kept.delete(sha256);
    this.keptBytes -= bytes.length;
    return bytes;
  }

  /**
   * Downloads and checks content for a copy (a node that missed it, e.g. after state transfer):
   * the bytes when they match, else the verdict saying why not.
   */
  async fetchContent(sha256: string, size: number): Promise<Buffer | ArtifactVerdict> {
    const kept = this.takeContent(sha256);
    if (kept !== undefined && kept.length === size) return kept;
    const result = await this.download(sha256, size, true);
    if (result.bytes !== undefined) {
      this.takeContent(sha256);
      return result.bytes;
    }
    return result.verdict;
  }

  private download(sha256: string, size: number, keep = false): Promise<Download> {
    const key = `${sha256}/${size}`;
    const running = this.downloads.get(key);
    if (running !== undefined) return running;
    const fetching = this.fetchArtifact(sha256, size, keep || size <= this.keepContentBytesMax).then(
      (result) => {
        if (result.verdict.ok || result.verdict.definite) this.rememberVerdict(key, result.verdict);
        if (result.bytes !== undefined) this.keep(sha256, result.bytes);
        return result;
      },
    );
    const shared = fetching.finally(() => this.downloads.delete(key));
    this.downloads.set(key, shared);
    return shared;
  }

  private rememberVerdict(key: string, verdict: ArtifactVerdict): void {
    if (!this.verdicts.has(key) && this.verdicts.size >= artifactVerdictsCachedMax) {
      const oldest = this.verdicts.keys().next();
      if (oldest.done !== true) this.verdicts.delete(oldest.value);
    }
    this.verdicts.set(key, verdict);
  }

  private keep(sha256: string, bytes: Buffer): void {
    if (this.kept.has(sha256) || bytes.length > contentPendingBytesMax) return;
    // Forget the oldest kept content first: the node then fetches it again after the commit.
    while (this.keptBytes + bytes.length > contentPendingBytesMax) {
      const oldest = this.kept.keys().next();
      if (oldest.done === true) break;
      this.takeContent(oldest.value);
    }
    this.kept.set(sha256, bytes);
    this.keptBytes += bytes.length;
  }

  /** One streaming GET /v1/artifacts/:sha256, hashed as it arrives, aborted past the size. */
  private fetchArtifact(sha256: string, size: number, keepBytes: boolean): Promise<Download> {
    const where = `config server ${this.baseUrl}`;
    const definite = (reason: string): Download => ({
      verdict: { ok: false, definite: true, reason },
      bytes: undefined,
    });
    const later = (reason: string): Download => ({
      verdict: { ok: false, definite: false, reason },
      bytes: undefined,
    });
    if (!isHash32Hex(sha256)) return Promise.resolve(definite(`${sha256} is not a SHA-256 in hex`));
    if (!Number.isSafeInteger(size) || size < 0 || size > this.artifactBytesMax) {
      return Promise.resolve(
        definite(
          `the release's size ${size} is above the network's artifact limit of ${this.artifactBytesMax} bytes`,
        ),
      );
    }
    const url = new URL(`${this.baseUrl}/v1/artifacts/${sha256}`);
    return new Promise((resolve) => {
      let settled = false;
      const finish = (result: Download) => {
        if (settled) return;
        settled = true;
        clearTimeout(deadline);
        resolve(result);
      };
      const req = httpRequest(url, { method: 'GET', agent: this.agent, timeout: this.timeoutMs }, (res) => {
        if (res.statusCode === 404) {
          res.resume();
          finish(
            later(`${where} does not hold artifact ${sha256}; upload it there, then the release can commit`),
          );
          return;
        }
        if (res.statusCode !== 200) {
          res.resume();
          finish(later(`${where} answered ${res.statusCode} for artifact ${sha256}`));
          return;
        }
        const declared = Number(res.headers['content-length']);
        if (Number.isFinite(declared) && declared !== size) {
          req.destroy();
          finish(
            definite(`${where} serves artifact ${sha256} as ${declared} bytes, but the release says ${size}`),
          );
          return;
        }
        const hash = createHash('sha256');
        const chunks: Buffer[] = [];
        let received = 0;
        res.on('data', (chunk: Buffer) => {
          received += chunk.length;
          if (received > size) {
            // Endless or oversized data: stop reading at the release's size.
            req.destroy();
            finish(definite(`${where} sent more than the release's ${size} bytes for artifact ${sha256}`));
            return;
          }
          hash.update(chunk);
          if (keepBytes) chunks.push(chunk);
        });
        res.on('end', () => {
          if (received !== size) {
            finish(
              definite(
                `${where} sent ${received} bytes for artifact ${sha256}, but the release says ${size}`,
              ),
            );
            return;
          }
          const actual = hash.digest('hex');
          if (actual !== sha256) {
            finish(definite(`${where} serves content hashing to ${actual} under artifact ${sha256}`));
            return;
          }
          finish({ verdict: { ok: true }, bytes: keepBytes ? Buffer.concat(chunks) : undefined });
        });
        res.on('error', (error) => finish(later(`${where} broke off artifact ${sha256}: ${error.message}`)));
      });
      // A large artifact gets more time: the base timeout plus its size at the slowest rate allowed.
      const budgetMs = this.artifactTimeoutMs + Math.ceil((size / artifactTransferBytesPerSecondMin) * 1000);
      const deadline = setTimeout(
        () => req.destroy(new Error(`the download took longer than ${budgetMs} ms`)),
        budgetMs,
      );
      req.on('timeout', () => req.destroy(new Error(`no data for ${this.timeoutMs} ms`)));
      req.on('error', (error) =>
        finish(later(`${where} is unreachable for artifact ${sha256} (${error.message})`)),
      );
      req.end();
    });
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
