/**
 * The device agent's resumable artifact download: Range requests of deviceDownloadChunkBytes each,
 * with If-Range on the ETag (the artifact's sha256), appended to DIR/devices/<id>/download/<sha256>.part.
 *
 * A killed agent leaves the partial file behind; the next run re-hashes what it holds and asks
 * only for the rest, never past the release's size. Nothing in the partial file is trusted: the
 * whole SHA-256 is checked at the end, and when a resumed download does not hash to the release,
 * the partial part may have been corrupted, so the download starts once more from zero before the
 * mismatch is reported. A server that ignores Range (or whose ETag changed) answers 200: the
 * download restarts from zero, still capped at the release's size.
 *
 * Network errors throw DeviceHttpError and keep the partial file for the next round; a server that
 * sends other or more bytes than the release is a mismatch (exceeded or a wrong sha256).
 */
import { createHash, type Hash } from 'node:crypto';
import { createReadStream, existsSync, mkdirSync, readdirSync, rmSync, statSync } from 'node:fs';
import { type FileHandle, open } from 'node:fs/promises';
import { join } from 'node:path';
import {
  artifactTransferBytesPerSecondMin,
  deviceAnswerBytesMax,
  deviceDownloadChunkBytes,
  deviceDownloadChunkTimeoutMs,
  deviceDownloadTimeoutMs,
} from '../constants.ts';
import { type Hash32Hex, isHash32Hex } from '../encoding/brand.ts';
import { assert } from '../errors.ts';
import {
  causeOf,
  DeviceHttpError,
  type Download,
  readCapped,
  readTextBounded,
  statusError,
  versionHeaderOf,
} from './http.ts';

export interface ResumableDownloadOptions {
  /** The artifact's URL on the config server (GET /v1/artifacts/<sha256>). */
  readonly url: string;
  /** The certified release's hash and size: the partial file's name and the download's cap. */
  readonly sha256: Hash32Hex;
  readonly size: number;
  /** The download folder (DIR/devices/<id>/download); created if missing. */
  readonly dir: string;
  /** Bytes per Range request; deviceDownloadChunkBytes by default. */
  readonly chunkBytes?: number;
  /** Each chunk request must finish within this; deviceDownloadChunkTimeoutMs by default. */
  readonly chunkTimeoutMs?: number;
  /**
   * The whole call must finish within this; by default deviceDownloadTimeoutMs plus the size at
   * artifactTransferBytesPerSecondMin. Past it the partial file is kept for the next round.
   */
  readonly timeoutMs?: number;
  /** One plain line per notable step (resume, restart). */
  readonly log?: (line: string) => void;
  /** Called as bytes arrive with the bytes held so far and the release's size. */
  readonly onProgress?: (done: number, total: number) => void;
}

export interface ResumableDownload {
  /** The partial file, complete (or a mismatch) and fsynced; the caller renames or deletes it. */
  readonly path: string;
  /** Hash and size of the file's content; exceeded when the server sent more than the release. */
  readonly download: Download;
  /** Bytes the partial file held (and that were kept) when this download began; 0 if none. */
  readonly resumedAt: number;
  /** Bytes received from the server during this call. */
  readonly bytesFetched: number;
}

/** The partial file of a release's sha256 inside a download folder. */
export function partialPath(dir: string, sha256: Hash32Hex): string {
  assert(isHash32Hex(sha256), 'partial file names are built from checked hashes only');
  return join(dir, `${sha256}.part`);
}

/** Deletes every partial file in the folder except the one of `keep` (none when null). */
export function removeStalePartials(dir: string, keep: Hash32Hex | null, log?: (line: string) => void): void {
  if (!existsSync(dir)) return;
  for (const name of readdirSync(dir)) {
    if (!name.endsWith('.part') || (keep !== null && name === `${keep}.part`)) continue;
    rmSync(join(dir, name), { force: true });
    log?.(`download: deleted the partial file ${name}, a release no longer wanted`);
  }
}

