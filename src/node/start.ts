/**
 * The one place a validator is wired together (Lodestar's beacon-node style): load genesis, keys
 * and certificates from the network directory; open the SQLite store and verify the chain (a bad
 * chain refuses to start and names the first bad height); rebuild the ledger state; restore the
 * replica from its consensus log; start the peer transport, the replica driver with its ticks, and
 * the HTTP API. stop() undoes it in reverse order.
 */
import type { FastifyInstance } from 'fastify';
import type { Logger } from 'pino';
import { buildApiServer } from '../api/server.ts';
import { Replica } from '../consensus/replica.ts';
import type { ReplicaConfig } from '../consensus/types.ts';
import { heartbeatCheckMs, nodeBatchWaitMs, replicaTickMs } from '../constants.ts';
import { sign } from '../crypto/ed25519.ts';
import { loadPrivateKey } from '../crypto/keyfile.ts';
import type { ValidatorId } from '../encoding/brand.ts';
import { ConfigChainError } from '../errors.ts';
import { blockHash, genesisBlock, LedgerState } from '../ledger/index.ts';
import type { Genesis, Transaction } from '../ledger/types.ts';
import { loadCertAndKey, readPem } from '../net/pki.ts';
import { TlsTransport } from '../net/tls-transport.ts';
import type { Transport } from '../net/transport.ts';
import { SqliteStore } from '../storage/sqlite.ts';
import type { Store } from '../storage/store.ts';
import { LedgerApp, type NodeBlock } from './application.ts';
import { ConfigSourceClient } from './config-source.ts';
import { ReplicaDriver } from './driver.ts';
import { loadGenesisFile, loadNetworkFile, paths } from './layout.ts';
import { createNodeMetrics } from './metrics.ts';
import { fromStored } from './records.ts';
import { ValidatorNode } from './validator.ts';
import { ConsensusVerifier, TxSignatureChecker, type VerifyOn } from './verifier.ts';

export interface StartOptions {
  readonly dir: string;
  readonly id: number;
  readonly logger: Logger;
  /** Called when the node hits an inconsistency it cannot serve through; it has stopped consensus. */
  readonly onFatal?: (error: Error) => void;
  /** Tests may pass another transport (e.g. in-memory); the default is mutual TLS. */
  readonly transport?: (genesis: Genesis) => Transport;
  /** Listen address of the HTTP API; the network file's host by default. */
  readonly apiHost?: string;
  /** Where signatures are checked (see VerifyOn); the thread pool by default. */
  readonly verifyOn?: VerifyOn;
}

export interface RunningNode {
  readonly node: ValidatorNode;
  readonly api: FastifyInstance;
  readonly store: Store;
  readonly driver: ReplicaDriver;
  stop(): Promise<void>;
}

export class NodeStartError extends ConfigChainError<
  'NODE_START',
  { readonly dir: string; readonly id: number; readonly height?: number }
> {}

