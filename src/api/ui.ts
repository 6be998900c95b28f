/**
 * Serves the dashboard (web/, built by `npm run build:web` into web/dist) at /ui on the
 * validator's API server, and lets the dashboard read the public routes of the other validators.
 *
 * - GET /ui redirects to /ui/; /ui/ and every unknown /ui/* path answer index.html, so a page's
 *   address can be reloaded or shared (the app routes in the browser).
 * - Files under /ui/assets/ carry a content hash in their names, so they are cached for a year
 *   as immutable; a missing asset is a 404, never index.html (a script tag would choke on HTML).
 * - Without a build, /ui answers 503 saying to run `npm run build:web`.
 * - GET and HEAD answers of /v1/*, /health and /ready carry `Access-Control-Allow-Origin: *`:
 *   they are public, read-only and sent without credentials, and the dashboard served by one
 *   validator asks the others for their status and which content copies they hold.
 */
import { readFile, stat } from 'node:fs/promises';
import { dirname, extname, resolve, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { FastifyInstance, FastifyReply } from 'fastify';
import { uiFileBytesMax } from '../constants.ts';
import { errorBody } from './errors.ts';

/** web/dist of this checkout. */
export const uiDistDir = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..', 'web', 'dist');

export const uiNotBuiltMessage =
  'The dashboard is not built on this validator: run npm run build:web in the ConfigChain checkout, then reload.';

const contentTypes: Readonly<Record<string, string>> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.ico': 'image/x-icon',
  '.json': 'application/json; charset=utf-8',
  '.map': 'application/json; charset=utf-8',
  '.txt': 'text/plain; charset=utf-8',
  '.woff2': 'font/woff2',
};

const immutableCache = 'public, max-age=31536000, immutable';

export interface UiOptions {
  /** The built dashboard; default web/dist of this checkout. */
  readonly distDir?: string;
}

/**
 * Adds the /ui routes and the read-only CORS header to an API server. Called on the root
 * instance (not as an encapsulated plugin), so the header hook covers every route.
 */
export function registerUi(app: FastifyInstance, options: UiOptions = {}): void {
  const distDir = resolve(options.distDir ?? uiDistDir);

  app.addHook('onRequest', (req, reply, done) => {
    if ((req.method === 'GET' || req.method === 'HEAD') && isPublicRead(req.url)) {
      reply.header('access-control-allow-origin', '*');
      reply.header('access-control-expose-headers', 'etag, content-length, content-type');
    }
    done();
  });

  const hidden = { schema: { hide: true } };
  app.get('/ui', hidden, (_req, reply) => reply.redirect('/ui/', 302));
  app.get('/ui/', hidden, (_req, reply) => sendIndex(reply, distDir));
  app.get('/ui/*', hidden, (req, reply) => {
    const rest = (req.params as { '*': string })['*'];
    return sendPath(reply, distDir, rest);
  });
}

function isPublicRead(url: string): boolean {
  return url.startsWith('/v1/') || url === '/health' || url === '/ready';
}

async function sendPath(reply: FastifyReply, distDir: string, rest: string): Promise<FastifyReply> {
  const file = safeJoin(distDir, rest);
  if (file === undefined) {
    return reply
      .code(400)
      .send(errorBody(400, 'BAD_REQUEST', `the path /ui/${rest} is not a file of the dashboard`));
  }
  const isAsset = rest.startsWith('assets/');
  const size = await fileSize(file);
  if (size !== undefined) {
    return sendFile(reply, file, size, isAsset ? immutableCache : 'no-cache');
  }
  if (isAsset) {
    return reply
      .code(404)
      .send(
        errorBody(
          404,
          'ROUTE_NOT_FOUND',
          `the dashboard has no file /ui/${rest}; it was probably rebuilt: reload the page`,
        ),
      );
  }
  // An address of the app itself (e.g. /ui/ledger): the app reads the path and shows the page.
  return sendIndex(reply, distDir);
}

async function sendIndex(reply: FastifyReply, distDir: string): Promise<FastifyReply> {
  const index = resolve(distDir, 'index.html');
  const size = await fileSize(index);
  if (size === undefined) {
    return reply.code(503).type('text/plain; charset=utf-8').send(uiNotBuiltMessage);
  }
  return sendFile(reply, index, size, 'no-cache');
}

async function sendFile(
  reply: FastifyReply,
  file: string,
  size: number,
  cacheControl: string,
): Promise<FastifyReply> {
  if (size > uiFileBytesMax) {
    return reply
      .code(500)
      .send(
        errorBody(
          500,
          'INTERNAL',
          `the dashboard file ${file} is ${size} bytes, more than uiFileBytesMax (${uiFileBytesMax}); rebuild the dashboard`,
        ),
      );
  }
  const bytes = await readFile(file);
  const type = contentTypes[extname(file)] ?? 'application/octet-stream';
  return reply.code(200).header('cache-control', cacheControl).type(type).send(bytes);
}

/** The file under distDir that a /ui/* path names, or undefined when it would leave distDir. */
function safeJoin(distDir: string, rest: string): string | undefined {
  if (rest.includes('\0') || rest.includes('\\')) return undefined;
  const parts = rest.split('/');
  if (parts.some((p) => p === '..' || p === '.')) return undefined;
  const file = resolve(distDir, rest);
  if (file !== distDir && !file.startsWith(distDir + sep)) return undefined;
  return file;
}

async function fileSize(file: string): Promise<number | undefined> {
  try {
    const s = await stat(file);
    return s.isFile() ? s.size : undefined;
  } catch {
    return undefined;
  }
}
