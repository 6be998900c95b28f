/**
 * The validator's HTTP API: a fastify server built from the route table (src/api/routes.ts)
 * against the node facade (src/api/facade.ts). The node calls buildApiServer and listens; tests
 * call app.inject() on the same instance.
 *
 * Two dialects share one server: the article's routes (/validateHash, /chain, /nodes), kept
 * wire-compatible with its Python client (plain-text answers with the exact strings), and the v1
 * JSON API, whose errors come from the catalogue in src/api/errors.ts.
 */
import { createHash } from 'node:crypto';
import { Transform } from 'node:stream';
import swagger from '@fastify/swagger';
import Fastify, {
  type FastifyInstance,
  type FastifyReply,
  type FastifyRequest,
  LogController,
  type RequestPayload,
} from 'fastify';
import {
  apiBlocksPageMax,
  chainResponseBlocksMax,
  chainResponseTxsMax,
  devicesPageMax,
  httpBodyBytesMax,
  rolloutsPageMax,
  targetHistoryPageMax,
  targetHistoryReportsMax,
  targetNameLengthMax,
  validateHashTimeoutMs,
} from '../constants.ts';
import { sha256Hex } from '../crypto/hash.ts';
import type { BlockHash, DeviceId, Hash32Hex, TargetName, TxId } from '../encoding/brand.ts';
import { asHeight } from '../encoding/brand.ts';
import { assert } from '../errors.ts';
import { DeviceAuthenticator, type DeviceAuthResult, deviceMayRead } from './device-auth.ts';
import { DOCS_HTML } from './docs-page.ts';
import { ApiError, ApiErrorCode, errorBody, fromFastifyError } from './errors.ts';
import { EventHub } from './events.ts';
import type {
  ApiServerOptions,
  BlockRecord,
  ContentCopy,
  NodeFacade,
  SubmitResult,
  ValidateResult,
} from './facade.ts';
import {
  ErrorSchema,
  type RouteAnswer,
  type RouteBody,
  type RouteDef,
  type RouteName,
  type RouteParams,
  type RouteQuery,
  routes,
} from './routes.ts';
import { registerUi } from './ui.ts';

/** The article's answers, byte for byte (its Python client compares them). */
export const CompatText = {
  current: 'Success: Current hash is valid',
  added: 'Success: Hash is valid. New block was added to the chain.',
  invalid: 'Failure: Hash is invalid. Please try again.',
  noHash: 'Error: no hash provided',
} as const;

export const defaultTarget = 'default' as TargetName;

const HEX64 = /^[0-9a-fA-F]{64}$/;

/** SHA-256 of the empty body: what a device signs for a request without one. */
const EMPTY_BODY_SHA256 = sha256Hex(new Uint8Array(0));

/** Where the preParsing hook leaves the hash of the raw body it saw. */
const bodyHashes = new WeakMap<FastifyRequest, Hash32Hex>();

interface HandlerInput<N extends RouteName> {
  readonly params: RouteParams<N>;
  readonly query: RouteQuery<N>;
  readonly body: RouteBody<N>;
  /** Aborted when the client disconnects before the answer is sent. */
  readonly signal: AbortSignal;
  /** Checks the request's device signature (see device-auth.ts); computed on demand. */
  readonly device: () => DeviceAuthResult;
}

type Handler<N extends RouteName> = (input: HandlerInput<N>) => Promise<RouteAnswer<N>>;

/** Routes whose handlers write the reply themselves: not JSON answers built from the table. */
type RawRoute = 'validateHash' | 'metrics' | 'content' | 'versionContent' | 'events';

/** Every JSON route's handler; /validateHash is wired separately because it is the hot path. */
type Handlers = { [N in Exclude<RouteName, RawRoute>]: Handler<N> };