export async function startNode(options: StartOptions): Promise<RunningNode> {
  const { dir, logger: log } = options;
  const network = loadNetworkFile(dir);
  const self = network.validators[options.id];
  if (self === undefined) {
    throw new NodeStartError(
      'NODE_START',
      `validator ${options.id} is not in ${paths.network(dir)} (ids 0..${network.validators.length - 1})`,
      { dir, id: options.id },
    );
  }
  const id = options.id as ValidatorId;
  const genesis = loadGenesisFile(dir);
  const key = loadPrivateKey(paths.validatorKey(dir, id));
  if (key.publicKeyHex !== genesis.validators[id]?.publicKey) {
    throw new NodeStartError(
      'NODE_START',
      `${paths.validatorKey(dir, id)} is not the key genesis names for validator ${id}; the network directory is inconsistent`,
      { dir, id },
    );
  }

  // Benchmarks only: measure what the durable writes cost. A node run this way may lose votes it
  // sent on a power failure, which PBFT's safety argument does not allow.
  const unsafeSkipFsync = process.env.CONFIGCHAIN_UNSAFE_SKIP_FSYNC === '1';
  if (unsafeSkipFsync) log.warn('CONFIGCHAIN_UNSAFE_SKIP_FSYNC=1: commits are not fsynced (benchmarks only)');
  const store = SqliteStore.open(paths.database(dir, id), { genesis, unsafeSkipFsync });
  let closeStore = true;
  try {
    const verified = store.verifyChain();
    if (!verified.ok) {
      throw new NodeStartError(
        'NODE_START',
        `the stored chain is corrupt from height ${verified.height}: ${verified.reason}. Refusing to serve it; ` +
          `move ${paths.database(dir, id)} away and restart to fetch the chain from the other validators`,
        { dir, id, height: verified.height },
      );
    }
    const tip = store.tip();
    const tipBlock = store.blockByHeight(tip.height);
    if (tipBlock === null)
      throw new NodeStartError(
        'NODE_START',
        `the store has no block at its tip ${tip.height}; the database is damaged: ` +
          `move ${paths.database(dir, id)} away and restart to fetch the chain from the other validators`,
        { dir, id },
      );
    const state = LedgerState.fromEntries(store.allStateEntries().map((e) => e.entry));
    if (state.root !== tipBlock.block.header.stateRoot) {
      throw new NodeStartError(
        'NODE_START',
        `the stored state does not match the state root of block ${tip.height}; the database is corrupt: ` +
          `move ${paths.database(dir, id)} away and restart to fetch the chain from the other validators`,
        { dir, id, height: tip.height },
      );
    }
    log.info({ height: tip.height, hash: tip.hash, entries: state.size }, 'chain verified and state rebuilt');

    const validatorSource = genesis.configSources.find((s) => s.role === 'validator-facing');
    if (validatorSource === undefined) {
      throw new NodeStartError(
        'NODE_START',
        `${paths.genesis(dir)} names no config source with role 'validator-facing', which validators ` +
          'ask before they vote; a genesis cannot change, so create the network again with configchain init',
        { dir, id },
      );
    }
    const configSource = new ConfigSourceClient({
      baseUrl: validatorSource.url,
      artifactBytesMax: genesis.policy.artifactBytesMax,
      keepContentBytesMax: genesis.policy.contentCopyBytesMax,
    });
    const txChecker = new TxSignatureChecker(genesis, options.verifyOn);
    const app = new LedgerApp({
      genesis,
      committed: { header: tipBlock.block.header, hash: tip.hash, state, changes: [] },
      configSource,
      now: Date.now,
      signatureChecked: txChecker.isChecked,
      onRejected: (rejected) =>
        log.debug({ count: rejected.length }, 'left invalid transactions out of a block'),
      findCommittedTx: (txId) => store.txById(txId)?.height ?? null,
      committedHashAt: (height) => store.blockByHeight(height)?.hash,
    });

    const transport =
      options.transport?.(genesis) ??
      new TlsTransport({
        self: id,
        validators: network.validators.map((v) => ({ id: v.id, host: v.host, port: v.peerPort })),
        tls: {
          caPem: readPem(paths.caCert(dir), 'CERTIFICATE'),
          ...loadCertAndKey(paths.tlsCert(dir, id), paths.tlsKey(dir, id)),
        },
        logger: log.child({ part: 'transport' }),
      });

    let replicaRef: Replica<NodeBlock, Transaction> | null = null;
    const metrics = createNodeMetrics(id, {
      height: () => app.committed.header.height,
      view: () => replicaRef?.view ?? 0,
      pendingTxs: () => replicaRef?.pendingRequests ?? 0,
      transport: () => transport.counters(),
    });
    const verifier = new ConsensusVerifier(genesis, options.verifyOn);
    const config: ReplicaConfig = {
      chainId: genesis.chainId,
      id,
      n: genesis.validators.length,
      genesisHash: blockHash(genesisBlock(genesis).header),
      signer: { sign: (domain, payload) => sign(domain, payload, key.privateKey) },
      verifier,
      // The node submits heartbeat transactions itself (ValidatorNode.heartbeatTick), so that a
      // backup can also ask for one; the replica's own empty heartbeat blocks stay off.
      limits: { heartbeatIntervalMs: 0, batchWaitMs: nodeBatchWaitMs },
    };
    const records = fromStored(store.loadConsensusRecords());
    const replica = new Replica<NodeBlock, Transaction>(config, app, {
      records,
      executed: { height: tip.height, hash: tip.hash },
    });
    replicaRef = replica;
    log.info({ records: records.length, view: replica.view }, 'replica restored from its consensus log');

    const node = new ValidatorNode({
      id,
      genesis,
      key: key.privateKey,
      store,
      app,
      transport,
      configSource,
      txChecker,
      metrics,
      logger: log,
      consensusVerifier: verifier,
    });
    let lastView: (typeof records)[number] | undefined;
    for (const r of records) if (r.kind === 'view') lastView = r;
    const driver = new ReplicaDriver({
      replica,
      app,
      store,
      transport,
      logger: log.child({ part: 'replica' }),
      ...(lastView === undefined ? {} : { lastViewRecord: lastView }),
      onBlockValidated: (valid) => metrics.blockValidations.inc({ result: valid ? 'valid' : 'invalid' }),
      hooks: {
        onCommitted: (s, block, cert) => node.onCommitted(s, block, cert),
        onReply: (action) => node.onReply(action),
        onViewChanged: () => metrics.viewChanges.inc(),
        onFatal: (error) => {
          log.fatal({ err: error }, 'stopping consensus');
          options.onFatal?.(error);
        },
      },
    });
    node.attach(driver);
    transport.onMessage((from, message) => node.onPeerMessage(from, message));
    transport.onPeerStatus((status) =>
      log.info({ peer: status.id, connected: status.connected }, 'peer link changed'),
    );
    await transport.start();

    driver.tick();
    const ticker = setInterval(() => driver.tick(), replicaTickMs);
    const heartbeats = setInterval(() => node.heartbeatTick(), heartbeatCheckMs);

    const api = await buildApiServer(node, { logger: false });
    try {
      await api.listen({ host: options.apiHost ?? self.host, port: self.apiPort });
    } catch (error) {
      clearInterval(ticker);
      clearInterval(heartbeats);
      await transport.stop();
      throw new NodeStartError(
        'NODE_START',
        `cannot listen on ${self.host}:${self.apiPort} for the HTTP API (${(error as Error).message}); is another node running there?`,
        { dir, id },
      );
    }
    log.info(
      { api: `http://${self.host}:${self.apiPort}`, peer: `${self.host}:${self.peerPort}` },
      'validator started',
    );
    closeStore = false;

    let stopped = false;
    return {
      node,
      api,
      store,
      driver,
      async stop() {
        if (stopped) return;
        stopped = true;
        clearInterval(ticker);
        clearInterval(heartbeats);
        driver.stop();
        node.close();
        await api.close();
        await transport.stop();
        configSource.close();
        store.close();
        log.info('validator stopped');
      },
    };
  } finally {
    if (closeStore) store.close();
  }
}