/** Downloads (or finishes downloading) a release's artifact into its partial file. */
export async function downloadResumable(options: ResumableDownloadOptions): Promise<ResumableDownload> {
  const { sha256, size } = options;
  assert(Number.isSafeInteger(size) && size >= 0, 'a release size is a non-negative integer');
  mkdirSync(options.dir, { recursive: true });
  removeStalePartials(options.dir, sha256, options.log);
  const path = partialPath(options.dir, sha256);
  const first = await attempt(options, path, true);
  if (first.resumedAt === 0 || first.download.exceeded || first.download.sha256 === sha256) return first;
  // The kept part may have been corrupted on disk (or by an earlier server): start once from zero.
  options.log?.(
    `download: the resumed file hashes to ${first.download.sha256}, not to the release; downloading again from zero`,
  );
  rmSync(path, { force: true });
  const again = await attempt(options, path, false);
  return { ...again, bytesFetched: first.bytesFetched + again.bytesFetched };
}

async function attempt(
  options: ResumableDownloadOptions,
  path: string,
  resume: boolean,
): Promise<ResumableDownload> {
  const { size, url } = options;
  const chunkBytes = options.chunkBytes ?? deviceDownloadChunkBytes;
  assert(Number.isSafeInteger(chunkBytes) && chunkBytes > 0, 'a chunk holds at least one byte');
  const digest: Digest = { hash: createHash('sha256') };
  let held = 0;
  if (resume && existsSync(path)) {
    const onDisk = statSync(path).size;
    if (onDisk > size) {
      options.log?.(
        `download: the partial file holds ${onDisk} bytes, more than the release's ${size}; starting from zero`,
      );
      rmSync(path, { force: true });
    } else {
      held = await hashFile(path, digest.hash, onDisk);
      options.log?.(`download: resuming at ${held} bytes of ${size}`);
    }
  } else {
    rmSync(path, { force: true });
  }
  const resumedAt = held;
  let fetched = 0;
  let versionHeader: number | null = null;
  // A server that answers each request with a few bytes (or slowly) cannot hold the agent: the
  // requests and the time of one call are bounded, and what arrived is kept for the next round.
  const requestsMax = 2 * Math.ceil((size - held) / chunkBytes) + 8;
  const timeoutMs =
    options.timeoutMs ??
    deviceDownloadTimeoutMs + Math.ceil((size / artifactTransferBytesPerSecondMin) * 1000);
  const deadline = Date.now() + timeoutMs;
  let requests = 0;
  const handle = await open(path, held > 0 ? 'r+' : 'w', 0o644);
  try {
    options.onProgress?.(held, size);
    while (held < size) {
      requests++;
      if (requests > requestsMax || Date.now() > deadline) {
        throw new DeviceHttpError(
          'UNREACHABLE',
          `${url} delivered only ${held} of ${size} bytes in ${requests - 1} requests within ${timeoutMs} ms; the next round resumes from there`,
          { url },
        );
      }
      const end = Math.min(held + chunkBytes, size) - 1;
      const chunk = await fetchChunk(options, handle, digest, held, end);
      fetched += chunk.received;
      versionHeader = chunk.versionHeader ?? versionHeader;
      if (chunk.kind === 'restarted') {
        // The server sent the whole artifact from byte 0; the file now holds exactly that.
        options.log?.(`download: ${url} ignored the Range request; downloaded from zero instead`);
        held = chunk.received;
        if (chunk.exceeded)
          return finish(handle, path, digest, size + 1, true, versionHeader, resumedAt, fetched);
        break;
      }
      if (chunk.exceeded)
        return finish(handle, path, digest, size + 1, true, versionHeader, resumedAt, fetched);
      if (chunk.short === true) {
        held += chunk.received;
        options.log?.(`download: ${url} holds fewer bytes than the release's ${size}`);
        break;
      }
      if (chunk.received === 0) {
        throw new DeviceHttpError('UNREACHABLE', `${url} answered an empty range at byte ${held}`, { url });
      }
      held += chunk.received;
      options.onProgress?.(held, size);
    }
    return await finish(handle, path, digest, held, false, versionHeader, resumedAt, fetched);
  } finally {
    await handle.close().catch(() => undefined);
  }
}

async function finish(
  handle: FileHandle,
  path: string,
  digest: Digest,
  size: number,
  exceeded: boolean,
  versionHeader: number | null,
  resumedAt: number,
  bytesFetched: number,
): Promise<ResumableDownload> {
  await handle.sync();
  return {
    path,
    download: { sha256: digest.hash.digest('hex'), size, exceeded, versionHeader },
    resumedAt,
    bytesFetched,
  };
}