export async function buildApiServer(
  facade: NodeFacade,
  options: ApiServerOptions = {},
): Promise<FastifyInstance> {
  const app: FastifyInstance = Fastify({
    ...(options.logger ? { loggerInstance: options.logger } : { logger: false }),
    bodyLimit: options.bodyLimitBytes ?? httpBodyBytesMax,
    // Transactions are signed: unknown fields must reach the ledger's check untouched.
    ajv: { customOptions: { removeAdditional: false, allErrors: false } },
    // Two log lines per request would cost more than the hot path itself; errors are still logged.
    logController: new LogController({ disableRequestLogging: true }),
    // Long enough for any target name, percent-encoded, so the schema (not the router) says what is wrong.
    routerOptions: { maxParamLength: 4 * targetNameLengthMax },
    return503OnClosing: true,
  }) as unknown as FastifyInstance;

  await app.register(swagger, {
    openapi: {
      info: {
        title: 'ConfigChain validator API',
        version: '1',
        description:
          "A validator's HTTP API: the article's wire-compatible routes and the v1 JSON API. Limits are in src/constants.ts.",
      },
    },
  });

  installErrorHandling(app);
  const auth = new DeviceAuthenticator(
    facade.genesis,
    (id) => facade.device(id),
    options.nowMs ?? (() => Date.now()),
  );
  const checkDevice = (req: FastifyRequest): DeviceAuthResult =>
    auth.check({
      authorization: req.headers.authorization,
      method: req.method,
      path: req.url,
      bodySha256: bodyHashes.get(req) ?? EMPTY_BODY_SHA256,
    });
  const handlers = makeHandlers(facade);
  const events = new EventHub(facade, options.events ?? {});
  app.addHook('preClose', async () => events.closeAll());

  // The routes that write the reply themselves, each wired once with its route's schema.
  const rawHandlers: { [N in RawRoute]: (req: FastifyRequest, reply: FastifyReply) => unknown } = {
    validateHash: (req, reply) => validateHashHandler(facade, checkDevice, req, reply),
    content: async (req, reply) =>
      sendCopy(req, reply, await facade.content((req.params as { sha256: string }).sha256 as Hash32Hex)),
    versionContent: async (req, reply) =>
      sendCopy(req, reply, await versionCopy(facade, req.params as { target: string; version: number })),
    events: (req, reply) => events.subscribe(req, reply),
    metrics: async (_req, reply) => {
      const text = await facade.metrics.metrics();
      return reply.type(facade.metrics.contentType).send(text);
    },
  };

  for (const [name, def] of Object.entries(routes) as [RouteName, RouteDef][]) {
    const schema = routeSchema(def);
    if (name in rawHandlers) {
      app.route({
        method: def.method,
        url: def.url,
        schema,
        ...(name === 'validateHash'
          ? {
              // A signed request's body hash is part of what the device signed: hash the raw bytes.
              preParsing: hashSignedBody,
              // The handler checks the body itself, to answer with the article's exact error texts.
              validatorCompiler: () => () => true,
            }
          : {}),
        handler: rawHandlers[name as RawRoute],
      });
      continue;
    }
    const handler = handlers[name as Exclude<RouteName, RawRoute>] as Handler<RouteName>;
    // Only a submission waits on the node long enough for a client to give up.
    const waits = name === 'submitTx';
    const exact = name === 'targetProof';
    app.route({
      method: def.method,
      url: def.url,
      schema,
      handler: async (req, reply) => {
        const signal = waits ? abortOnClientGone(reply) : neverAborted;
        const answer = await handler({
          params: req.params as never,
          query: req.query as never,
          body: req.body as never,
          signal,
          device: () => checkDevice(req),
        });
        if (exact && answer.status === 200) {
          // The device's hot path: the schema serializer resolves the proof's unions by validating
          // each branch (several times JSON.stringify's cost), and the device hashes what it gets,
          // so the proof is sent exactly as built. The schema still documents it.
          return reply.code(200).type('application/json; charset=utf-8').send(JSON.stringify(answer.body));
        }
        return reply.code(answer.status).send(answer.body);
      },
    });
  }

  app.get('/docs/json', { schema: { hide: true } }, async () => app.swagger());
  app.get('/docs', { schema: { hide: true } }, async (_req, reply) =>
    reply.type('text/html; charset=utf-8').send(DOCS_HTML),
  );
  registerUi(app);
  return app;
}

function routeSchema(def: RouteDef): Record<string, unknown> {
  const response: Record<string, unknown> = {};
  for (const [status, schema] of Object.entries(def.responses)) {
    response[status] =
      def.produces === 'json'
        ? schema
        : def.produces === 'bytes'
          ? { content: { 'application/octet-stream': { schema } }, description: 'the content bytes' }
          : def.produces === 'event-stream'
            ? { content: { 'text/event-stream': { schema } }, description: 'server-sent events' }
            : { content: { 'text/plain': { schema } }, description: 'text' };
  }
  for (const status of def.errors ?? []) {
    response[status] = { ...ErrorSchema, description: 'error; see the code and message' };
  }
  return {
    summary: def.summary,
    tags: [...def.tags],
    ...(def.params ? { params: def.params } : {}),
    ...(def.query ? { querystring: def.query } : {}),
    ...(def.body ? { body: def.body } : {}),
    response,
  };
}

