/**
 * `npm run bench -- net [--quick]`: peer transport figures on loopback, TLS against in-memory.
 * Both ends of every link run in this one process (one event loop does the sending, the TLS work
 * of both sides and the receiving), so the TLS figures are a lower bound for separate processes.
 *
 * - one-way small messages (a PBFT-vote-sized JSON object) on one link, windowed so the bounded
 *   send queue never drops: messages/s and MB/s;
 * - 4 validators all broadcasting at once: deliveries/s;
 * - 1 MiB messages (block-sized) on one link: MB/s;
 * - ping-pong round-trip latency for one small message: p50 and p99.
 */
import { performance } from 'node:perf_hooks';
import pino from 'pino';
import type { ValidatorId } from '../src/encoding/brand.ts';
import { ConfigChainError } from '../src/errors.ts';
import { MemoryNetwork } from '../src/net/memory-transport.ts';
import { type CertAndKey, createCa, issueValidatorCert } from '../src/net/pki.ts';
import { TlsTransport } from '../src/net/tls-transport.ts';
import type { Transport } from '../src/net/transport.ts';

type Cluster = { readonly transports: Transport[]; close(): Promise<void> };

const vote = {
  kind: 'prepare',
  view: 3,
  seq: 123456,
  digest: 'ab'.repeat(32),
  replica: 2,
  signature: 'cd'.repeat(64),
};

export async function run(args: string[]): Promise<void> {
  const quick = args.includes('--quick');
  const small = quick ? 20_000 : 200_000;
  const big = quick ? 20 : 200;
  const pings = quick ? 500 : 5000;
  const ca = await createCa('bench');
  const certs: CertAndKey[] = [];
  for (let id = 0; id < 4; id++) certs.push(await issueValidatorCert(ca, id));

  const kinds: [string, (n: number) => Promise<Cluster>][] = [
    ['tls', (n) => tlsCluster(ca, certs, n)],
    ['memory', memoryCluster],
  ];
  const bytesPerVote = Buffer.byteLength(JSON.stringify(vote)) + 4;
  console.log(`peer transport benchmark (${quick ? 'quick' : 'full'}), Node ${process.version}`);
  console.log(`small message: ${bytesPerVote} bytes framed; both ends in one process\n`);
  for (const [name, make] of kinds) {
    {
      const c = await make(2);
      const { rate, seconds } = await oneWay(c, small, vote);
      console.log(
        `${name.padEnd(6)} one-way small:   ${fmt(rate)} msg/s  ${((rate * bytesPerVote) / 1e6).toFixed(1)} MB/s  (${small} in ${seconds.toFixed(2)} s)`,
      );
      await c.close();
    }
    {
      const c = await make(4);
      const { rate } = await allBroadcast(c, small / 8);
      console.log(`${name.padEnd(6)} 4-way broadcast: ${fmt(rate)} deliveries/s`);
      await c.close();
    }
    {
      const c = await make(2);
      const payload = { kind: 'blocks', data: 'x'.repeat(1024 * 1024) };
      const { rate } = await oneWay(c, big, payload, 8);
      console.log(`${name.padEnd(6)} one-way 1 MiB:   ${((rate * (1024 * 1024)) / 1e6).toFixed(0)} MB/s`);
      await c.close();
    }
    {
      const c = await make(2);
      const { p50, p99, mean } = await pingPong(c, pings);
      console.log(
        `${name.padEnd(6)} round trip:      p50 ${p50.toFixed(3)} ms  p99 ${p99.toFixed(3)} ms  mean ${mean.toFixed(3)} ms\n`,
      );
      await c.close();
    }
  }
}

async function oneWay(c: Cluster, count: number, message: object, window = 5000) {
  const [a, b] = c.transports as [Transport, Transport];
  let received = 0;
  b.onMessage(() => {
    received++;
  });
  const started = performance.now();
  let sent = 0;
  while (received < count) {
    while (sent < count && sent - received < window) {
      a.send(1 as ValidatorId, message);
      sent++;
    }
    await new Promise((resolve) => setImmediate(resolve));
  }
  const seconds = (performance.now() - started) / 1000;
  return { rate: count / seconds, seconds };
}

async function allBroadcast(c: Cluster, perNode: number) {
  const n = c.transports.length;
  const expected = perNode * n * (n - 1);
  let received = 0;
  for (const t of c.transports) {
    t.onMessage(() => {
      received++;
    });
  }
  const started = performance.now();
  let sent = 0;
  while (received < expected) {
    while (sent < perNode && sent * n * (n - 1) - received < 4000) {
      for (const t of c.transports) t.broadcast(vote);
      sent++;
    }
    await new Promise((resolve) => setImmediate(resolve));
  }
  const seconds = (performance.now() - started) / 1000;
  return { rate: expected / seconds };
}

async function pingPong(c: Cluster, count: number) {
  const [a, b] = c.transports as [Transport, Transport];
  b.onMessage((from, message) => b.send(from, message));
  const samples: number[] = [];
  let resolveOne: (() => void) | null = null;
  a.onMessage(() => resolveOne?.());
  for (let i = 0; i < count; i++) {
    const started = performance.now();
    await new Promise<void>((resolve) => {
      resolveOne = resolve;
      a.send(1 as ValidatorId, { ping: i });
    });
    samples.push(performance.now() - started);
  }
  const mean = samples.reduce((x, y) => x + y, 0) / samples.length;
  samples.sort((x, y) => x - y);
  const at = (q: number) => samples[Math.min(samples.length - 1, Math.floor(q * samples.length))] ?? 0;
  return { p50: at(0.5), p99: at(0.99), mean };
}

async function tlsCluster(ca: CertAndKey, certs: CertAndKey[], n: number): Promise<Cluster> {
  for (let attempt = 0; ; attempt++) {
    const base = 20_000 + Math.floor(Math.random() * 19_000);
    const validators = Array.from({ length: n }, (_, id) => ({ id, host: '127.0.0.1', port: base + id }));
    const transports = validators.map(
      (v) =>
        new TlsTransport({
          self: v.id as ValidatorId,
          validators,
          tls: { caPem: ca.certPem, certPem: certs[v.id]!.certPem, keyPem: certs[v.id]!.keyPem },
          logger: pino({ level: 'silent' }),
        }),
    );
    try {
      for (const t of transports) await t.start();
    } catch (error) {
      for (const t of transports) await t.stop();
      if (error instanceof ConfigChainError && error.code === 'NET_LISTEN_FAILED' && attempt < 10) continue;
      throw error;
    }
    await allUp(transports);
    return { transports, close: async () => void (await Promise.all(transports.map((t) => t.stop()))) };
  }
}

async function memoryCluster(n: number): Promise<Cluster> {
  const network = new MemoryNetwork({ validators: n });
  const transports = Array.from({ length: n }, (_, id) => network.transport(id));
  for (const t of transports) await t.start();
  await allUp(transports);
  return { transports, close: async () => void (await Promise.all(transports.map((t) => t.stop()))) };
}

async function allUp(transports: Transport[]): Promise<void> {
  const deadline = Date.now() + 10_000;
  while (!transports.every((t) => t.peerStatus().every((s) => s.connected))) {
    if (Date.now() > deadline) throw new Error('the benchmark cluster did not connect within 10 s');
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

function fmt(rate: number): string {
  return Math.round(rate).toLocaleString('en-US').padStart(9);
}
