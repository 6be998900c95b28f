/**
 * The node's Prometheus metrics, all in one registry the API serves at GET /metrics.
 * Gauges that mirror state (height, view, peers) are read when scraped (collect callbacks), so the
 * hot paths only bump counters and observe histograms.
 */
import { Counter, collectDefaultMetrics, Gauge, Histogram, Registry } from 'prom-client';
import type { TransportCounters } from '../net/transport.ts';

export interface MetricsSources {
  readonly height: () => number;
  readonly view: () => number;
  readonly pendingTxs: () => number;
  readonly transport: () => TransportCounters;
}

export interface NodeMetrics {
  readonly registry: Registry;
  readonly viewChanges: Counter;
  readonly committedTxs: Counter;
  readonly committedBlocks: Counter;
  readonly validations: Counter<'outcome'>;
  readonly validationLatency: Histogram<'outcome'>;
  readonly blockValidations: Counter<'result'>;
}

export function createNodeMetrics(validatorId: number, sources: MetricsSources): NodeMetrics {
  const registry = new Registry();
  registry.setDefaultLabels({ validator: String(validatorId) });
  collectDefaultMetrics({ register: registry, prefix: 'configchain_process_' });

  new Gauge({
    name: 'configchain_height',
    help: 'Height of the last committed block',
    registers: [registry],
    collect() {
      this.set(sources.height());
    },
  });
  new Gauge({
    name: 'configchain_view',
    help: 'Current PBFT view',
    registers: [registry],
    collect() {
      this.set(sources.view());
    },
  });
  new Gauge({
    name: 'configchain_pending_txs',
    help: 'Client requests waiting to be ordered',
    registers: [registry],
    collect() {
      this.set(sources.pendingTxs());
    },
  });
  new Gauge({
    name: 'configchain_peer_connections',
    help: 'Peers with an authenticated link up',
    registers: [registry],
    collect() {
      this.set(sources.transport().peersConnected);
    },
  });
  const transportGauge = new Gauge({
    name: 'configchain_transport_total',
    help: 'Peer transport counters (frames, bytes, drops, rejects) since start',
    labelNames: ['counter'],
    registers: [registry],
    collect() {
      const counters = sources.transport();
      for (const [name, value] of Object.entries(counters)) {
        if (name !== 'peersConnected') transportGauge.set({ counter: name }, value);
      }
    },
  });

  return {
    registry,
    viewChanges: new Counter({
      name: 'configchain_view_changes_total',
      help: 'View changes this replica went through',
      registers: [registry],
    }),
    committedTxs: new Counter({
      name: 'configchain_committed_txs_total',
      help: 'Transactions in blocks this node committed',
      registers: [registry],
    }),
    committedBlocks: new Counter({
      name: 'configchain_committed_blocks_total',
      help: 'Blocks this node committed',
      registers: [registry],
    }),
    validations: new Counter({
      name: 'configchain_validate_hash_total',
      help: 'validateHash decisions by outcome',
      labelNames: ['outcome'],
      registers: [registry],
    }),
    validationLatency: new Histogram({
      name: 'configchain_validate_hash_seconds',
      help: 'Latency of validateHash decisions by outcome',
      labelNames: ['outcome'],
      buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
      registers: [registry],
    }),
    blockValidations: new Counter({
      name: 'configchain_block_validations_total',
      help: 'External validity checks of proposed blocks by result',
      labelNames: ['result'],
      registers: [registry],
    }),
  };
}
