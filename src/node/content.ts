/**
 * Copies of released content on a validator (issue 5: old versions can be read back from any
 * validator even if a config server loses them).
 *
 * When a release commits and its size is at most policy.contentCopyBytesMax, the node stores the
 * bytes: inline content from the transaction, or what its own fetch-and-hash downloaded before it
 * voted (ConfigSourceClient.takeContent). A node that did not fetch them (it caught up by state
 * transfer, or the kept bytes were evicted) fetches them from its config source in the background,
 * one at a time, from a bounded queue, with a bounded number of attempts and growing pauses.
 * At start the node also looks through its newest blocks (scanRecent) for copies it should hold
 * but does not (it may have crashed between a commit and the fetch).
 */
import type { Logger } from 'pino';
import {
  apiBlocksPageMax,
  contentBackfillAttemptsMax,
  contentBackfillQueueMax,
  contentMediaTypesCachedMax,
  contentScanBlocksMax,
} from '../constants.ts';
import { sha256Hex } from '../crypto/hash.ts';
import type { Genesis, Transaction } from '../ledger/types.ts';
import type { Store } from '../storage/store.ts';
import type { ConfigSourceClient } from './config-source.ts';

interface Missing {
  readonly sha256: string;
  readonly size: number;
  attempts: number;
}

export interface ContentKeeperOptions {
  readonly genesis: Genesis;
  readonly store: Store;
  readonly configSource: ConfigSourceClient;
  readonly logger: Logger;
  /** Pause after a failed background fetch, doubled per attempt; 1 s by default. */
  readonly retryMs?: number;
}

export class ContentKeeper {
  readonly #genesis: Genesis;
  readonly #store: Store;
  readonly #source: ConfigSourceClient;
  readonly #log: Logger;
  readonly #retryMs: number;
  readonly #mediaTypes = new Map<string, string>();
  readonly #queue = new Map<string, Missing>();
  #running = false;
  #closed = false;
  #timer: NodeJS.Timeout | null = null;

  constructor(options: ContentKeeperOptions) {
    this.#genesis = options.genesis;
    this.#store = options.store;
    this.#source = options.configSource;
    this.#log = options.logger;
    this.#retryMs = options.retryMs ?? 1000;
  }

  /** The media type of a release's content, when this node saw the release. */
  mediaType(sha256: string): string | undefined {
    return this.#mediaTypes.get(sha256);
  }

  /** Copies waiting to be fetched in the background. */
  get missing(): number {
    return this.#queue.size;
  }

  /**
   * A block committed: keep a copy of every small enough release in it. Never throws. `onlyMissing`
   * (the start-up scan) first skips content this node already holds.
   */
  onCommitted(txs: readonly Transaction[], onlyMissing = false): void {
    for (const tx of txs) {
      const body = tx.body;
      if (body.type !== 'release') continue;
      this.rememberMediaType(body.sha256, body.mediaType);
      if (body.size > this.#genesis.policy.contentCopyBytesMax) continue;
      if (onlyMissing && this.#store.getContent(body.sha256) !== null) continue;
      if (body.content !== undefined) {
        // The ledger checked the inline content's hash and size when the release was applied.
        this.put(body.sha256, Buffer.from(body.content, 'base64'));
        continue;
      }
      const fetched = this.#source.takeContent(body.sha256);
      if (fetched !== undefined && fetched.length === body.size) {
        this.put(body.sha256, fetched);
        continue;
      }
      if (this.#store.getContent(body.sha256) !== null) continue;
      this.enqueue(body.sha256, body.size);
    }
  }

  /**
   * Looks through the newest contentScanBlocksMax blocks up to `tipHeight` for releases whose copy
   * this node lacks and queues them; a page of blocks at a time, yielding between pages.
   */
  async scanRecent(tipHeight: number): Promise<void> {
    let from = Math.max(1, tipHeight - contentScanBlocksMax + 1);
    while (from <= tipHeight && !this.#closed) {
      const page = this.#store.blocks(from, Math.min(apiBlocksPageMax, tipHeight - from + 1));
      if (page.length === 0) return;
      for (const stored of page) this.onCommitted(stored.block.txs, true);
      from += page.length;
      await new Promise<void>((done) => setImmediate(done));
    }
  }

  close(): void {
    this.#closed = true;
    if (this.#timer !== null) clearTimeout(this.#timer);
    this.#timer = null;
  }

  private rememberMediaType(sha256: string, mediaType: string): void {
    if (!this.#mediaTypes.has(sha256) && this.#mediaTypes.size >= contentMediaTypesCachedMax) {
      const oldest = this.#mediaTypes.keys().next();
      if (oldest.done !== true) this.#mediaTypes.delete(oldest.value);
    }
    this.#mediaTypes.set(sha256, mediaType);
  }

  private put(sha256: string, bytes: Uint8Array): boolean {
    try {
      this.#store.putContent(sha256, bytes);
      return true;
    } catch (error) {
      this.#log.warn({ err: error, sha256 }, 'could not store a content copy');
      return false;
    }
  }

  private enqueue(sha256: string, size: number): void {
    if (this.#queue.has(sha256)) return;
    if (this.#queue.size >= contentBackfillQueueMax) {
      this.#log.warn({ sha256 }, 'content copy queue is full; this copy is not fetched until a restart');
      return;
    }
    this.#queue.set(sha256, { sha256, size, attempts: 0 });
    this.schedule(0);
  }

  private schedule(delayMs: number): void {
    if (this.#running || this.#closed || this.#timer !== null || this.#queue.size === 0) return;
    this.#timer = setTimeout(() => {
      this.#timer = null;
      void this.work();
    }, delayMs);
  }

  /** Fetches queued copies one at a time; a failure goes to the back with a longer pause. */
  private async work(): Promise<void> {
    this.#running = true;
    let pauseMs = 0;
    try {
      const next = this.#queue.values().next();
      if (next.done === true) return;
      const item = next.value;
      this.#queue.delete(item.sha256);
      const result = await this.#source.fetchContent(item.sha256, item.size);
      if (this.#closed) return;
      if (Buffer.isBuffer(result)) {
        if (sha256Hex(result) === item.sha256 && this.put(item.sha256, result)) {
          this.#log.debug({ sha256: item.sha256 }, 'fetched a missed content copy');
        }
        return;
      }
      item.attempts++;
      if (item.attempts >= contentBackfillAttemptsMax || (!result.ok && result.definite)) {
        this.#log.warn(
          { sha256: item.sha256, reason: result.ok ? 'no bytes' : result.reason },
          'gave up fetching a content copy',
        );
        return;
      }
      this.#queue.set(item.sha256, item);
      pauseMs = this.#retryMs * 2 ** (item.attempts - 1);
    } finally {
      this.#running = false;
      this.schedule(pauseMs);
    }
  }
}
