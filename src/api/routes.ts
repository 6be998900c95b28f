/**
 * Every route of a validator's HTTP API, defined once as data (Lodestar's packages/api): method,
 * URL, TypeBox schemas for params, query, body and responses. The fastify server
 * (src/api/server.ts), the typed client (src/api/client.ts) and the OpenAPI document (/docs/json)
 * are all built from this table, so they cannot drift apart.
 */
import { type Static, type TSchema, Type } from 'typebox';
import {
  apiBlocksPageMax,
  chainResponseBlocksMax,
  deviceIdLengthMax,
  devicesPageMax,
  rolloutIdLengthMax,
  rolloutsPageMax,
  targetHistoryPageMax,
  targetHistoryReportsMax,
  targetNameLengthMax,
  txWaitMsMax,
} from '../constants.ts';

export type HttpMethod = 'GET' | 'POST';

export interface RouteDef {
  readonly method: HttpMethod;
  readonly url: string;
  readonly summary: string;
  readonly tags: readonly string[];
  readonly params?: TSchema;
  readonly query?: TSchema;
  readonly body?: TSchema;
  /** JSON responses by status code; text routes document their body as a string. */
  readonly responses: Readonly<Record<number, TSchema>>;
  /**
   * 'text' routes answer text/plain (the article's /validateHash, /metrics); 'bytes' routes answer
   * stored content with its own media type; 'event-stream' is server-sent events (GET /v1/events).
   */
  readonly produces: 'json' | 'text' | 'bytes' | 'event-stream';
  /**
   * Error statuses the route may answer with the JSON error body (documented in OpenAPI). The typed
   * client throws ApiRequestError for them, carrying the stable code (e.g. DEVICE_FORBIDDEN).
   */
  readonly errors?: readonly number[];
}

// Shared schemas --------------------------------------------------------------------------------

const Hex64 = Type.String({ pattern: '^[0-9a-f]{64}$', description: '64 lower-case hex characters' });
const HeightSchema = Type.Integer({ minimum: 0 });
const TargetParam = Type.String({ minLength: 1, maxLength: targetNameLengthMax });

export const ErrorSchema = Type.Object({
  statusCode: Type.Integer(),
  code: Type.String({ description: 'stable error code from src/api/errors.ts' }),
  error: Type.String(),
  message: Type.String({ description: 'what was wrong and what to do' }),
});

const TxBodySchema = Type.Object(
  {
    type: Type.String({
      description:
        'release | attest | device-enroll | device-revoke | device-report | heartbeat | rollout | rollout-control',
    }),
    chainId: Type.String(),
  },
  { additionalProperties: true, description: 'the transaction body; fields depend on type' },
);

export const TransactionSchema = Type.Object({
  body: TxBodySchema,
  signatures: Type.Array(Type.Object({ signer: Type.String(), signature: Type.String() })),
});

// Headers and state entries are hashed by whoever checks them, so an answer must carry every
// field exactly as committed: additionalProperties keeps any field a newer ledger adds.
const HeaderSchema = Type.Object(
  {
    chainId: Type.String(),
    height: HeightSchema,
    prevHash: Type.String(),
    timestampMs: Type.Number(),
    txCount: Type.Integer(),
    txRoot: Type.String(),
    stateRoot: Type.String(),
    validatorSetHash: Type.String(),
    view: Type.Integer(),
    proposer: Type.Integer(),
  },
  { additionalProperties: true },
);

const CertificateSchema = Type.Object({
  height: HeightSchema,
  view: Type.Integer(),
  blockHash: Type.String(),
  signatures: Type.Array(Type.Object({ validator: Type.Integer(), signature: Type.String() })),
});

export const BlockRecordSchema = Type.Object({
  hash: Type.String(),
  block: Type.Object({ header: HeaderSchema, txs: Type.Array(TransactionSchema) }),
  certificate: Type.Union([CertificateSchema, Type.Null()]),
});

export const TargetEntrySchema = Type.Object(
  {
    kind: Type.Literal('target'),
    target: Type.String(),
    source: Type.Union([Type.Literal('release'), Type.Literal('attest')]),
    version: Type.Integer(),
    sha256: Type.String(),
    size: Type.Integer(),
    mediaType: Type.String(),
    height: HeightSchema,
    txId: Type.String(),
  },
  { additionalProperties: true },
);