function installErrorHandling(app: FastifyInstance): void {
  app.setErrorHandler((err, req, reply) => {
    const apiError = fromFastifyError(err as Parameters<typeof fromFastifyError>[0]);
    if (apiError.code === ApiErrorCode.internal) req.log.error({ err }, 'request failed');
    if (req.routeOptions.url === routes.validateHash.url) {
      return reply
        .code(apiError.statusCode)
        .type('text/plain; charset=utf-8')
        .send(`Error: ${apiError.message}`);
    }
    return reply
      .code(apiError.statusCode)
      .type('application/json; charset=utf-8')
      .send(errorBody(apiError.statusCode, apiError.code, apiError.message));
  });
  app.setNotFoundHandler((req, reply) => {
    const message = `there is no route ${req.method} ${req.url.split('?')[0] ?? ''}; see GET /docs for the API`;
    return reply.code(404).send(errorBody(404, ApiErrorCode.routeNotFound, message));
  });
}

const neverAborted = new AbortController().signal;

function abortOnClientGone(reply: FastifyReply): AbortSignal {
  const controller = new AbortController();
  reply.raw.once('close', () => {
    if (!reply.raw.writableFinished) controller.abort(new Error('the client closed the connection'));
  });
  return controller.signal;
}

/**
 * preParsing hook: when the request carries an Authorization header, hashes the raw body bytes
 * as they stream to the parser, so the device's signed body hash can be compared with what
 * arrived. Requests without the header pass untouched (the article's hot path pays nothing).
 */
function hashSignedBody(
  req: FastifyRequest,
  _reply: FastifyReply,
  payload: RequestPayload,
  done: (err: Error | null, body?: RequestPayload) => void,
): void {
  if (req.headers.authorization === undefined) {
    done(null, payload);
    return;
  }
  const hash = createHash('sha256');
  const tee = new Transform({
    transform(chunk: Buffer, _encoding, callback) {
      hash.update(chunk);
      callback(null, chunk);
    },
    flush(callback) {
      bodyHashes.set(req, hash.digest('hex') as Hash32Hex);
      callback();
    },
  });
  payload.on('error', (error) => tee.destroy(error));
  payload.pipe(tee);
  // Fastify compares the bytes received with Content-Length through this property.
  Object.defineProperty(tee, 'receivedEncodedLength', {
    get: () => (payload as { receivedEncodedLength?: number }).receivedEncodedLength,
  });
  done(null, tee as unknown as RequestPayload);
}

/** The copy of a target's committed version: its history entry names the hash and media type. */
async function versionCopy(
  facade: NodeFacade,
  params: { target: string; version: number },
): Promise<ContentCopy | undefined> {
  const entries = await facade.targetHistory(params.target as TargetName, targetHistoryPageMax);
  const entry = entries.find((e) => e.version === params.version);
  if (entry === undefined) {
    throw new ApiError(
      ApiErrorCode.contentNotFound,
      `target "${params.target}" has no committed version ${params.version} among its newest ${targetHistoryPageMax} entries; GET /v1/targets/${params.target}/history lists them`,
    );
  }
  const copy = await facade.content(entry.sha256);
  return copy === undefined ? undefined : { ...copy, mediaType: entry.mediaType };
}

function sendCopy(req: FastifyRequest, reply: FastifyReply, copy: ContentCopy | undefined): FastifyReply {
  if (copy === undefined) {
    throw new ApiError(
      ApiErrorCode.contentNotFound,
      'this validator holds no copy of that content (larger than policy.contentCopyBytesMax, never released, or not fetched yet); ask another validator or the config server',
    );
  }
  const etag = `"${copy.sha256}"`;
  reply.header('etag', etag).header('cache-control', 'public, max-age=31536000, immutable');
  if (req.headers['if-none-match'] === etag) return reply.code(304).send();
  return reply.code(200).type(copy.mediaType).send(Buffer.from(copy.bytes));
}

// POST /validateHash ----------------------------------------------------------------------------

function sendText(reply: FastifyReply, status: number, text: string): FastifyReply {
  return reply.code(status).type('text/plain; charset=utf-8').send(text);
}