/** Feeds the first `bytes` bytes of a file to the hash; returns how many it read. */
async function hashFile(path: string, hash: Hash, bytes: number): Promise<number> {
  if (bytes === 0) return 0;
  let read = 0;
  for await (const chunk of createReadStream(path, { start: 0, end: bytes - 1 })) {
    const b = chunk as Buffer;
    hash.update(b);
    read += b.byteLength;
  }
  assert(read === bytes, 'a partial file read back has the size it was stat-ed with');
  return read;
}

/** The running hash of the partial file; replaced when a server restarts the download from zero. */
interface Digest {
  hash: Hash;
}

interface Chunk {
  readonly kind: 'range' | 'restarted';
  readonly received: number;
  readonly exceeded: boolean;
  /** The server's artifact ends before the byte asked for (416): it is shorter than the release. */
  readonly short?: boolean;
  readonly versionHeader: number | null;
}

/**
 * One GET of bytes [start, end]. A 206 must start at `start` and is capped at the range asked; a
 * 200 is the whole artifact: the file is truncated and refilled from zero, capped at the size.
 */
async function fetchChunk(
  options: ResumableDownloadOptions,
  handle: FileHandle,
  digest: Digest,
  start: number,
  end: number,
): Promise<Chunk> {
  const { url, size } = options;
  const timeoutMs = options.chunkTimeoutMs ?? deviceDownloadChunkTimeoutMs;
  const controller = new AbortController();
  const timer = setTimeout(
    () => controller.abort(new Error(`a chunk took longer than ${timeoutMs} ms`)),
    timeoutMs,
  );
  try {
    let response: Response;
    try {
      response = await fetch(url, {
        signal: controller.signal,
        headers: { range: `bytes=${start}-${end}`, 'if-range': `"${options.sha256}"` },
      });
    } catch (error) {
      throw new DeviceHttpError('UNREACHABLE', `GET ${url} failed: ${causeOf(error)}`, { url });
    }
    const versionHeader = versionHeaderOf(response);
    let position: number;
    let cap: number;
    let kind: Chunk['kind'];
    // A 206 whose artifact ends before the range asked for (its total is its last byte + 1).
    let endsEarly = false;
    if (response.status === 206) {
      const range = /^bytes (\d+)-(\d+)\/(\d+|\*)$/.exec(response.headers.get('content-range') ?? '');
      const last = Number(range?.[2]);
      endsEarly = range !== null && last < end && Number(range[3]) === last + 1;
      if (range === null || Number(range[1]) !== start || (last !== end && !endsEarly)) {
        await response.body?.cancel().catch(() => undefined);
        throw new DeviceHttpError(
          'HTTP_STATUS',
          `${url} answered bytes ${response.headers.get('content-range') ?? '(no Content-Range)'} when asked for ${start}-${end}`,
          { url, status: 206 },
        );
      }
      kind = 'range';
      position = start;
      cap = (endsEarly ? last : end) - start + 1;
    } else if (response.status === 200) {
      kind = 'restarted';
      position = 0;
      cap = size;
      await handle.truncate(0);
      // Whatever was held is dropped: the hash starts over with the file.
      digest.hash = createHash('sha256');
    } else if (response.status === 416) {
      await response.body?.cancel().catch(() => undefined);
      // The server's artifact ends before the release's size: it is not the released artifact.
      return { kind: 'range', received: 0, exceeded: false, short: true, versionHeader };
    } else {
      const text = await readTextBounded(response, url, deviceAnswerBytesMax).catch(() => '');
      throw statusError({ text, url, status: response.status });
    }
    let received = 0;
    const body = await readCapped(response, url, cap, controller, async (data) => {
      await write(handle, digest, data, position + received);
      received += data.byteLength;
      if (kind === 'restarted') options.onProgress?.(received, size);
    });
    if (body.exceeded) return { kind, received: body.received, exceeded: true, versionHeader };
    return { kind, received, exceeded: false, ...(endsEarly ? { short: true } : {}), versionHeader };
  } finally {
    clearTimeout(timer);
  }
}

async function write(handle: FileHandle, digest: Digest, data: Uint8Array, position: number): Promise<void> {
  let written = 0;
  while (written < data.byteLength) {
    const { bytesWritten } = await handle.write(data, written, data.byteLength - written, position + written);
    written += bytesWritten;
  }
  digest.hash.update(data);
}
