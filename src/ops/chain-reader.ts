/**
 * Reads a validator's chain (GET /v1/blocks, page by page, with certificates) and verifies every
 * block with ChainVerifier against the genesis the operator holds, so the operator commands never
 * print anything the node merely claims. A block that fails stops the read with a ChainCheckError
 * naming its height. Verified blocks are kept in memory only, in a bounded cache of the newest
 * ones; the verifier's replayed state means a later sync() reads only the blocks added since.
 */
import {
  opsBlocksPageSize,
  opsPageBytesMax,
  opsRequestTimeoutMs,
  opsVerifiedBlocksCachedMax,
} from '../constants.ts';
import { assert } from '../errors.ts';
import type { Genesis } from '../ledger/types.ts';
import { ChainCheckError, ChainVerifier, type VerifiedBlock } from './chain-verifier.ts';
import { OpsError } from './errors.ts';

/** One page of blocks as a source answers it: untrusted until verified. */
export interface BlockPage {
  readonly tipHeight: number;
  readonly blocks: readonly unknown[];
}

/** Where blocks come from: a validator's API, or in tests a store. */
export interface BlockSource {
  /** Says where the blocks come from, in messages. */
  readonly name: string;
  page(from: number, limit: number): Promise<BlockPage>;
}

/**
 * GET /v1/blocks of one validator, read with fetch; nothing in the answer is trusted. An answer
 * larger than pageBytesMax (opsPageBytesMax) is not read on: the page is asked again with half the blocks, down
 * to one block, which must fit.
 */
export function httpBlockSource(
  baseUrl: string,
  timeoutMs = opsRequestTimeoutMs,
  pageBytesMax = opsPageBytesMax,
): BlockSource {
  const base = baseUrl.replace(/\/+$/, '');
  return {
    name: base,
    async page(from, limit) {
      for (let ask = limit; ; ask = Math.ceil(ask / 2)) {
        const url = `${base}/v1/blocks?from=${from}&limit=${ask}`;
        let body: unknown;
        try {
          body = await fetchJson(url, timeoutMs, pageBytesMax);
        } catch (error) {
          if (!(error instanceof OpsError) || error.code !== 'TOO_LARGE') throw error;
          if (ask === 1)
            throw new ChainCheckError(from, `${url} answered more than ${pageBytesMax} bytes for one block`);
          continue;
        }
        const page = body as { tipHeight?: unknown; blocks?: unknown } | null;
        if (
          typeof page !== 'object' ||
          page === null ||
          !Number.isSafeInteger(page.tipHeight) ||
          (page.tipHeight as number) < 0 ||
          !Array.isArray(page.blocks)
        ) {
          throw new ChainCheckError(from, `${url} did not answer a block page {tipHeight, blocks}`);
        }
        return { tipHeight: page.tipHeight as number, blocks: page.blocks };
      }
    },
  };
}

/**
 * GETs a JSON document of at most bytesMax bytes; an unreachable node, a non-200 answer or a
 * larger answer (code TOO_LARGE) is an OpsError saying so.
 */
export async function fetchJson(
  url: string,
  timeoutMs: number,
  bytesMax = opsPageBytesMax,
): Promise<unknown> {
  let response: Response;
  let text: string;
  try {
    response = await fetch(url, { signal: AbortSignal.timeout(timeoutMs) });
    text = await readText(response, bytesMax);
  } catch (error) {
    if (error instanceof OpsError) throw error;
    throw new OpsError(
      'NODE_UNREACHABLE',
      `cannot read ${url}: ${causeOf(error)}; check that the validator runs, or pass another --node URL`,
      { url },
    );
  }
  if (response.status !== 200) {
    throw new OpsError('NODE_ERROR', `${url} answered ${response.status}: ${text.slice(0, 300)}`, { url });
  }
  try {
    return JSON.parse(text) as unknown;
  } catch {
    throw new OpsError('NODE_ERROR', `${url} answered something that is not JSON: ${text.slice(0, 100)}`, {
      url,
    });
  }
}

