/**
 * The dashboard's access to the v1 API: the shared typed client (src/api/client.ts, built from the
 * route table in src/api/routes.ts) pointed at the validator that served the page, plus the few
 * things the client does not do (HEAD requests, content as text, paging the chain backwards).
 */
import { ApiClient, ApiRequestError } from '../../src/api/client.ts';
import { routePath, routes } from '../../src/api/routes.ts';
import { apiBlocksPageMax, uiScanBlocksMax } from '../../src/constants.ts';
import { sha256Hex } from './verify.ts';

export const api = new ApiClient(window.location.origin, { timeoutMs: 8000 });

export type Status = Awaited<ReturnType<ApiClient['status']>>;
export type Validators = Awaited<ReturnType<ApiClient['validators']>>;
export type BlockRecord = Awaited<ReturnType<ApiClient['block']>>;
export type TargetEntry = Awaited<ReturnType<ApiClient['target']>>;
export type TargetHistory = Awaited<ReturnType<ApiClient['targetHistory']>>;
/** A staged rollout as the ledger keeps it (GET /v1/rollouts): status, reason, per-wave counts. */
export type Rollout = Awaited<ReturnType<ApiClient['rollouts']>>[number];
export type Tx = BlockRecord['block']['txs'][number];

/** What the event stream sends for every committed block (GET /v1/events, `event: block`). */
export interface BlockEvent {
  readonly height: number;
  readonly hash: string;
  readonly timestampMs: number;
  readonly txCount: number;
  readonly txIds: readonly string[];
}

/** A user-facing explanation of a failed call: what went wrong and what to do. */
export function explain(err: unknown, what: string): string {
  if (err instanceof ApiRequestError) {
    if (err.code === 'ROUTE_NOT_FOUND') {
      return `This validator does not serve ${what} yet (${err.status}): update it to a release that has this route, then reload.`;
    }
    return `${what} failed: ${err.message}`;
  }
  const message = err instanceof Error ? err.message : String(err);
  return `Could not reach the validator for ${what} (${message}). Check that it is running, then retry.`;
}

export function isNotFound(err: unknown): boolean {
  return err instanceof ApiRequestError && err.status === 404 && err.code !== 'ROUTE_NOT_FOUND';
}

/** The content copy this validator holds; undefined when it holds none. */
export async function contentBytes(sha256: string): Promise<Uint8Array | undefined> {
  const url = routePath(routes.content.url, { sha256 });
  const response = await fetch(url, { signal: AbortSignal.timeout(8000) });
  if (response.status === 404) {
    const body = (await response.json().catch(() => ({}))) as { code?: string };
    if (body.code === 'ROUTE_NOT_FOUND') {
      throw new ApiRequestError('ROUTE_NOT_FOUND', 'no content route', 404, url);
    }
    return undefined;
  }
  if (!response.ok) throw new Error(`GET ${url} answered ${response.status}`);
  return new Uint8Array(await response.arrayBuffer());
}

export type ContentSource = 'copy' | 'inline';

/**
 * A version's content as text: this validator's copy, or else the content carried inline by the
 * release transaction itself (hashed here before it is trusted). Undefined when neither exists
 * (an attested hash whose bytes only the config servers have).
 */
export async function versionText(entry: {
  readonly sha256: string;
  readonly source: string;
  readonly txId: string;
}): Promise<{ text: string; from: ContentSource } | undefined> {
  const copy = await contentBytes(entry.sha256);
  if (copy !== undefined) {
    if ((await sha256Hex(copy)) !== entry.sha256) {
      throw new Error(`this validator's copy of ${entry.sha256} does not hash to it: the copy is damaged`);
    }
    return { text: new TextDecoder().decode(copy), from: 'copy' };
  }
  if (entry.source !== 'release') return undefined;
  const tx = await api.tx(entry.txId);
  const inline = (tx.tx.body as { content?: unknown }).content;
  if (typeof inline !== 'string') return undefined;
  const bytes = Uint8Array.from(atob(inline), (c) => c.charCodeAt(0));
  if ((await sha256Hex(bytes)) !== entry.sha256) {
    throw new Error(`the inline content of release ${entry.txId} does not hash to ${entry.sha256}`);
  }
  return { text: new TextDecoder().decode(bytes), from: 'inline' };
}