/**
 * The hot path. A hash that is the target's current one is answered from the facade's in-memory
 * state without consensus, disk or a config-server call; everything else goes through
 * facade.validateHash. Written without async so the current-hash answer costs no extra ticks.
 */
function validateHashHandler(
  facade: NodeFacade,
  checkDevice: (req: FastifyRequest) => DeviceAuthResult,
  req: FastifyRequest,
  reply: FastifyReply,
): FastifyReply | Promise<FastifyReply> {
  const auth = checkDevice(req);
  if (!auth.ok) return sendText(reply, auth.status, `Error: ${auth.message}`);
  let body: unknown = req.body;
  // A body sent as text/plain arrives as a string: read it as JSON, as the article's server did.
  // A JSON body that is itself a string is not an object and is refused below.
  if (typeof body === 'string' && !(req.headers['content-type'] ?? '').includes('json')) {
    try {
      body = JSON.parse(body);
    } catch {
      return sendText(
        reply,
        400,
        'Error: the body is not JSON; send {"hash": "<sha256 hex>"} with Content-Type: application/json',
      );
    }
  }
  if (body === undefined) return sendText(reply, 400, CompatText.noHash);
  if (body === null || typeof body !== 'object' || Array.isArray(body)) {
    return sendText(
      reply,
      400,
      `Error: the body must be a JSON object such as {"hash": "<sha256 hex>"}, got ${body === null ? 'null' : Array.isArray(body) ? 'an array' : typeof body}`,
    );
  }
  const { hash, target: rawTarget } = body as { hash?: unknown; target?: unknown };
  if (typeof hash !== 'string') return sendText(reply, 400, CompatText.noHash);
  let target = defaultTarget;
  if (rawTarget !== undefined) {
    if (typeof rawTarget !== 'string' || rawTarget.length === 0 || rawTarget.length > targetNameLengthMax) {
      return sendText(
        reply,
        400,
        `Error: "target" must be a target name of 1 to ${targetNameLengthMax} characters; leave it out for "default"`,
      );
    }
    target = rawTarget as TargetName;
  }
  // Anything but a SHA-256 in hex cannot be a released configuration: simply invalid, like the
  // article's "2", without asking anyone.
  if (!HEX64.test(hash)) return sendText(reply, 200, CompatText.invalid);
  const sha256 = hash.toLowerCase() as Hash32Hex;
  const current = facade.currentTarget(target);
  if (current !== undefined && current.sha256 === sha256) return sendText(reply, 200, CompatText.current);

  const signal = abortOnClientGone(reply);
  return facade.validateHash(target, sha256, { signal }).then(
    (result) => answerValidation(reply, result),
    (err: unknown) => {
      req.log.error({ err }, 'validateHash failed');
      return sendText(
        reply,
        503,
        'Error: the validator could not decide (internal error, logged); the hash was neither accepted nor refused. Ask again.',
      );
    },
  );
}

function answerValidation(reply: FastifyReply, result: ValidateResult): FastifyReply {
  switch (result.outcome) {
    case 'current':
      return sendText(reply, 200, CompatText.current);
    case 'added':
      return sendText(reply, 200, CompatText.added);
    case 'rejected':
      return sendText(reply, 200, CompatText.invalid);
    case 'timeout':
      return sendText(
        reply,
        503,
        `Error: consensus did not decide within ${validateHashTimeoutMs / 1000} s (${result.reason}); the hash was neither accepted nor refused. Check that a quorum of validators is up, then ask again.`,
      );
    case 'unavailable':
      return sendText(
        reply,
        503,
        `Error: this validator cannot decide right now (${result.reason}); the hash was neither accepted nor refused. Ask again later or ask another validator.`,
      );
  }
}

// The other routes ------------------------------------------------------------------------------

/** The article's chain entry: index, hash, prev_hash, timestamp in seconds, and the transactions. */
function chainEntry(record: BlockRecord) {
  const h = record.block.header;
  return {
    index: h.height,
    hash: record.hash,
    prev_hash: h.prevHash,
    timestamp: h.timestampMs / 1000,
    proposer: h.proposer,
    view: h.view,
    tx_root: h.txRoot,
    state_root: h.stateRoot,
    transactions: record.block.txs,
  };
}

function normalizeNodeUrl(url: string): string | undefined {
  const withScheme = /^[a-z][a-z0-9+.-]*:\/\//i.test(url) ? url : `http://${url}`;
  try {
    return new URL(withScheme).origin;
  } catch {
    return undefined;
  }
}

