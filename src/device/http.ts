/**
 * The device agent's few HTTP calls, each a small function on fetch with a timeout and a cap on
 * what it reads. Nothing here decides whether to trust an answer: the agent verifies proofs and
 * hashes itself. Tests and the attack suite point these calls at adversary servers simply by
 * editing device.json, or replace them through DeviceHttp.
 *
 * Requests to validators carry the device signature of contract.ts (method, path with query, body
 * hash, time), so a validator can check that an enrolled device is asking.
 */
import { createHash, type KeyObject } from 'node:crypto';
import { deviceAnswerBytesMax, deviceRequestTimeoutMs } from '../constants.ts';
import { sha256Hex } from '../crypto/hash.ts';
import { ConfigChainError } from '../errors.ts';
import type { Transaction } from '../ledger/types.ts';
import { deviceAuthorization } from './contract.ts';

export type DeviceHttpErrorCode =
  /** No answer: connection refused or reset, DNS, timeout. */
  | 'UNREACHABLE'
  /** An answer with an error status; the server's code and message are in the error's message. */
  | 'HTTP_STATUS'
  /** More bytes than the caller allows. */
  | 'TOO_LARGE'
  /** A JSON route answered something that is not JSON. */
  | 'NOT_JSON';

export class DeviceHttpError extends ConfigChainError<
  DeviceHttpErrorCode,
  { readonly url: string; readonly status?: number; readonly serverCode?: string }
> {}

/** Who signs the device's requests. */
export interface DeviceIdentity {
  readonly chainId: string;
  readonly deviceId: string;
  readonly key: KeyObject;
  readonly nowMs: () => number;
}

/** The calls the agent makes; runRound takes a partial replacement for tests. */
export interface DeviceHttp {
  fetchTargetProof(validatorUrl: string, target: string, identity: DeviceIdentity): Promise<unknown>;
  submitTx(
    validatorUrl: string,
    tx: Transaction,
    waitMs: number,
    identity: DeviceIdentity,
  ): Promise<SubmitAnswer>;
  validateHash(
    validatorUrl: string,
    sha256: string,
    target: string,
    identity: DeviceIdentity,
  ): Promise<{ readonly status: number; readonly text: string }>;
  download(url: string, bytesMax: number, sink: ChunkSink, timeoutMs: number): Promise<Download>;
  /** The device's registry entry (its last accepted report seq), as one validator says. */
  fetchDevice(
    validatorUrl: string,
    deviceId: string,
    identity: DeviceIdentity,
  ): Promise<{ readonly lastSeq: number }>;
}

export interface SubmitAnswer {
  readonly status: 'committed' | 'pending' | 'rejected';
  readonly txId: string;
  readonly code?: string;
  readonly reason?: string;
}

/** Receives each downloaded chunk in order (the agent writes it to the temporary file). */
export type ChunkSink = (chunk: Uint8Array) => Promise<void>;

export interface Download {
  /** SHA-256 hex of the bytes received and passed to the sink. */
  readonly sha256: string;
  readonly size: number;
  /** True when the server sent more than bytesMax: the download was aborted at the limit. */
  readonly exceeded: boolean;
  /** x-configchain-version of a config server answer, when it sent one (a label, not trusted). */
  readonly versionHeader: number | null;
}

function authorization(identity: DeviceIdentity, method: string, path: string, body: Uint8Array): string {
  return deviceAuthorization(
    {
      chainId: identity.chainId,
      deviceId: identity.deviceId,
      method,
      path,
      sha256: sha256Hex(body),
      timestampMs: identity.nowMs(),
    },
    identity.key,
  );
}

/** A server's base URL (with or without a trailing slash) and an absolute path. */
export function joinUrl(base: string, path: string): string {
  return base.replace(/\/+$/, '') + path;
}

