/**
 * Every limit in one place (TigerBeetle's constants.zig, js-libp2p's LIMITS.md).
 * Nothing in ConfigChain is unbounded: queues, caches, frames, requests and blocks all have a cap here.
 * The assertions at the bottom state how the limits must relate; breaking one fails at import time.
 */

// Ledger
export const txBytesMax = 64 * 1024;
export const blockTxsMax = 1000;
export const blockBytesMax = 4 * 1024 * 1024;
export const inlineContentBytesMax = 16 * 1024;
export const targetNameLengthMax = 128;
export const versionMax = Number.MAX_SAFE_INTEGER;
export const deviceIdLengthMax = 128;
export const validatorsMax = 64;
export const adminsMax = 64;
export const chainIdLengthMax = 64;
export const adminIdLengthMax = 64;
export const urlLengthMax = 512;
/** The largest TCP port, the bound of every --port and --base-port. */
export const portMax = 65_535;
export const configSourcesMax = 16;
export const mediaTypeLengthMax = 128;
export const deviceGroupLengthMax = 64;
export const revokeReasonLengthMax = 512;
export const reportDetailLengthMax = 1024;
/** Characters of a rollout id (it names a state key, "rollout/<id>"). */
export const rolloutIdLengthMax = 64;
/** Waves of one staged rollout (the entry holds a progress record per wave). */
export const rolloutWavesMax = 20;
/** Rollouts one GET /v1/rollouts answer lists (newest first). */
export const rolloutsPageMax = 200;
/** Parsed Ed25519 public keys kept for signature checks (admins, validators, devices). */
export const publicKeyCacheMax = 4096;

// Merkle trees (RFC 9162)
/**
 * Hashes a verifier accepts in one proof. Tree sizes are below 2^53, so an inclusion proof has at
 * most 53 hashes and a consistency proof at most about twice that; anything longer is garbage.
 */
export const merkleProofHashesMax = 128;

// Consensus
export const checkpointInterval = 16;
/** Sequence numbers in flight above the stable checkpoint (PBFT's L). */
export const watermarkWindow = 4 * checkpointInterval;
export const batchWaitMsMax = 5;
export const viewChangeTimeoutMs = 1000;
export const viewChangeTimeoutMsMax = 60_000;
export const requestTimeoutMs = 2000;
export const pendingRequestsMax = 50_000;
export const stateTransferBlocksPerRequestMax = 64;
export const futureMessagesMax = 4096;
/** A replica re-sends its unanswered consensus messages (votes, view-change, checkpoint) this often. */
export const consensusRetransmitMs = 500;
/** Recently committed request keys a replica remembers to answer duplicates without asking the app. */
export const committedRequestsRememberedMax = 100_000;

// Network
export const frameBytesMax = blockBytesMax + 1024 * 1024;
export const peerReconnectMsMin = 50;
export const peerReconnectMsMax = 5000;
export const peerSendQueueFramesMax = 10_000;
/** Bytes waiting in one peer's send queue; with frames up to frameBytesMax the frame count alone is no bound. */
export const peerSendQueueBytesMax = 64 * 1024 * 1024;
/** Each side of a peer link sends a keepalive (a zero-length frame) this often. */
export const peerKeepaliveMs = 500;
/** A link that has received nothing for this long is closed, so a stopped peer shows as down. */
export const peerIdleTimeoutMs = 2500;
/** A TCP connect plus TLS handshake plus the peer's first frame must complete within this time. */
export const peerHandshakeTimeoutMs = 2000;
/** Inbound peer connections accepted at once (authenticated or not); each validator opens one. */
export const peerInboundConnectionsMax = 2 * validatorsMax;

// HTTP and artifacts
export const httpBodyBytesMax = 1024 * 1024;
export const artifactBytesMax = 1024 * 1024 * 1024;
export const validateHashTimeoutMs = 5000;
/** Blocks per GET /v1/blocks page. */
export const apiBlocksPageMax = 100;
/** GET /chain returns at most this many of the newest blocks (the article's client reads it whole). */
export const chainResponseBlocksMax = 1000;
/** GET /chain stops adding older blocks once this many transactions are in the answer. */
export const chainResponseTxsMax = 20_000;
/** Entries per GET /v1/targets/:target/history answer. */
export const targetHistoryPageMax = 1000;
/** How long POST /v1/tx may be asked to wait for a commit. */
export const txWaitMsMax = 30_000;