export const DeviceEntrySchema = Type.Object(
  {
    kind: Type.Literal('device'),
    deviceId: Type.String(),
    publicKey: Type.String(),
    group: Type.String(),
    target: Type.String(),
    status: Type.Union([Type.Literal('enrolled'), Type.Literal('revoked')]),
    enrolledAt: HeightSchema,
    lastSeq: Type.Integer({ minimum: 0 }),
    lastReport: Type.Union([
      Type.Object({
        version: Type.Integer(),
        sha256: Type.String(),
        status: Type.String(),
        height: HeightSchema,
      }),
      Type.Null(),
    ]),
  },
  { additionalProperties: true },
);

export const DeviceReportSchema = Type.Object({
  deviceId: Type.String(),
  seq: Type.Integer(),
  version: Type.Integer(),
  sha256: Type.String(),
  status: Type.String({ description: 'applied | failed | mismatch' }),
  detail: Type.String(),
  height: HeightSchema,
  txId: Type.String(),
});

const SparseProofSchema = Type.Object({
  siblings: Type.Array(Type.String(), { description: 'sibling hashes from the root down' }),
  leaf: Type.Union([Type.Object({ path: Type.String(), valueHash: Type.String() }), Type.Null()], {
    description: 'the leaf found on the path: the entry, another key (absence) or null (empty)',
  }),
});

/** A rollout's status (RolloutStatus in src/ledger/types.ts), for every schema that shows one. */
export const RolloutStatusSchema = Type.Union([
  Type.Literal('running'),
  Type.Literal('halted'),
  Type.Literal('aborted'),
  Type.Literal('done'),
]);

export const RolloutEntrySchema = Type.Object(
  {
    kind: Type.Literal('rollout'),
    rolloutId: Type.String(),
    target: Type.String(),
    version: Type.Integer(),
    sha256: Type.String(),
    waves: Type.Array(Type.Integer(), { description: 'cumulative percentages, the last one 100' }),
    maxFailuresPercent: Type.Number(),
    status: RolloutStatusSchema,
    rollback: Type.Boolean(),
    reason: Type.String({ description: 'why the status is what it is ("" while running normally)' }),
    currentWave: Type.Integer({ minimum: 0, description: 'index of the newest open wave' }),
    progress: Type.Array(
      Type.Object(
        { devices: Type.Integer(), successes: Type.Integer(), failures: Type.Integer() },
        { additionalProperties: true },
      ),
    ),
    controlSeq: Type.Integer({ minimum: 0 }),
    createdAt: HeightSchema,
    txId: Type.String(),
  },
  { additionalProperties: true },
);

const TargetRolloutEntrySchema = Type.Object(
  { kind: Type.Literal('target-rollout'), target: Type.String(), rolloutId: Type.String() },
  { additionalProperties: true },
);

export const TargetProofSchema = Type.Object({
  target: Type.String(),
  header: HeaderSchema,
  certificate: CertificateSchema,
  entry: Type.Union([TargetEntrySchema, Type.Null()]),
  stateProof: SparseProofSchema,
  rollout: Type.Optional(
    Type.Object(
      {
        pointer: Type.Union([TargetRolloutEntrySchema, Type.Null()]),
        pointerProof: SparseProofSchema,
        entry: Type.Union([RolloutEntrySchema, Type.Null()]),
        entryProof: Type.Union([SparseProofSchema, Type.Null()]),
      },
      {
        description:
          "the target's staged rollout: the target-rollout/<target> pointer and the rollout/<id> entry it names, each with its sparse proof against the same header's stateRoot (null with an absence proof when the target never had a rollout)",
      },
    ),
  ),
});

export const TxProofSchema = Type.Object({
  txId: Type.String(),
  tx: TransactionSchema,
  height: HeightSchema,
  header: HeaderSchema,
  certificate: CertificateSchema,
  index: Type.Integer({ minimum: 0 }),
  txCount: Type.Integer({ minimum: 1 }),
  inclusion: Type.Array(Type.String(), { description: 'RFC 9162 audit path, leaf side first' }),
});

const PeerSchema = Type.Object({
  id: Type.Integer(),
  apiUrl: Type.String(),
  peerAddress: Type.String(),
  connected: Type.Boolean(),
  lastMessageAgoMs: Type.Union([Type.Number(), Type.Null()]),
  view: Type.Union([Type.Integer(), Type.Null()]),
  height: Type.Union([Type.Integer(), Type.Null()]),
});

export const StatusSchema = Type.Object({
  id: Type.Integer(),
  chainId: Type.String(),
  view: Type.Integer(),
  height: HeightSchema,
  tipHash: Type.String(),
  primary: Type.Integer(),
  viewChanging: Type.Boolean(),
  pendingTxs: Type.Integer(),
  uptimeMs: Type.Number(),
  peers: Type.Array(PeerSchema),
});

