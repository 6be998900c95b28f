/**
 * `npm run bench -- consensus [blocks] [txsPerBlock]`: the PBFT core alone, in one process, no
 * network: n = 4 real replicas, real Ed25519 signatures on every message (signing and verifying),
 * messages routed in memory in FIFO order. Blocks carry 1,000 requests by default. Prints committed
 * blocks/s and transactions/s (a block counts once it is delivered at every replica).
 */
import { Cluster, req } from '../src/consensus/testkit.ts';

export async function run(args: string[]): Promise<void> {
  const blocks = Number(args[0] ?? 60);
  const txsPerBlock = Number(args[1] ?? 1000);
  const n = 4;
  const cluster = new Cluster({ n, limits: { blockTxsMax: txsPerBlock, pendingRequestsMax: 50_000 } });
  // Warm up (JIT, key objects) with a few blocks outside the measurement.
  submit(cluster, 'warmup', 3 * txsPerBlock);
  cluster.tick(10, 10);
  const before = cluster.members[0]!.chain.length;
  const processedBefore = cluster.processed;

  const start = process.hrtime.bigint();
  const batch = Math.min(blocks, 40);
  for (let done = 0; done < blocks; done += batch) {
    submit(cluster, `c${done}`, Math.min(batch, blocks - done) * txsPerBlock);
    cluster.tick(10, 10);
  }
  const seconds = Number(process.hrtime.bigint() - start) / 1e9;
  const committed = Math.min(...cluster.members.map((m) => m.chain.length)) - before;
  cluster.checkAgreement();
  const txs = committed * txsPerBlock;
  console.log(`consensus core: n=${n}, ${txsPerBlock} requests per block, real Ed25519, in-memory routing`);
  console.log(`  committed blocks   ${committed} (delivered at all ${n} replicas, certificates verified)`);
  console.log(`  wall time          ${seconds.toFixed(2)} s`);
  console.log(`  blocks/s           ${(committed / seconds).toFixed(1)}`);
  console.log(`  transactions/s     ${Math.round(txs / seconds)}`);
  console.log(
    `  events stepped     ${cluster.processed - processedBefore} (messages, requests, ticks, answers)`,
  );
}

function submit(cluster: Cluster, client: string, count: number): void {
  for (let i = 0; i < count; i++) cluster.request(req(client, i, 'payload-of-a-typical-small-request'));
  cluster.run();
}
