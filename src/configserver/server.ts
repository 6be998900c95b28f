/**
 * The config server's HTTP API (fastify): artifacts by SHA-256 and by (target, version), streamed
 * from disk with ETag/If-None-Match and single-range requests, and admin-signed uploads.
 *
 *   GET  /v1/artifacts/:sha256                       content by hash
 *   GET  /v1/targets                                 target names
 *   GET  /v1/targets/:target/versions                [{version, sha256, size, mediaType}] (?after, ?limit, ?sha256)
 *   GET  /v1/targets/:target/versions/:version       content
 *   GET  /v1/targets/:target/latest                  content of the highest version
 *   PUT  /v1/targets/:target/versions/:version       upload (POST is accepted too); Content-Type = media type
 *   GET  /health
 */
import { createReadStream, statSync } from 'node:fs';
import type { Readable } from 'node:stream';
import Fastify, { type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify';
import type { Logger } from 'pino';
import { Type } from 'typebox';
import { artifactVersionsPageMax, targetNameLengthMax, versionMax } from '../constants.ts';
import type { AdminInfo } from '../ledger/types.ts';
import { UploadVerifier, uploadScheme } from './auth.ts';
import { type ArtifactMeta, type ArtifactStore, ArtifactStoreError } from './store.ts';

export interface ConfigServerOptions {
  readonly store: ArtifactStore;
  /** Genesis admins: the keys allowed to upload. */
  readonly admins: readonly AdminInfo[];
  readonly logger?: Logger | false;
  readonly now?: () => number;
}

const REASON: Readonly<Record<number, string>> = {
  400: 'Bad Request',
  401: 'Unauthorized',
  404: 'Not Found',
  409: 'Conflict',
  413: 'Payload Too Large',
  416: 'Range Not Satisfiable',
  500: 'Internal Server Error',
};

function sendError(reply: FastifyReply, statusCode: number, code: string, message: string): FastifyReply {
  return reply
    .code(statusCode)
    .type('application/json; charset=utf-8')
    .send({ statusCode, code, error: REASON[statusCode] ?? 'Error', message });
}

const TargetParams = Type.Object({ target: Type.String({ minLength: 1, maxLength: targetNameLengthMax }) });
const VersionParams = Type.Object({
  target: Type.String({ minLength: 1, maxLength: targetNameLengthMax }),
  version: Type.Integer({ minimum: 1, maximum: versionMax }),
});
const HashParams = Type.Object({ sha256: Type.String({ pattern: '^[0-9a-f]{64}$' }) });
const VersionsQuery = Type.Object({
  after: Type.Optional(Type.Integer({ minimum: 0 })),
  limit: Type.Optional(Type.Integer({ minimum: 1, maximum: artifactVersionsPageMax })),
  sha256: Type.Optional(Type.String({ pattern: '^[0-9a-f]{64}$' })),
});

export async function buildConfigServer(options: ConfigServerOptions): Promise<FastifyInstance> {
  const { store } = options;
  const verifier = new UploadVerifier(options.admins, options.now);
  const app = Fastify({
    ...(options.logger ? { loggerInstance: options.logger } : { logger: false }),
    return503OnClosing: true,
  }) as unknown as FastifyInstance;

  // Uploads are streamed to disk, never buffered: every body arrives as the raw stream, whatever
  // its media type (a JSON configuration is content here, not a request to parse).
  app.removeAllContentTypeParsers();
  app.addContentTypeParser('*', (_req, payload, done) => done(null, payload));

  app.setErrorHandler((err, req, reply) => {
    const e = err as {
      validation?: unknown;
      validationContext?: string;
      statusCode?: number;
      message: string;
    };
    if (e.validation !== undefined) {
      return sendError(
        reply,
        400,
        'BAD_REQUEST',
        `invalid ${e.validationContext ?? 'request'}: ${e.message}; targets are 1-${targetNameLengthMax} characters, versions integers >= 1, hashes 64 lower-case hex`,
      );
    }
    if (e.statusCode !== undefined && e.statusCode >= 400 && e.statusCode < 500) {
      return sendError(reply, e.statusCode, 'BAD_REQUEST', `bad request: ${e.message}`);
    }
    req.log.error({ err }, 'config server request failed');
    return sendError(reply, 500, 'INTERNAL', 'internal error; the server logged the details');
  });
  app.setNotFoundHandler((req, reply) =>
    sendError(
      reply,
      404,
      'ROUTE_NOT_FOUND',
      `there is no route ${req.method} ${req.url.split('?')[0] ?? ''}; see the header of src/configserver/server.ts or docs/api.md`,
    ),
  );

  app.get('/health', async () => ({ status: 'ok' }));

  app.get('/v1/targets', async () => ({ targets: store.targets() }));

  app.get(
    '/v1/targets/:target/versions',
    { schema: { params: TargetParams, querystring: VersionsQuery } },
    (req, reply) => {
      const { target } = req.params as { target: string };
      const q = req.query as { after?: number; limit?: number; sha256?: string };
      const versions = store.versions(target, {
        ...(q.after !== undefined ? { afterVersion: q.after } : {}),
        ...(q.limit !== undefined ? { limit: q.limit } : {}),
        ...(q.sha256 !== undefined ? { sha256: q.sha256 } : {}),
      });
      if (
        versions.length === 0 &&
        q.after === undefined &&
        q.sha256 === undefined &&
        store.latest(target) === undefined
      ) {
        return sendError(
          reply,
          404,
          'TARGET_NOT_FOUND',
          `no versions of target "${target}" are stored here; upload one first`,
        );
      }
      return reply.send({
        target,
        versions: versions.map((m) => ({
          version: m.version,
          sha256: m.sha256,
          size: m.size,
          mediaType: m.mediaType,
        })),
      });
    },
  );

  app.get('/v1/targets/:target/versions/:version', { schema: { params: VersionParams } }, (req, reply) => {
    const { target, version } = req.params as { target: string; version: number };
    const meta = store.get(target, version);
    if (meta === undefined) {
      return sendError(
        reply,
        404,
        'VERSION_NOT_FOUND',
        `target "${target}" has no version ${version} here; GET /v1/targets/${encodeURIComponent(target)}/versions lists them`,
      );
    }
    return sendContent(store, req, reply, meta, true);
  });

  app.get('/v1/targets/:target/latest', { schema: { params: TargetParams } }, (req, reply) => {
    const { target } = req.params as { target: string };
    const meta = store.latest(target);
    if (meta === undefined) {
      return sendError(
        reply,
        404,
        'TARGET_NOT_FOUND',
        `no versions of target "${target}" are stored here; upload one first`,
      );
    }
    return sendContent(store, req, reply, meta, false);
  });

  app.get('/v1/artifacts/:sha256', { schema: { params: HashParams } }, (req, reply) => {
    const { sha256 } = req.params as { sha256: string };
    const meta = store.byHash(sha256);
    if (meta === undefined) {
      return sendError(reply, 404, 'ARTIFACT_NOT_FOUND', `no artifact with sha256 ${sha256} is stored here`);
    }
    return sendContent(store, req, reply, meta, true);
  });

  const upload = async (req: FastifyRequest, reply: FastifyReply) => {
    const { target, version } = req.params as { target: string; version: number };
    const path = req.url.split('?')[0] ?? req.url;
    const auth = verifier.check(req.headers.authorization, req.method, path);
    if (!auth.ok) {
      discardBody(req, reply);
      return sendError(reply.header('www-authenticate', uploadScheme), 401, 'UNAUTHORIZED', auth.reason);
    }
    const declared = Number(req.headers['content-length']);
    if (Number.isFinite(declared) && declared > store.bytesMax) {
      discardBody(req, reply);
      return sendError(
        reply,
        413,
        'ARTIFACT_TOO_LARGE',
        `the body has ${declared} bytes, more than this config server's limit of ${store.bytesMax}; nothing was stored`,
      );
    }
    const mediaType = (req.headers['content-type'] ?? 'application/octet-stream').trim();
    const body = (req.body ?? req.raw) as Readable;
    try {
      const result = await store.putStream(target, version, mediaType, body, auth.sha256);
      req.log.info(
        { target, version, sha256: result.meta.sha256, admin: auth.adminId, status: result.status },
        'upload',
      );
      return reply
        .code(result.status === 'created' ? 201 : 200)
        .send({ status: result.status, ...metaJson(result.meta) });
    } catch (err) {
      if (err instanceof ArtifactStoreError) {
        const status = err.code === 'ARTIFACT_CONFLICT' ? 409 : err.code === 'ARTIFACT_TOO_LARGE' ? 413 : 400;
        if (status === 413) reply.header('connection', 'close');
        return sendError(reply, status, err.code, err.message);
      }
      throw err;
    }
  };
  app.put('/v1/targets/:target/versions/:version', { schema: { params: VersionParams } }, upload);
  app.post('/v1/targets/:target/versions/:version', { schema: { params: VersionParams } }, upload);
  return app;
}

function metaJson(meta: ArtifactMeta) {
  return {
    target: meta.target,
    version: meta.version,
    sha256: meta.sha256,
    size: meta.size,
    mediaType: meta.mediaType,
  };
}

/** Refuses a body without reading it all: the connection closes after the answer. */
function discardBody(req: FastifyRequest, reply: FastifyReply): void {
  reply.header('connection', 'close');
  const body = req.body as Readable | undefined;
  if (body !== undefined && typeof body.resume === 'function') body.resume();
}

function etagMatches(header: string | undefined, sha256: string): boolean {
  if (header === undefined) return false;
  return header.split(',').some((tag) => {
    const t = tag.trim();
    return t === '*' || t === `"${sha256}"` || t === `W/"${sha256}"`;
  });
}

type RangeResult =
  | { kind: 'none' }
  | { kind: 'range'; start: number; end: number }
  | { kind: 'unsatisfiable' };

/** One byte range of RFC 9110; anything it cannot honour as a single range means "send it all". */
export function parseRange(header: string | undefined, size: number): RangeResult {
  if (header === undefined) return { kind: 'none' };
  const m = /^bytes=(\d*)-(\d*)$/.exec(header.trim());
  if (m === null) return { kind: 'none' };
  const [, a = '', b = ''] = m;
  if (a === '' && b === '') return { kind: 'none' };
  if (a === '') {
    const suffix = Number(b);
    if (suffix === 0 || size === 0) return { kind: 'unsatisfiable' };
    return { kind: 'range', start: Math.max(0, size - suffix), end: size - 1 };
  }
  const start = Number(a);
  const end = b === '' ? size - 1 : Math.min(Number(b), size - 1);
  if (b !== '' && Number(b) < start) return { kind: 'none' };
  if (start >= size) return { kind: 'unsatisfiable' };
  return { kind: 'range', start, end };
}

function sendContent(
  store: ArtifactStore,
  req: FastifyRequest,
  reply: FastifyReply,
  meta: ArtifactMeta,
  immutable: boolean,
): FastifyReply {
  const path = store.blobPath(meta.sha256);
  let size: number;
  try {
    size = statSync(path).size;
  } catch {
    return sendError(
      reply,
      404,
      'ARTIFACT_MISSING',
      `the content of ${meta.sha256} is indexed but missing on disk; upload it again`,
    );
  }
  reply
    .header('etag', `"${meta.sha256}"`)
    .header('accept-ranges', 'bytes')
    .header('cache-control', immutable ? 'public, max-age=31536000, immutable' : 'no-cache')
    .header('x-configchain-target', encodeURIComponent(meta.target))
    .header('x-configchain-version', String(meta.version))
    .header('x-configchain-sha256', meta.sha256);
  if (etagMatches(req.headers['if-none-match'], meta.sha256)) return reply.code(304).send();
  reply.type(meta.mediaType);
  // If-Range (RFC 9110 13.1.5): a range of other content than the client holds is useless, so a
  // validator that does not match the current ETag means "send it all" (the client restarts).
  const ifRange = req.headers['if-range'];
  const range =
    ifRange !== undefined && String(ifRange).trim() !== `"${meta.sha256}"`
      ? ({ kind: 'none' } as const)
      : parseRange(req.headers.range, size);
  if (range.kind === 'unsatisfiable') {
    reply.header('content-range', `bytes */${size}`);
    return sendError(
      reply,
      416,
      'RANGE_NOT_SATISFIABLE',
      `the artifact has ${size} bytes; ask for a range inside it`,
    );
  }
  if (range.kind === 'range') {
    reply
      .code(206)
      .header('content-range', `bytes ${range.start}-${range.end}/${size}`)
      .header('content-length', range.end - range.start + 1);
    return reply.send(createReadStream(path, { start: range.start, end: range.end }));
  }
  reply.header('content-length', size);
  return reply.send(createReadStream(path));
}