const ValidatorViewSchema = Type.Object({
  id: Type.Integer(),
  self: Type.Boolean(),
  publicKey: Type.String(),
  apiUrl: Type.String(),
  peerAddress: Type.String(),
  connected: Type.Boolean({ description: 'true for this node itself, else whether a peer link is up' }),
  view: Type.Union([Type.Integer(), Type.Null()]),
  height: Type.Union([Type.Integer(), Type.Null()]),
  lastMessageAgoMs: Type.Union([Type.Number(), Type.Null()]),
});

export const ChainEntrySchema = Type.Object({
  index: Type.Integer(),
  hash: Type.String(),
  prev_hash: Type.String(),
  timestamp: Type.Number({ description: 'seconds since the epoch, as in the article' }),
  proposer: Type.Integer(),
  view: Type.Integer(),
  tx_root: Type.String(),
  state_root: Type.String(),
  transactions: Type.Array(TransactionSchema),
});

const SubmitResultSchema = Type.Object({
  status: Type.Union([Type.Literal('committed'), Type.Literal('rejected'), Type.Literal('pending')]),
  txId: Type.String(),
  height: Type.Optional(HeightSchema),
  blockHash: Type.Optional(Type.String()),
  code: Type.Optional(Type.String()),
  reason: Type.Optional(Type.String()),
});

const Text = Type.String();
const CompatMessage = Type.Object({ message: Type.String() }, { additionalProperties: true });

// The route table -------------------------------------------------------------------------------

