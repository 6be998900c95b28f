/**
 * Live state shared by every page: the node's status and the newest blocks, from the server-sent
 * events of GET /v1/events. When the stream is unavailable (an older validator, a proxy that
 * buffers), the page polls GET /v1/status and reads new blocks with GET /v1/blocks instead, so
 * it still updates without a reload; the header says which of the two is in use.
 */
import { createContext, type ReactNode, useContext, useEffect, useRef, useState } from 'react';
import { routes } from '../../src/api/routes.ts';
import { uiChartBucketsMax, uiLiveBlocksMax } from '../../src/constants.ts';
import { api, type BlockEvent, blockRange, type Status } from './api.ts';

export type Connection = 'connecting' | 'live' | 'polling' | 'down';

/** Width of one chart bucket. */
export const bucketMs = 5000;

export interface Bucket {
  readonly startMs: number;
  readonly blocks: number;
  readonly txs: number;
}

export interface Live {
  readonly status: Status | null;
  readonly connection: Connection;
  readonly error: string | null;
  /** Newest first, at most uiLiveBlocksMax. */
  readonly blocks: readonly BlockEvent[];
  /** Oldest first, at most uiChartBucketsMax, by block timestamp. */
  readonly buckets: readonly Bucket[];
  /** Last time anything arrived (status or block). */
  readonly updatedMs: number;
}

const initial: Live = {
  status: null,
  connection: 'connecting',
  error: null,
  blocks: [],
  buckets: [],
  updatedMs: 0,
};

const LiveContext = createContext<Live>(initial);

export function useLive(): Live {
  return useContext(LiveContext);
}

const pollMs = 2000;

function addBlocks(live: Live, events: readonly BlockEvent[]): Live {
  if (events.length === 0) return live;
  const known = new Set(live.blocks.map((b) => b.height));
  const fresh = events.filter((e) => !known.has(e.height));
  if (fresh.length === 0) return live;
  const blocks = [...fresh, ...live.blocks].sort((a, b) => b.height - a.height).slice(0, uiLiveBlocksMax);
  const byStart = new Map(live.buckets.map((b) => [b.startMs, b]));
  for (const e of fresh) {
    const start = Math.floor(e.timestampMs / bucketMs) * bucketMs;
    const b = byStart.get(start) ?? { startMs: start, blocks: 0, txs: 0 };
    byStart.set(start, { startMs: start, blocks: b.blocks + 1, txs: b.txs + e.txCount });
  }
  const buckets = [...byStart.values()].sort((a, b) => a.startMs - b.startMs).slice(-uiChartBucketsMax);
  return { ...live, blocks, buckets, updatedMs: Date.now() };
}

function toEvent(record: Awaited<ReturnType<typeof blockRange>>['blocks'][number]): BlockEvent {
  return {
    height: record.block.header.height,
    hash: record.hash,
    timestampMs: record.block.header.timestampMs,
    txCount: record.block.txs.length,
    txIds: [],
  };
}

export function LiveProvider({ children }: { readonly children: ReactNode }) {
  const [live, setLive] = useState<Live>(initial);
  const tipRef = useRef(-1);

  useEffect(() => {
    let stopped = false;
    let source: EventSource | null = null;
    let poller: ReturnType<typeof setInterval> | null = null;

    /** Reads blocks above the newest one the page has, so no block is missed. */
    const catchUp = async (height: number) => {
      const from = tipRef.current < 0 ? Math.max(1, height - 99) : tipRef.current + 1;
      if (from > height) return;
      tipRef.current = height;
      try {
        const page = await blockRange(from, height - from + 1);
        if (!stopped) setLive((l) => addBlocks(l, page.blocks.map(toEvent)));
      } catch {
        tipRef.current = from - 1;
      }
    };

    const onStatus = (status: Status, connection: Connection) => {
      setLive((l) => ({ ...l, status, connection, error: null, updatedMs: Date.now() }));
      if (status.height > tipRef.current) void catchUp(status.height);
    };

    const poll = async () => {
      try {
        const status = await api.status();
        if (!stopped) onStatus(status, 'polling');
      } catch (err) {
        if (!stopped) {
          setLive((l) => ({
            ...l,
            connection: 'down',
            error: `The validator that served this page does not answer (${(err as Error).message}). Check that it runs; the page retries every ${pollMs / 1000} s.`,
          }));
        }
      }
    };

    const startPolling = () => {
      if (poller !== null || stopped) return;
      void poll();
      poller = setInterval(() => void poll(), pollMs);
    };

    // History first, so the chart and the block list are not empty until the next block.
    void poll().then(() => {
      if (stopped) return;
      if (typeof EventSource === 'undefined') {
        startPolling();
        return;
      }
      source = new EventSource(routes.events.url);
      source.addEventListener('status', (e) => {
        onStatus(JSON.parse((e as MessageEvent<string>).data) as Status, 'live');
      });
      source.addEventListener('block', (e) => {
        const block = JSON.parse((e as MessageEvent<string>).data) as BlockEvent;
        if (block.height > tipRef.current + 1 && tipRef.current >= 0) void catchUp(block.height - 1);
        tipRef.current = Math.max(tipRef.current, block.height);
        setLive((l) => addBlocks({ ...l, connection: 'live' }, [block]));
      });
      source.onerror = () => {
        // A closed stream (route missing, validator gone) falls back to polling; a stream that
        // reconnects by itself stays, and polling covers the gap.
        if (source?.readyState === EventSource.CLOSED) {
          source = null;
          startPolling();
        } else {
          setLive((l) => ({ ...l, connection: 'connecting' }));
          void poll();
        }
      };
    });

    return () => {
      stopped = true;
      source?.close();
      if (poller !== null) clearInterval(poller);
    };
  }, []);

  return <LiveContext.Provider value={live}>{children}</LiveContext.Provider>;
}
