import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, beforeEach, describe, it } from 'node:test';
import { sha256Hex } from '../crypto/hash.ts';
import type { Hash32Hex } from '../encoding/brand.ts';
import { downloadResumable, partialPath } from './download.ts';
import { DeviceHttpError } from './http.ts';

const SIZE = 10_000;
const CHUNK = 1000;
const artifact = Buffer.alloc(SIZE);
for (let i = 0; i < SIZE; i++) artifact[i] = (i * 7 + 3) % 251;
const sha256 = sha256Hex(artifact) as Hash32Hex;

type Mode =
  | 'honest'
  | 'ignore-range'
  | 'endless-200'
  | 'overlong-206'
  | 'other-bytes'
  | 'short'
  | 'dribble'
  | { readonly dropAfter: number };

/** A config server's artifact route with switchable misbehaviour and a count of the bytes it sent. */
let mode: Mode = 'honest';
let bytesServed = 0;
let ranges: string[] = [];
let served = 0;
let server: Server;
let url = '';

function body(): Buffer {
  if (mode === 'other-bytes') return Buffer.from(artifact).fill(0x41, 5000, 5001);
  if (mode === 'short') return artifact.subarray(0, SIZE - 10);
  return artifact;
}

before(async () => {
  server = createServer((req, res) => {
    const content = body();
    const range = /^bytes=(\d+)-(\d+)$/.exec(req.headers.range ?? '');
    ranges.push(req.headers.range ?? 'none');
    const send = (data: Buffer) => {
      bytesServed += data.byteLength;
      res.end(data);
    };
    if (mode === 'endless-200') {
      res.writeHead(200, { 'content-length': SIZE * 3 });
      return send(Buffer.concat([artifact, artifact, artifact]));
    }
    if (range === null || mode === 'ignore-range' || req.headers['if-range'] !== `"${sha256}"`) {
      res.writeHead(200, { 'content-length': content.byteLength, etag: `"${sha256}"` });
      return send(content);
    }
    const start = Number(range[1]);
    const end = Math.min(Number(range[2]), content.byteLength - 1);
    if (start >= content.byteLength) {
      res.writeHead(416, { 'content-range': `bytes */${content.byteLength}` });
      return res.end();
    }
    if (typeof mode === 'object' && served + (end - start + 1) > mode.dropAfter) {
      // Send part of the chunk, then break the connection: an interrupted transfer.
      const part = content.subarray(start, start + (mode.dropAfter - served));
      res.writeHead(206, {
        'content-range': `bytes ${start}-${end}/${content.byteLength}`,
        'content-length': end - start + 1,
      });
      bytesServed += part.byteLength;
      res.write(part, () => res.destroy());
      return;
    }
    if (mode === 'dribble') {
      // The right range announced, one byte sent: progress too slow to ever finish.
      res.writeHead(206, {
        'content-range': `bytes ${start}-${end}/${content.byteLength}`,
        'content-length': 1,
      });
      return send(content.subarray(start, start + 1));
    }
    const slice = content.subarray(start, end + 1);
    served += slice.byteLength;
    const extra = mode === 'overlong-206' ? Buffer.alloc(500, 1) : Buffer.alloc(0);
    res.writeHead(206, {
      'content-range': `bytes ${start}-${end}/${content.byteLength}`,
      'content-length': slice.byteLength + extra.byteLength,
    });
    send(Buffer.concat([slice, extra]));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/v1/artifacts/${sha256}`;
});

after(() => new Promise<void>((resolve) => server.close(() => resolve())));

let dir = '';
beforeEach(() => {
  mode = 'honest';
  bytesServed = 0;
  served = 0;
  ranges = [];
  if (dir !== '') rmSync(dir, { recursive: true, force: true });
  dir = mkdtempSync(join(tmpdir(), 'cc-download-'));
});
after(() => rmSync(dir, { recursive: true, force: true }));

function run(lines: string[] = [], progress: number[] = []) {
  return downloadResumable({
    url,
    sha256,
    size: SIZE,
    dir,
    chunkBytes: CHUNK,
    chunkTimeoutMs: 5000,
    log: (l) => lines.push(l),
    onProgress: (done, total) => {
      assert.equal(total, SIZE);
      progress.push(done);
    },
  });
}

describe('downloadResumable', () => {
  it('downloads in Range chunks with If-Range and reports progress up to the size', async () => {
    const progress: number[] = [];
    const got = await run([], progress);
    assert.equal(got.download.sha256, sha256);
    assert.equal(got.download.size, SIZE);
    assert.equal(got.download.exceeded, false);
    assert.equal(got.resumedAt, 0);
    assert.equal(got.bytesFetched, SIZE);
    assert.deepEqual(ranges.slice(0, 2), ['bytes=0-999', 'bytes=1000-1999']);
    assert.equal(ranges.length, SIZE / CHUNK);
    assert.deepEqual(readFileSync(got.path), artifact);
    assert.equal(got.path, partialPath(dir, sha256));
    assert.equal(progress[progress.length - 1], SIZE);
  });

  it('resumes an interrupted download from the end of the partial file', async () => {
    mode = { dropAfter: 4500 };
    await assert.rejects(run(), (e: unknown) => e instanceof DeviceHttpError && e.code === 'UNREACHABLE');
    const kept = statSync(partialPath(dir, sha256)).size;
    assert.ok(kept >= 4000 && kept <= 4500, `the partial file keeps what arrived (${kept} bytes)`);
    mode = 'honest';
    bytesServed = 0;
    ranges = [];
    const lines: string[] = [];
    const got = await run(lines);
    assert.equal(got.resumedAt, kept);
    assert.equal(got.bytesFetched, SIZE - kept);
    assert.equal(bytesServed, SIZE - kept, 'the server sent only the rest');
    assert.equal(ranges[0], `bytes=${kept}-${Math.min(kept + CHUNK, SIZE) - 1}`);
    assert.ok(lines.some((l) => l.includes(`resuming at ${kept} bytes`)));
    assert.equal(got.download.sha256, sha256);
    assert.deepEqual(readFileSync(got.path), artifact);
  });

  it('restarts from zero, capped, when the server ignores Range', async () => {
    writeFileSync(partialPath(dir, sha256), artifact.subarray(0, 3000));
    mode = 'ignore-range';
    const got = await run();
    assert.equal(got.resumedAt, 3000);
    assert.equal(got.bytesFetched, SIZE);
    assert.equal(got.download.sha256, sha256);
    assert.deepEqual(readFileSync(got.path), artifact);
  });

  it('stops at the release size when a server sends more (200 or an overlong 206)', async () => {
    for (const m of ['endless-200', 'overlong-206'] as const) {
      mode = m;
      rmSync(partialPath(dir, sha256), { force: true });
      const got = await run();
      assert.equal(got.download.exceeded, true, m);
      assert.equal(got.download.size, SIZE + 1, m);
      assert.ok(statSync(got.path).size <= SIZE, `${m}: never more than the release on disk`);
    }
  });

  it('downloads again from zero when a resumed file does not hash to the release', async () => {
    // The partial file was changed on disk: right length, wrong bytes.
    writeFileSync(partialPath(dir, sha256), Buffer.alloc(4000, 0xee));
    const lines: string[] = [];
    const got = await run(lines);
    assert.equal(got.download.sha256, sha256);
    assert.equal(got.resumedAt, 0, 'the result is the fresh download');
    assert.equal(got.bytesFetched, SIZE - 4000 + SIZE);
    assert.ok(lines.some((l) => l.includes('downloading again from zero')));
    assert.deepEqual(readFileSync(got.path), artifact);
  });

  it('returns the hash of other bytes (no retry without a resume), and a short artifact as short', async () => {
    mode = 'other-bytes';
    const other = await run();
    assert.notEqual(other.download.sha256, sha256);
    assert.equal(other.bytesFetched, SIZE, 'a fresh download is not repeated');
    rmSync(other.path);
    mode = 'short';
    const short = await run();
    assert.equal(short.download.size, SIZE - 10);
    assert.equal(short.download.exceeded, false);
  });

  it('gives up (keeping what arrived) on a server that sends a byte per request', async () => {
    mode = 'dribble';
    await assert.rejects(
      run(),
      (e: unknown) => e instanceof DeviceHttpError && /in 28 requests/.test(e.message),
    );
    assert.equal(ranges.length, 2 * (SIZE / CHUNK) + 8);
    assert.equal(statSync(partialPath(dir, sha256)).size, ranges.length);
  });

  it('discards a partial file larger than the release and partial files of other releases', async () => {
    writeFileSync(partialPath(dir, sha256), Buffer.alloc(SIZE + 5));
    const stale = partialPath(dir, 'ab'.repeat(32) as Hash32Hex);
    writeFileSync(stale, 'old');
    const got = await run();
    assert.equal(got.resumedAt, 0);
    assert.equal(got.download.sha256, sha256);
    assert.equal(existsSync(stale), false);
  });
});