// Dashboard (web/, served at /ui by src/api/ui.ts)
/** Largest file of the built dashboard a validator serves; the whole build is well under 1 MiB. */
export const uiFileBytesMax = 8 * 1024 * 1024;
/** Blocks the dashboard reads back from the tip when it looks for targets or a configuration hash. */
export const uiScanBlocksMax = 2000;
/** Points kept per series of the dashboard's blocks/s and tx/s chart (5 s buckets: 10 minutes). */
export const uiChartBucketsMax = 120;
/** Blocks the dashboard keeps from the live event stream. */
export const uiLiveBlocksMax = 200;
/** An upload's signed timestamp may differ from the config server's clock by at most this. */
export const uploadTokenSkewMsMax = 5 * 60_000;
/** How far a device request's signed timestamp may be from a validator's clock. */
export const deviceRequestSkewMsMax = 5 * 60_000;
/** Versions per GET /v1/targets/:target/versions answer of a config server. */
export const artifactVersionsPageMax = 50_000;
/** Devices per GET /v1/devices page. */
export const devicesPageMax = 1000;
/** Device reports listed with a target's history (GET /v1/targets/:target/history). */
export const targetHistoryReportsMax = 1000;
/** GET /v1/events streams open at once on one validator; more are refused with 503. */
export const eventSubscribersMax = 64;
/** Bytes an event stream may have unsent; a client that falls further behind is dropped. */
export const eventStreamBufferBytesMax = 1024 * 1024;
/** GET /v1/events sends the node status this often. */
export const eventStatusIntervalMs = 1000;
/** GET /v1/events sends a comment line this often, so proxies keep an idle stream open. */
export const eventKeepaliveMs = 15_000;
/** Artifacts one config server indexes (versions over all targets). */
export const artifactIndexEntriesMax = 1_000_000;

// Storage
/** Rows one store query returns at most (blocks, history, reports, devices): callers page with cursors. */
export const storeQueryRowsMax = 1000;
/** Canonical JSON bytes of one consensus-log record (a new-view with its proofs is the largest). */
export const consensusRecordBytesMax = 2 * frameBytesMax;
/** Records one appendConsensusRecords() call writes at most. */
export const consensusRecordsPerAppendMax = 4096;
/** Characters of a consensus-log record's kind ("pre-prepare", "view-change", ...). */
export const consensusRecordKindLengthMax = 64;

// Node (src/node): the validator process around the replica
/** How long a node waits for its validator-facing config server before calling it unreachable. */
export const configSourceFetchTimeoutMs = 2000;
/** Config-server offers (target, sha256 -> version, size) a node caches. */
export const configSourceOffersCachedMax = 262_144;
/** Versions newer than the current one a node reads from its config server in one request. */
export const configSourcePageVersions = 1000;
/** A target's page of newer versions is read again at most this often. */
export const configSourcePageRefetchMsMin = 250;
/** Fetch-and-hash verdicts (sha256, size -> match or why not) a node caches. */
export const artifactVerdictsCachedMax = 16_384;
/** A validator's whole fetch of one artifact from its config source must finish within this. */
export const artifactFetchTimeoutMs = 60_000;
/** Bytes of fetched content a node holds until its release commits (to keep a copy). */
export const contentPendingBytesMax = 64 * 1024 * 1024;
/** Content copies waiting to be fetched in the background (releases this node did not fetch). */
export const contentBackfillQueueMax = 4096;
/** Media types of released content a node remembers, for the content-type of the copies it serves. */
export const contentMediaTypesCachedMax = 16_384;
/** Attempts to fetch one missed content copy in the background before giving up (until restart). */
export const contentBackfillAttemptsMax = 8;
/** Device public keys parsed once and kept for request signature checks. */
export const deviceKeysCachedMax = 4096;
/** Newest blocks a node looks through at start for content copies it should hold but does not. */
export const contentScanBlocksMax = 1000;
/** Heartbeats (node-api): how often a node checks whether the chain has been idle long enough. */
export const heartbeatCheckMs = 25;
/** Consensus messages whose signature checks a node caches (the replica's step is a cache lookup). */
export const signatureCacheMax = 200_000;
/** Blocks proposed but not committed whose speculative ledger states a node keeps. */
export const speculativeStatesMax = 4 * watermarkWindow;
/** validateHash calls waiting at once on one node; more are refused as unavailable. */
export const pendingValidationsMax = 20_000;
/** How often the node feeds the replica a tick. */
export const replicaTickMs = 10;
/**
 * The batch wait a validator node gives its replica. Under load the node's own admission batching
 * groups requests into blocks, so the replica need not wait long for more: a short wait makes an
 * idle network propose a new request at once.
 */