export const routes = {
  validateHash: {
    method: 'POST',
    url: '/validateHash',
    summary:
      "The article's flow: is this configuration hash valid? Answers exactly one of the article's plain-text strings.",
    tags: ['article'],
    // Documentation only: the server checks this body itself, to answer with the article's exact
    // error texts (see validateHashHandler in server.ts).
    body: Type.Object({
      hash: Type.String({ description: 'hex SHA-256 of the downloaded configuration' }),
      target: Type.Optional(Type.String({ description: 'configuration target; default "default"' })),
    }),
    responses: { 200: Text, 400: Text, 401: Text, 403: Text, 503: Text },
    produces: 'text',
  },
  chain: {
    method: 'GET',
    url: '/chain',
    summary: `The chain in the article's format (the newest ${chainResponseBlocksMax} blocks at most).`,
    tags: ['article'],
    responses: {
      200: Type.Object({
        message: Type.String(),
        chain: Type.Array(ChainEntrySchema),
        length: Type.Integer({ description: 'blocks in the whole chain, genesis included' }),
        truncated: Type.Boolean({ description: 'true when older blocks were left out' }),
      }),
    },
    produces: 'json',
  },
  nodes: {
    method: 'GET',
    url: '/nodes',
    summary: "The other validators' API URLs (membership comes from genesis).",
    tags: ['article'],
    responses: { 200: Type.Object({ message: Type.String(), nodes: Type.Array(Type.String()) }) },
    produces: 'json',
  },
  registerNodes: {
    method: 'POST',
    url: '/nodes/register',
    summary:
      'Confirms that every listed URL is a genesis validator; membership never changes through this call.',
    tags: ['article'],
    body: Type.Object({ nodes: Type.Array(Type.String(), { minItems: 1, maxItems: 64 }) }),
    responses: {
      200: Type.Object({ message: Type.String(), Nodes_Added: Type.Integer() }),
      400: CompatMessage,
    },
    produces: 'json',
  },
  submitTx: {
    method: 'POST',
    url: '/v1/tx',
    summary:
      'Submit a signed transaction; waits up to waitMs for the commit (200 committed, 202 pending, 422 rejected).',
    tags: ['v1'],
    body: Type.Object({
      tx: TransactionSchema,
      waitMs: Type.Optional(Type.Integer({ minimum: 0, maximum: txWaitMsMax })),
    }),
    responses: { 200: SubmitResultSchema, 202: SubmitResultSchema, 422: SubmitResultSchema },
    produces: 'json',
  },
  blocks: {
    method: 'GET',
    url: '/v1/blocks',
    summary: `Committed blocks from height "from" upward, at most "limit" (at most ${apiBlocksPageMax}).`,
    tags: ['v1'],
    query: Type.Object({
      from: Type.Optional(HeightSchema),
      limit: Type.Optional(Type.Integer({ minimum: 1, maximum: apiBlocksPageMax })),
    }),
    responses: {
      200: Type.Object({ tipHeight: HeightSchema, blocks: Type.Array(BlockRecordSchema) }),
    },
    produces: 'json',
  },
  blockByHeight: {
    method: 'GET',
    url: '/v1/blocks/:height',
    summary: 'One committed block by height, with its commit certificate.',
    tags: ['v1'],
    params: Type.Object({ height: HeightSchema }),
    responses: { 200: BlockRecordSchema },
    produces: 'json',
  },
  blockByHash: {
    method: 'GET',
    url: '/v1/blocks/hash/:hash',
    summary: 'One committed block by its hash.',
    tags: ['v1'],
    params: Type.Object({ hash: Hex64 }),
    responses: { 200: BlockRecordSchema },
    produces: 'json',
  },
  tx: {
    method: 'GET',
    url: '/v1/tx/:id',
    summary: 'One committed transaction and where it is.',
    tags: ['v1'],
    params: Type.Object({ id: Hex64 }),
    responses: {
      200: Type.Object({
        txId: Type.String(),
        tx: TransactionSchema,
        height: HeightSchema,
        blockHash: Type.String(),
        index: Type.Integer(),
      }),
    },
    produces: 'json',
  },
  target: {
    method: 'GET',
    url: '/v1/targets/:target',
    summary: "A target's current configuration on the ledger.",
    tags: ['v1'],
    params: Type.Object({ target: TargetParam }),
    responses: { 200: TargetEntrySchema },
    produces: 'json',
  },
  targetHistory: {
    method: 'GET',
    url: '/v1/targets/:target/history',
    summary: `Every configuration the target has had, newest first (at most ${targetHistoryPageMax}).`,
    tags: ['v1'],
    params: Type.Object({ target: TargetParam }),
    query: Type.Object({ limit: Type.Optional(Type.Integer({ minimum: 1, maximum: targetHistoryPageMax })) }),
    responses: {
      200: Type.Object({
        target: Type.String(),
        entries: Type.Array(TargetEntrySchema),
        reports: Type.Array(DeviceReportSchema, {
          description: `device reports about the target, newest first (at most ${targetHistoryReportsMax})`,
        }),
      }),
    },
    produces: 'json',
  },
  targetProof: {
    method: 'GET',
    url: '/v1/targets/:target/proof',
    summary:
      "Light-client proof of a target: the latest committed header, its commit certificate, the target's state entry (or null) and its sparse Merkle proof, all of one block. Devices sign the request (401 without a valid signature unless the network allows unauthenticated calls, 403 for an unknown or revoked device or another device's target).",
    tags: ['v1', 'device'],
    params: Type.Object({ target: TargetParam }),
    responses: { 200: TargetProofSchema },
    errors: [401, 403, 503],
    produces: 'json',
  },
  txProof: {
    method: 'GET',
    url: '/v1/tx/:id/proof',
    summary:
      "A committed transaction's RFC 9162 inclusion proof against its block header's txRoot, with the header and its commit certificate.",
    tags: ['v1', 'device'],
    params: Type.Object({ id: Hex64 }),
    responses: { 200: TxProofSchema },
    errors: [404],
    produces: 'json',
  },
  devices: {
    method: 'GET',
    url: '/v1/devices',
    summary: `The device registry sorted by id, after the cursor "after", at most "limit" (at most ${devicesPageMax}).`,
    tags: ['v1', 'fleet'],
    query: Type.Object({
      after: Type.Optional(Type.String({ minLength: 1, maxLength: deviceIdLengthMax })),
      limit: Type.Optional(Type.Integer({ minimum: 1, maximum: devicesPageMax })),
    }),
    responses: {
      200: Type.Object({
        devices: Type.Array(DeviceEntrySchema),
        next: Type.Union([Type.String(), Type.Null()], {
          description: 'the cursor for the next page (pass it as "after"); null on the last page',
        }),
      }),
    },
    produces: 'json',
  },
  device: {
    method: 'GET',
    url: '/v1/devices/:id',
    summary: "One device's registry entry: enrolled or revoked, its target and its last report.",
    tags: ['v1', 'fleet'],
    params: Type.Object({ id: Type.String({ minLength: 1, maxLength: deviceIdLengthMax }) }),
    responses: { 200: DeviceEntrySchema },
    errors: [404],
    produces: 'json',
  },
  rollouts: {
    method: 'GET',
    url: '/v1/rollouts',
    summary: `The staged rollouts on the ledger, newest first, at most "limit" (at most ${rolloutsPageMax}).`,
    tags: ['v1', 'fleet'],
    query: Type.Object({ limit: Type.Optional(Type.Integer({ minimum: 1, maximum: rolloutsPageMax })) }),
    responses: { 200: Type.Object({ rollouts: Type.Array(RolloutEntrySchema) }) },
    produces: 'json',
  },
  rollout: {
    method: 'GET',
    url: '/v1/rollouts/:id',
    summary:
      "One staged rollout's state entry: waves with devices, successes and failures, status (running, halted, aborted, done), the reason, and controlSeq (a control sends controlSeq + 1).",
    tags: ['v1', 'fleet'],
    params: Type.Object({ id: Type.String({ minLength: 1, maxLength: rolloutIdLengthMax }) }),
    responses: { 200: RolloutEntrySchema },
    errors: [404],
    produces: 'json',
  },
  content: {
    method: 'GET',
    url: '/v1/content/:sha256',
    summary:
      "The copy of released content this validator holds (HEAD: does it hold it), with the release's media type and ETag.",
    tags: ['v1', 'content'],
    params: Type.Object({ sha256: Hex64 }),
    responses: { 200: Text },
    errors: [404],
    produces: 'bytes',
  },
  versionContent: {
    method: 'GET',
    url: '/v1/targets/:target/versions/:version/content',
    summary: "The content of a target's committed version, from this validator's copy.",
    tags: ['v1', 'content'],
    params: Type.Object({ target: TargetParam, version: Type.Integer({ minimum: 1 }) }),
    responses: { 200: Text },
    errors: [404],
    produces: 'bytes',
  },
  events: {
    method: 'GET',
    url: '/v1/events',
    summary:
      'Server-sent events: "block" {height, hash, timestampMs, txCount, txIds} per committed block, "status" (GET /v1/status) once a second, a comment as keepalive.',
    tags: ['v1'],
    responses: { 200: Text },
    errors: [503],
    produces: 'event-stream',
  },
  validators: {
    method: 'GET',
    url: '/v1/validators',
    summary: 'Every validator of genesis, with what this node knows of its view, height and link.',
    tags: ['v1'],
    responses: { 200: Type.Object({ self: Type.Integer(), validators: Type.Array(ValidatorViewSchema) }) },
    produces: 'json',
  },
  status: {
    method: 'GET',
    url: '/v1/status',
    summary: "This node's status: view, height, primary, peers.",
    tags: ['v1'],
    responses: { 200: StatusSchema },
    produces: 'json',
  },
  health: {
    method: 'GET',
    url: '/health',
    summary: 'Liveness: 200 while the process serves requests.',
    tags: ['ops'],
    responses: { 200: Type.Object({ status: Type.Literal('ok') }) },
    produces: 'json',
  },
  ready: {
    method: 'GET',
    url: '/ready',
    summary: 'Readiness: 200 when caught up and a quorum is reachable, else 503 with the reasons.',
    tags: ['ops'],
    responses: {
      200: Type.Object({ ready: Type.Boolean(), reasons: Type.Array(Type.String()) }),
      503: Type.Object({ ready: Type.Boolean(), reasons: Type.Array(Type.String()) }),
    },
    produces: 'json',
  },
  metrics: {
    method: 'GET',
    url: '/metrics',
    summary: 'Prometheus metrics (text exposition format).',
    tags: ['ops'],
    responses: { 200: Text },
    produces: 'text',
  },
} as const satisfies Readonly<Record<string, RouteDef>>;

