/**
 * Runs a range of seeds on worker threads (one per core by default) so a long run uses the whole
 * machine. Chunks are handed out as workers free up; the merged summary is the same whatever the
 * split, because seeds are independent and summaries are order-free sums.
 */
import { availableParallelism } from 'node:os';
import { Worker } from 'node:worker_threads';
import { simWorkersMax } from '../constants.ts';
import { assert } from '../errors.ts';
import {
  type BatchOptions,
  emptySummary,
  failuresKeptMax,
  mergeSummaries,
  type RunSummary,
  runBatch,
} from './runner.ts';
import type { SeedResult } from './simulator.ts';
import type { ChunkRequest } from './worker.ts';

/** Seeds per chunk handed to a worker: small enough to balance, large enough to amortize messages. */
const chunkSeeds = 25;

/**
 * Workers load TypeScript through tsx's loader, registered inside the worker before the worker
 * module is imported (a worker does not inherit the main thread's module hooks on Node 20).
 */
const workerBootstrap = `
import(${JSON.stringify(import.meta.resolve('tsx/esm/api'))})
  .then(({ register }) => {
    register();
    return import(${JSON.stringify(new URL('./worker.ts', import.meta.url).href)});
  })
  .catch((error) => {
    setImmediate(() => {
      throw error;
    });
  });
`;

type WorkerMessage =
  | { readonly kind: 'seed-done' }
  | { readonly kind: 'chunk-done'; readonly summary: RunSummary; readonly failures: SeedResult[] };

export interface PoolOptions {
  readonly first: number;
  readonly count: number;
  readonly batch: BatchOptions;
  /** Worker threads; 0 or 1 runs in this thread. Defaults to the machine's parallelism. */
  readonly workers?: number | undefined;
  readonly onProgress?: ((seedsDone: number) => void) | undefined;
  readonly onFailure?: ((result: SeedResult) => void) | undefined;
}

export async function runPool(
  options: PoolOptions,
): Promise<{ summary: RunSummary; failures: SeedResult[] }> {
  const workers = Math.min(
    options.workers ?? availableParallelism(),
    simWorkersMax,
    Math.ceil(options.count / chunkSeeds),
  );
  assert(workers >= 0, 'worker count must not be negative');
  if (workers <= 1) {
    let done = 0;
    return runBatch(options.first, options.count, options.batch, (r) => {
      done++;
      if (r.violations.length > 0) options.onFailure?.(r);
      options.onProgress?.(done);
    });
  }

  const summary = emptySummary();
  const failures: SeedResult[] = [];
  let next = options.first;
  const end = options.first + options.count;
  let done = 0;

  const runWorker = (): Promise<void> =>
    new Promise((resolve, reject) => {
      const worker = new Worker(workerBootstrap, { eval: true });
      const dispatch = (): void => {
        if (next >= end) {
          void worker.terminate().then(() => resolve());
          return;
        }
        const count = Math.min(chunkSeeds, end - next);
        const request: ChunkRequest = { first: next, count, batch: options.batch };
        next += count;
        worker.postMessage(request);
      };
      worker.on('message', (message: WorkerMessage) => {
        if (message.kind === 'seed-done') {
          done++;
          options.onProgress?.(done);
          return;
        }
        mergeSummaries(summary, message.summary);
        for (const failure of message.failures) {
          options.onFailure?.(failure);
          if (failures.length < failuresKeptMax) failures.push(failure);
        }
        dispatch();
      });
      worker.on('error', reject);
      dispatch();
    });

  await Promise.all(Array.from({ length: workers }, runWorker));
  failures.sort((a, b) => a.seed - b.seed);
  return { summary, failures };
}