export const nodeBatchWaitMs = 1;

// Operators' tools (src/ops): commands that verify what they print, and chain export files
/** Blocks an operator command asks a validator for in one GET /v1/blocks page. */
export const opsBlocksPageSize = apiBlocksPageMax;
/** Bytes of one GET /v1/blocks answer an operator command reads; a larger page is asked again with fewer blocks. */
export const opsPageBytesMax = 64 * 1024 * 1024;
/** Verified blocks a chain reader keeps in memory (the newest ones). */
export const opsVerifiedBlocksCachedMax = 1024;
/** How long an operator command waits for one answer of a validator. */
export const opsRequestTimeoutMs = 10_000;
/** How long an operator command waits for a validator's /health or /v1/status when it probes a network. */
export const opsProbeTimeoutMs = 3000;
/** Devices named one by one in a status or history answer; beyond it only counts are given. */
export const opsDevicesListedMax = 1000;
/** Rollouts under way that `status` lists (newest first); `rollout show` lists them all. */
export const opsStatusRolloutsMax = 20;
/** Transactions one `configchain audit` lists at most (--limit may ask for fewer). */
export const opsAuditEntriesMax = 100_000;
/** Bytes of one configuration content that show and diff read into memory. */
export const opsContentBytesMax = 64 * 1024 * 1024;
/** Lines per side that `configchain diff` compares. */
export const opsDiffLinesMax = 200_000;
/** Changed lines (insertions plus deletions) beyond which diff gives up and says so: its memory grows with their square. */
export const opsDiffEditsMax = 4000;
/** Bytes of one line of a chain export file (a block of blockBytesMax, its certificate and JSON overhead). */
export const exportLineBytesMax = 2 * blockBytesMax + 1024 * 1024;

// Simulator (src/sim): the budget of one simulated run and of a batch
/** Events the simulator's agenda holds at once; beyond it a simulated message is dropped and counted. */
export const simEventsQueuedMax = 200_000;
/** Events one seed may process: a run that needs more is reported as a violation, not left spinning. */
export const simEventsPerSeedMax = 3_000_000;
/** Trace entries (and milestones) kept for a failure report. */
export const simTraceEntriesMax = 200;
/** Durable consensus records a simulated replica may hold right after compaction. */
export const simRecordsPerReplicaMax = 20_000;
/** Messages a Byzantine replica remembers for replays. */
export const simReplayBufferMax = 256;
/** Failed seeds kept in full (plan and trace) per batch; further failures are counted and listed. */
export const simFailuresKeptMax = 20;
/** Worker threads one `configchain sim` may start. */
export const simWorkersMax = 64;

// Operator CLI (publish, approve, devices, the device part of `configchain up`)
/** One request of an operator command to a validator or config server. */
export const operatorRequestTimeoutMs = 30_000;
/** How long an operator command waits for its transaction to commit before it says it is pending. */
export const operatorCommitWaitMs = 60_000;
/** How often an operator command asks whether a pending transaction has committed. */
export const operatorTxPollMs = 250;
/** One upload of `configchain publish` to a config server (an artifact may be up to artifactBytesMax). */
export const operatorUploadTimeoutMs = 30 * 60_000;
/** How long `up` waits for the demo device to report a published version on the ledger. */
export const demoDeviceReportWaitMs = 60_000;