async function request(
  baseUrl: string,
  method: 'GET' | 'POST',
  path: string,
  identity: DeviceIdentity,
  body?: unknown,
): Promise<{ status: number; text: string; contentType: string; url: string }> {
  const url = joinUrl(baseUrl, path);
  const bytes = body === undefined ? new Uint8Array(0) : Buffer.from(JSON.stringify(body));
  const headers: Record<string, string> = { authorization: authorization(identity, method, path, bytes) };
  if (body !== undefined) headers['content-type'] = 'application/json';
  let response: Response;
  try {
    response = await fetch(url, {
      method,
      headers,
      signal: AbortSignal.timeout(deviceRequestTimeoutMs),
      ...(body === undefined ? {} : { body: bytes }),
    });
  } catch (error) {
    throw new DeviceHttpError('UNREACHABLE', `${method} ${url} failed: ${causeOf(error)}`, { url });
  }
  const text = await readTextBounded(response, url, deviceAnswerBytesMax);
  return { status: response.status, text, contentType: response.headers.get('content-type') ?? '', url };
}

export function causeOf(error: unknown): string {
  const e = error as { message?: string; cause?: { code?: string; message?: string } };
  const cause = e.cause?.code ?? e.cause?.message;
  return cause === undefined ? String(e.message ?? error) : `${e.message ?? 'error'} (${cause})`;
}

export async function readTextBounded(response: Response, url: string, bytesMax: number): Promise<string> {
  const chunks: Uint8Array[] = [];
  let size = 0;
  const reader = response.body?.getReader();
  if (reader === undefined) return '';
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      size += value.byteLength;
      if (size > bytesMax) {
        await reader.cancel();
        throw new DeviceHttpError('TOO_LARGE', `${url} answered more than ${bytesMax} bytes; refused`, {
          url,
        });
      }
      chunks.push(value);
    }
  } catch (error) {
    if (error instanceof DeviceHttpError) throw error;
    throw new DeviceHttpError('UNREACHABLE', `reading the answer of ${url} failed: ${causeOf(error)}`, {
      url,
    });
  }
  return Buffer.concat(chunks).toString('utf8');
}

function parseJson(answer: { text: string; url: string; status: number }): unknown {
  try {
    return JSON.parse(answer.text);
  } catch {
    throw new DeviceHttpError(
      'NOT_JSON',
      `${answer.url} answered ${answer.status} with a body that is not JSON`,
      {
        url: answer.url,
        status: answer.status,
      },
    );
  }
}

export function statusError(answer: { text: string; url: string; status: number }): DeviceHttpError {
  let serverCode: string | undefined;
  let message = answer.text.slice(0, 300);
  try {
    const body = JSON.parse(answer.text) as { code?: unknown; message?: unknown };
    if (typeof body.code === 'string') serverCode = body.code;
    if (typeof body.message === 'string') message = body.message;
  } catch {
    // A plain-text error body: the text itself is the message.
  }
  return new DeviceHttpError(
    'HTTP_STATUS',
    `${answer.url} answered ${answer.status}${serverCode === undefined ? '' : ` ${serverCode}`}: ${message}`,
    { url: answer.url, status: answer.status, ...(serverCode === undefined ? {} : { serverCode }) },
  );
}

/** GET /v1/targets/:target/proof, signed. Returns the parsed JSON, unchecked. */
async function fetchTargetProof(
  validatorUrl: string,
  target: string,
  identity: DeviceIdentity,
): Promise<unknown> {
  const answer = await request(
    validatorUrl,
    'GET',
    `/v1/targets/${encodeURIComponent(target)}/proof`,
    identity,
  );
  if (answer.status !== 200) throw statusError(answer);
  return parseJson(answer);
}

/** POST /v1/tx, signed. 200 committed, 202 pending, 422 rejected; anything else throws. */
async function submitTx(
  validatorUrl: string,
  tx: Transaction,
  waitMs: number,
  identity: DeviceIdentity,
): Promise<SubmitAnswer> {
  const answer = await request(validatorUrl, 'POST', '/v1/tx', identity, { tx, waitMs });
  if (answer.status !== 200 && answer.status !== 202 && answer.status !== 422) throw statusError(answer);
  const body = parseJson(answer) as Partial<SubmitAnswer>;
  if (
    (body.status !== 'committed' && body.status !== 'pending' && body.status !== 'rejected') ||
    typeof body.txId !== 'string'
  ) {
    throw new DeviceHttpError('NOT_JSON', `${answer.url} answered ${answer.status} without a submit result`, {
      url: answer.url,
      status: answer.status,
    });
  }
  return body as SubmitAnswer;
}