/** HEAD /v1/content/:sha256 on one validator: does it hold a copy? Null when it cannot be asked. */
export async function holdsContent(apiUrl: string, sha256: string): Promise<boolean | null> {
  try {
    const response = await fetch(apiUrl.replace(/\/+$/, '') + routePath(routes.content.url, { sha256 }), {
      method: 'HEAD',
      signal: AbortSignal.timeout(4000),
    });
    if (response.status === 200) return true;
    if (response.status === 404) return false;
    return null;
  } catch {
    return null;
  }
}

/** GET /v1/status of another validator (its CORS header lets the page read it). */
export async function remoteStatus(apiUrl: string): Promise<Status | null> {
  try {
    const client = new ApiClient(apiUrl, { timeoutMs: 2500 });
    return await client.status();
  } catch {
    return null;
  }
}

// Reading the chain backwards, with a bounded cache of immutable blocks ---------------------------

const blockCache = new Map<number, BlockRecord>();

/** Keeps the newest blocks: the ones every scan from the tip reads again. */
function remember(records: readonly BlockRecord[]): void {
  for (const r of records) blockCache.set(r.block.header.height, r);
  const overflow = blockCache.size - uiScanBlocksMax;
  if (overflow <= 0) return;
  const lowest = [...blockCache.keys()].sort((a, b) => a - b).slice(0, overflow);
  for (const h of lowest) blockCache.delete(h);
}

/** Blocks from..from+limit-1 (oldest first), from the cache when every one is there. */
export async function blockRange(
  from: number,
  limit: number,
): Promise<{ tip: number; blocks: BlockRecord[] }> {
  const page = await api.blocks(from, Math.min(limit, apiBlocksPageMax));
  const blocks = page.blocks.map((b) => b as BlockRecord);
  remember(blocks);
  return { tip: page.tipHeight, blocks };
}

export interface ScanResult<T> {
  readonly found: T[];
  /** Blocks read, newest first from the tip. */
  readonly scanned: number;
  readonly tip: number;
  /** True when older blocks were not read (uiScanBlocksMax). */
  readonly truncated: boolean;
}

/**
 * Reads the chain from the tip backwards (at most uiScanBlocksMax blocks) and collects what
 * `pick` returns for each block. The v1 API has no index by configuration hash or target list,
 * so the dashboard looks through recent blocks and says how far it looked.
 */
export async function scanChain<T>(pick: (record: BlockRecord) => T[]): Promise<ScanResult<T>> {
  const status = await api.status();
  const tip = status.height;
  const found: T[] = [];
  let scanned = 0;
  let next = tip;
  while (next >= 0 && scanned < uiScanBlocksMax) {
    const from = Math.max(0, next - apiBlocksPageMax + 1);
    // Blocks never change once committed: ask only for the span the cache does not hold
    // (usually the few blocks above the last scan).
    const have = new Map<number, BlockRecord>();
    let low = -1;
    let high = -1;
    for (let h = from; h <= next; h++) {
      const b = blockCache.get(h);
      if (b !== undefined) have.set(h, b);
      else {
        if (low < 0) low = h;
        high = h;
      }
    }
    // A page may hold fewer blocks than asked for; ask again from where it stopped.
    while (low >= 0 && low <= high) {
      const page = await blockRange(low, high - low + 1);
      for (const b of page.blocks) have.set(b.block.header.height, b);
      const last = page.blocks.at(-1);
      if (last === undefined) break;
      low = last.block.header.height + 1;
    }
    const blocks: BlockRecord[] = [];
    for (let h = from; h <= next; h++) {
      const b = have.get(h);
      if (b === undefined)
        throw new Error(`block ${h} is missing from the answer of GET /v1/blocks; reload the page`);
      blocks.push(b);
    }
    for (let i = blocks.length - 1; i >= 0; i--) {
      const b = blocks[i];
      if (b !== undefined) found.push(...pick(b));
    }
    scanned += next - from + 1;
    next = from - 1;
  }
  return { found, scanned, tip, truncated: next >= 0 };
}

/** Targets named by transactions in the recent chain, plus "default". */
export async function knownTargets(): Promise<ScanResult<string>> {
  const scan = await scanChain((b) =>
    b.block.txs.flatMap((tx) => {
      const target = (tx.body as { target?: unknown }).target;
      return typeof target === 'string' ? [target] : [];
    }),
  );
  const unique = [...new Set(['default', ...scan.found])].sort();
  return { ...scan, found: unique };
}