// Device agent (src/device): one round fetches a proof, downloads, applies and reports
/** One request of the device agent to a validator (a proof, a report, a hash check). */
export const deviceRequestTimeoutMs = 10_000;
/** Bytes of one validator answer the device agent reads (a proof is a few kilobytes). */
export const deviceAnswerBytesMax = httpBodyBytesMax;
/** A whole artifact download must finish within this; the size limit is the release's own size. */
export const deviceDownloadTimeoutMs = 10 * 60_000;
/** Bytes of one Range request of the device's resumable download (the unit of progress kept). */
export const deviceDownloadChunkBytes = 8 * 1024 * 1024;
/** One chunk request of the resumable download must finish within this; a slow chunk is resumed next round. */
export const deviceDownloadChunkTimeoutMs = 2 * 60_000;
/**
 * The slowest transfer rate an artifact fetch or upload is given time for: timeouts for a large
 * artifact grow by its size at this rate (1 GiB: 128 s more than the base timeout).
 */
export const artifactTransferBytesPerSecondMin = 8 * 1024 * 1024;
/** How long the optional hook command may run before it is killed and the apply counts as failed. */
export const deviceHookTimeoutMs = 60_000;
/** Bytes of the hook's output kept for the report's detail and the log. */
export const deviceHookOutputBytesMax = 4096;
/** How long a device report may wait for its commit (POST /v1/tx waitMs). */
export const deviceReportWaitMs = 5000;
/** The agent's pause between rounds when all is well (--interval-ms overrides it). */
export const deviceIntervalMsDefault = 5000;
/** The longest --interval-ms a device agent accepts (a day; timers cap near 24.8 days anyway). */
export const deviceIntervalMsMax = 24 * 60 * 60_000;
/** The first and the largest back-off after a failed round; jitter picks within [backoff/2, backoff]. */
export const deviceBackoffMsMin = 500;
export const deviceBackoffMsMax = 60_000;
/** Bytes of the device's state.json. */
export const deviceStateBytesMax = 64 * 1024;

function assert(condition: boolean, message: string): void {
  if (!condition) throw new Error(`constants: ${message}`);
}

assert(watermarkWindow >= 2 * checkpointInterval, 'the window must hold at least two checkpoint intervals');
assert(
  blockTxsMax * 64 <= blockBytesMax,
  'a full block of minimal transactions must fit the block byte limit',
);
assert(txBytesMax <= blockBytesMax, 'one transaction must fit in a block');
assert(frameBytesMax > blockBytesMax, 'a frame must carry a whole block plus its envelope');
assert(inlineContentBytesMax < txBytesMax, 'inline content must leave room in its transaction');
assert(viewChangeTimeoutMs < viewChangeTimeoutMsMax, 'the view-change backoff needs room to grow');
assert(
  requestTimeoutMs >= viewChangeTimeoutMs,
  'a request gets at least one view-change timeout before it is suspected',
);
assert(
  validateHashTimeoutMs > requestTimeoutMs,
  'a validation waits longer than one view change takes to start',
);
assert(peerReconnectMsMin < peerReconnectMsMax, 'the reconnect backoff needs room to grow');
assert(deviceBackoffMsMin < deviceBackoffMsMax, "the device agent's back-off needs room to grow");
assert(
  deviceReportWaitMs < deviceRequestTimeoutMs,
  'a device report waits for its commit within the request timeout',
);
assert(peerSendQueueBytesMax >= frameBytesMax, 'a peer send queue must hold at least one largest frame');
assert(
  peerIdleTimeoutMs >= 3 * peerKeepaliveMs,
  'a link survives two lost keepalives before it is called idle',
);
assert(
  configSourceFetchTimeoutMs < validateHashTimeoutMs,
  'a config-server check must end before the validation deadline',
);
assert(
  nodeBatchWaitMs >= 1 && nodeBatchWaitMs <= batchWaitMsMax,
  'the node batch wait is at least 1 ms (so requests stepped together share a block) and within the limit',
);
assert(
  replicaTickMs <= batchWaitMsMax * 4,
  'ticks must come often enough for the batch wait to mean something',
);