/** GET /v1/devices/:id, signed. Only lastSeq is read, and only to skip used report numbers. */
async function fetchDevice(
  validatorUrl: string,
  deviceId: string,
  identity: DeviceIdentity,
): Promise<{ lastSeq: number }> {
  const answer = await request(validatorUrl, 'GET', `/v1/devices/${encodeURIComponent(deviceId)}`, identity);
  if (answer.status !== 200) throw statusError(answer);
  const body = parseJson(answer) as { lastSeq?: unknown };
  if (typeof body.lastSeq !== 'number' || !Number.isSafeInteger(body.lastSeq) || body.lastSeq < 0) {
    throw new DeviceHttpError('NOT_JSON', `${answer.url} answered a device entry without lastSeq`, {
      url: answer.url,
      status: answer.status,
    });
  }
  return { lastSeq: body.lastSeq };
}

/** The article's POST /validateHash {hash, target}, signed. Returns the status and the text. */
async function validateHash(
  validatorUrl: string,
  sha256: string,
  target: string,
  identity: DeviceIdentity,
): Promise<{ status: number; text: string }> {
  const answer = await request(validatorUrl, 'POST', '/validateHash', identity, { hash: sha256, target });
  return { status: answer.status, text: answer.text };
}

/** x-configchain-version of a config server answer, when it is a positive integer (a label only). */
export function versionHeaderOf(response: Response): number | null {
  const header = Number(response.headers.get('x-configchain-version'));
  return Number.isSafeInteger(header) && header > 0 ? header : null;
}

/**
 * Passes a response's body to `write` chunk by chunk, at most `cap` bytes: past the cap it keeps
 * exactly the cap, aborts the request and returns exceeded, so an endless server costs one chunk.
 * Shared by the plain download below and the resumable one of download.ts.
 */
export async function readCapped(
  response: Response,
  url: string,
  cap: number,
  controller: AbortController,
  write: (data: Uint8Array) => Promise<void>,
): Promise<{ readonly received: number; readonly exceeded: boolean }> {
  let received = 0;
  const reader = response.body?.getReader();
  if (reader === undefined) return { received, exceeded: false };
  for (;;) {
    let next: Awaited<ReturnType<typeof reader.read>>;
    try {
      next = await reader.read();
    } catch (error) {
      throw new DeviceHttpError('UNREACHABLE', `downloading ${url} failed: ${causeOf(error)}`, { url });
    }
    if (next.done) return { received, exceeded: false };
    const data = next.value;
    if (received + data.byteLength > cap) {
      const room = cap - received;
      if (room > 0) await write(data.subarray(0, room));
      controller.abort(new Error('the server sent more bytes than asked for'));
      await reader.cancel().catch(() => undefined);
      return { received: cap, exceeded: true };
    }
    await write(data);
    received += data.byteLength;
  }
}

/**
 * Streams `url` into the sink, hashing as it goes, and aborts as soon as more than bytesMax bytes
 * arrive: a server that sends endless data costs at most bytesMax bytes plus one chunk of reading.
 */
async function download(
  url: string,
  bytesMax: number,
  sink: ChunkSink,
  timeoutMs: number,
): Promise<Download> {
  const controller = new AbortController();
  const timer = setTimeout(
    () => controller.abort(new Error(`the download took longer than ${timeoutMs} ms`)),
    timeoutMs,
  );
  try {
    let response: Response;
    try {
      response = await fetch(url, { signal: controller.signal });
    } catch (error) {
      throw new DeviceHttpError('UNREACHABLE', `GET ${url} failed: ${causeOf(error)}`, { url });
    }
    if (response.status !== 200) {
      const text = await readTextBounded(response, url, deviceAnswerBytesMax).catch(() => '');
      throw statusError({ text, url, status: response.status });
    }
    const versionHeader = versionHeaderOf(response);
    const hash = createHash('sha256');
    const body = await readCapped(response, url, bytesMax, controller, async (chunk) => {
      hash.update(chunk);
      await sink(chunk);
    });
    const size = body.exceeded ? bytesMax + 1 : body.received;
    return { sha256: hash.digest('hex'), size, exceeded: body.exceeded, versionHeader };
  } finally {
    clearTimeout(timer);
  }
}

export const defaultDeviceHttp: DeviceHttp = {
  fetchTargetProof,
  submitTx,
  validateHash,
  download,
  fetchDevice,
};
