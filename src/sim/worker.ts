/**
 * A worker thread of the parallel runner: runs the chunks of seeds it is sent and posts back each
 * chunk's summary and failures. Seeds are independent runs, so results do not depend on which
 * worker ran them.
 */
import { parentPort } from 'node:worker_threads';
import { assert } from '../errors.ts';
import { type BatchOptions, runBatch } from './runner.ts';

export interface ChunkRequest {
  readonly first: number;
  readonly count: number;
  readonly batch: BatchOptions;
}

assert(parentPort !== null, 'src/sim/worker.ts runs only as a worker thread');
const port = parentPort;
port.on('message', (request: ChunkRequest) => {
  const result = runBatch(request.first, request.count, request.batch, () => {
    port.postMessage({ kind: 'seed-done' });
  });
  port.postMessage({ kind: 'chunk-done', summary: result.summary, failures: result.failures });
});