function submitStatus(result: SubmitResult): 200 | 202 | 422 {
  switch (result.status) {
    case 'committed':
      return 200;
    case 'pending':
      return 202;
    case 'rejected':
      return 422;
  }
}

function makeHandlers(facade: NodeFacade): Handlers {
  const genesis = facade.genesis;
  const otherUrls = genesis.validators.filter((v) => v.id !== facade.id).map((v) => v.apiUrl);
  const knownOrigins = new Set(genesis.validators.map((v) => normalizeNodeUrl(v.apiUrl)));

  async function notFoundBlock(what: string): Promise<never> {
    throw new ApiError(
      ApiErrorCode.blockNotFound,
      `no committed block ${what} on this node; GET /v1/status shows the current height`,
    );
  }

  return {
    chain: async () => {
      const tip = await facade.tip();
      const tipHeight = tip.block.header.height;
      const newestFirst: ReturnType<typeof chainEntry>[] = [];
      let txs = 0;
      let to = tipHeight + 1; // exclusive
      collect: while (to > 0 && newestFirst.length < chainResponseBlocksMax) {
        const from = Math.max(0, to - apiBlocksPageMax);
        const page = await facade.blocks(asHeight(from), to - from);
        assert(page.length <= to - from, 'facade.blocks returned more blocks than asked for');
        for (let i = page.length - 1; i >= 0; i--) {
          const record = page[i];
          assert(record !== undefined, 'page index in range');
          if (newestFirst.length >= chainResponseBlocksMax) break collect;
          if (txs + record.block.txs.length > chainResponseTxsMax && newestFirst.length > 0) break collect;
          txs += record.block.txs.length;
          newestFirst.push(chainEntry(record));
        }
        if (page.length < to - from) break;
        to = from;
      }
      const chain = newestFirst.reverse();
      const length = tipHeight + 1;
      return {
        status: 200,
        body: { message: 'Current chain', chain, length, truncated: chain.length < length },
      };
    },

    nodes: async () => ({ status: 200, body: { message: 'Current nodes', nodes: otherUrls } }),

    registerNodes: async ({ body }) => {
      const unknown = body.nodes.filter((url) => !knownOrigins.has(normalizeNodeUrl(url)));
      if (unknown.length > 0) {
        return {
          status: 400,
          body: {
            message: `Error: not validators of this network's genesis: ${unknown.join(', ')}. Membership comes from genesis and cannot be changed by registering nodes; GET /nodes lists the validators.`,
            unknown,
          },
        };
      }
      return { status: 200, body: { message: 'Success', Nodes_Added: body.nodes.length } };
    },

    submitTx: async ({ body, signal }) => {
      // Attests carry no signature: their authority is each validator's own check against config
      // server B, asked for through /validateHash (which also applies the device authentication of
      // networks that require it). Taking them here would be a way around that.
      const result: SubmitResult =
        body.tx.body.type === 'attest'
          ? {
              status: 'rejected',
              txId: '' as TxId,
              code: 'ATTEST_NOT_SUBMITTABLE',
              reason:
                'attest transactions are made by the validators themselves: POST the hash to /validateHash instead',
            }
          : await facade.submitTx(body.tx as never, { waitMs: body.waitMs ?? 0, signal });
      return { status: submitStatus(result), body: result };
    },

    blocks: async ({ query }) => {
      const from = query.from ?? 0;
      const limit = query.limit ?? apiBlocksPageMax;
      const tip = await facade.tip();
      const blocks = await facade.blocks(asHeight(from), limit);
      return { status: 200, body: { tipHeight: tip.block.header.height, blocks: blocks as never } };
    },

    blockByHeight: async ({ params }) => {
      const record = await facade.blockByHeight(asHeight(params.height));
      if (record === undefined) return notFoundBlock(`at height ${params.height}`);
      return { status: 200, body: record as never };
    },

    blockByHash: async ({ params }) => {
      const record = await facade.blockByHash(params.hash as BlockHash);
      if (record === undefined) return notFoundBlock(`with hash ${params.hash}`);
      return { status: 200, body: record as never };
    },

    tx: async ({ params }) => {
      const record = await facade.tx(params.id as TxId);
      if (record === undefined) {
        throw new ApiError(
          ApiErrorCode.txNotFound,
          `no committed transaction ${params.id} on this node; a submitted transaction appears once its block commits`,
        );
      }
      return { status: 200, body: record as never };
    },

    target: async ({ params }) => {
      const entry = facade.currentTarget(params.target as TargetName);
      if (entry === undefined) {
        throw new ApiError(
          ApiErrorCode.targetNotFound,
          `target "${params.target}" has no configuration on the ledger yet; release or validate one first`,
        );
      }
      return { status: 200, body: entry };
    },

    targetHistory: async ({ params, query }) => {
      const target = params.target as TargetName;
      const entries = await facade.targetHistory(target, query.limit ?? targetHistoryPageMax);
      const reports = await facade.targetReports(target, targetHistoryReportsMax);
      return { status: 200, body: { target: params.target, entries: [...entries], reports: [...reports] } };
    },

    targetProof: async ({ params, device }) => {
      const auth = device();
      if (!auth.ok) throw new ApiError(auth.code, auth.message);
      if (auth.device !== null && !deviceMayRead(auth.device, params.target)) {
        throw new ApiError(
          ApiErrorCode.deviceForbidden,
          `device "${auth.device.deviceId}" follows target "${auth.device.target}" and may not read the proof of "${params.target}"; ask for its own target`,
        );
      }
      const proof = await facade.targetProof(params.target as TargetName);
      if (proof === undefined) {
        throw new ApiError(
          ApiErrorCode.notReady,
          'no block above genesis is committed on this validator yet, so there is no certified header to prove against; heartbeat blocks bring one within policy.heartbeatIntervalMs: ask again shortly',
        );
      }
      return { status: 200, body: proof as never };
    },

    txProof: async ({ params }) => {
      const proof = await facade.txProof(params.id as TxId);
      if (proof === undefined) {
        throw new ApiError(
          ApiErrorCode.txNotFound,
          `no committed transaction ${params.id} on this node; a submitted transaction has a proof once its block commits`,
        );
      }
      return { status: 200, body: proof as never };
    },

    devices: async ({ query }) => {
      const limit = query.limit ?? devicesPageMax;
      const devices = await facade.devices(query.after, limit);
      const last = devices[devices.length - 1];
      const next = devices.length === limit && last !== undefined ? last.deviceId : null;
      return { status: 200, body: { devices: devices as never, next } };
    },

    device: async ({ params }) => {
      const entry = facade.device(params.id as DeviceId);
      if (entry === undefined) {
        throw new ApiError(
          ApiErrorCode.deviceNotFound,
          `device "${params.id}" is not in this network's registry; an admin enrolls devices (configchain devices enroll)`,
        );
      }
      return { status: 200, body: entry as never };
    },

    rollouts: async ({ query }) => {
      const rollouts = await facade.rollouts(query.limit ?? rolloutsPageMax);
      return { status: 200, body: { rollouts: rollouts as never } };
    },

    rollout: async ({ params }) => {
      const entry = facade.rollout(params.id);
      if (entry === undefined) {
        throw new ApiError(
          ApiErrorCode.rolloutNotFound,
          `no rollout "${params.id}" on this node's ledger; list them with GET /v1/rollouts (configchain rollout show), or wait if it was just recorded`,
        );
      }
      return { status: 200, body: entry as never };
    },

    validators: async () => {
      const status = facade.status();
      const peers = new Map(status.peers.map((p) => [p.id as number, p]));
      const validators = genesis.validators.map((v) => {
        const self = v.id === facade.id;
        const peer = peers.get(v.id);
        return {
          id: v.id,
          self,
          publicKey: v.publicKey,
          apiUrl: v.apiUrl,
          peerAddress: v.peerAddress,
          connected: self ? true : (peer?.connected ?? false),
          view: self ? status.view : (peer?.view ?? null),
          height: self ? status.height : (peer?.height ?? null),
          lastMessageAgoMs: self ? 0 : (peer?.lastMessageAgoMs ?? null),
        };
      });
      return { status: 200, body: { self: facade.id, validators } };
    },

    status: async () => {
      const s = facade.status();
      return { status: 200, body: { ...s, peers: [...s.peers] } };
    },

    health: async () => ({ status: 200, body: { status: 'ok' } }),

    ready: async () => {
      const r = facade.ready();
      const body = { ready: r.ready, reasons: [...r.reasons] };
      return r.ready ? { status: 200, body } : { status: 503, body };
    },
  };
}