/** The body as text, refusing (OpsError TOO_LARGE) to hold more than bytesMax bytes of it. */
async function readText(response: Response, bytesMax: number): Promise<string> {
  if (response.body === null) return '';
  const chunks: Buffer[] = [];
  let length = 0;
  for await (const chunk of response.body) {
    length += chunk.byteLength;
    if (length > bytesMax) {
      await response.body.cancel().catch(() => {});
      throw new OpsError('TOO_LARGE', `${response.url} answered more than ${bytesMax} bytes`, {
        url: response.url,
      });
    }
    chunks.push(Buffer.from(chunk));
  }
  return Buffer.concat(chunks).toString('utf8');
}

export function causeOf(error: unknown): string {
  const e = error as Error & { cause?: { code?: string; message?: string } };
  if (e.name === 'TimeoutError') return 'no answer in time';
  return e.cause?.code ?? e.cause?.message ?? e.message;
}

export interface ChainReaderOptions {
  readonly cachedBlocksMax?: number;
  readonly pageSize?: number;
}

export class ChainReader {
  readonly source: BlockSource;
  readonly verifier: ChainVerifier;
  readonly #cache = new Map<number, VerifiedBlock>();
  readonly #cachedMax: number;
  readonly #pageSize: number;

  constructor(genesis: Genesis, source: BlockSource, options: ChainReaderOptions = {}) {
    this.source = source;
    this.verifier = new ChainVerifier(genesis);
    this.#cachedMax = options.cachedBlocksMax ?? opsVerifiedBlocksCachedMax;
    this.#pageSize = options.pageSize ?? opsBlocksPageSize;
    assert(this.#cachedMax >= 1 && this.#pageSize >= 1, 'the cache and the page hold at least one block');
  }

  get genesis(): Genesis {
    return this.verifier.genesis;
  }

  /** A verified block still in the cache (the newest ones are kept). */
  cached(height: number): VerifiedBlock | undefined {
    return this.#cache.get(height);
  }

  /**
   * Reads and verifies every block from the verified tip up to the tip the source names in its
   * first answer (blocks added while reading are left for the next sync), calling onBlock with each
   * verified block in height order. Returns the verified tip height. Throws ChainCheckError at the
   * first block that fails, or when the source stops serving blocks below the tip it named.
   * `upTo` stops earlier, at that height.
   */
  async sync(
    onBlock: (block: VerifiedBlock) => void = () => {},
    options: { readonly upTo?: number } = {},
  ): Promise<number> {
    let tip: number | null = null;
    for (;;) {
      const from = this.verifier.height + 1;
      if (tip !== null && from > tip) break;
      const limit = tip === null ? this.#pageSize : Math.min(this.#pageSize, tip - from + 1);
      const page = await this.source.page(from, limit);
      if (tip === null) {
        tip = Math.min(page.tipHeight, options.upTo ?? page.tipHeight);
        if (from > tip) break;
      } else if (page.tipHeight < tip) {
        throw new ChainCheckError(
          from,
          `${this.source.name} first said its tip is block ${tip}, now ${page.tipHeight}: a chain does not shrink`,
        );
      }
      if (page.blocks.length === 0) {
        throw new ChainCheckError(from, `${this.source.name} sent no block ${from}, below its tip ${tip}`);
      }
      if (page.blocks.length > limit) {
        throw new ChainCheckError(
          from,
          `${this.source.name} sent ${page.blocks.length} blocks for ${limit} asked`,
        );
      }
      for (const record of page.blocks) {
        if (this.verifier.height + 1 > tip) break;
        const verified = this.verifier.accept(record);
        this.#remember(verified);
        onBlock(verified);
      }
    }
    return this.verifier.height;
  }

  #remember(block: VerifiedBlock): void {
    this.#cache.set(block.height, block);
    if (this.#cache.size > this.#cachedMax) {
      const oldest = this.#cache.keys().next().value;
      if (oldest !== undefined) this.#cache.delete(oldest);
    }
    assert(this.#cache.size <= this.#cachedMax, 'the verified-block cache stays within its bound');
  }
}