export type Routes = typeof routes;
export type RouteName = keyof Routes;

type StaticOf<R, K extends string> = R extends { readonly [P in K]: infer S extends TSchema }
  ? Static<S>
  : undefined;

export type RouteParams<N extends RouteName> = StaticOf<Routes[N], 'params'>;
export type RouteQuery<N extends RouteName> = StaticOf<Routes[N], 'query'>;
export type RouteBody<N extends RouteName> = StaticOf<Routes[N], 'body'>;
export type RouteResponses<N extends RouteName> = Routes[N]['responses'];
/** A value that may not be modified at any depth (answers are built from readonly ledger data). */
export type DeepReadonly<T> = T extends readonly (infer U)[]
  ? readonly DeepReadonly<U>[]
  : T extends object
    ? { readonly [K in keyof T]: DeepReadonly<T[K]> }
    : T;

/** The union of every documented (status, body) pair of a route. */
export type RouteAnswer<N extends RouteName> = {
  [S in keyof RouteResponses<N> & number]: {
    readonly status: S;
    readonly body: RouteResponses<N>[S] extends TSchema ? DeepReadonly<Static<RouteResponses<N>[S]>> : never;
  };
}[keyof RouteResponses<N> & number];

/** Builds a concrete path from a route URL and its params, escaping each value. */
export function routePath(url: string, params: Readonly<Record<string, unknown>> | undefined): string {
  return url.replace(/:([A-Za-z][A-Za-z0-9]*)/g, (_, name: string) => {
    const value = params?.[name];
    if (value === undefined) throw new TypeError(`route ${url} needs the parameter "${name}"`);
    return encodeURIComponent(String(value));
  });
}
