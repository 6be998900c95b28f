import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { after, describe, it } from 'node:test';
import { sha256Hex } from '../crypto/hash.ts';
import { ArtifactStore, ArtifactStoreError, listBlobs } from './store.ts';

describe('artifact store', () => {
  const dir = mkdtempSync(join(tmpdir(), 'cc-store-'));
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('streams content to its content address and indexes it', async () => {
    const store = ArtifactStore.open(dir, { artifactBytesMax: 100 });
    try {
      const res = await store.putStream(
        't',
        1,
        'text/plain',
        Readable.from([Buffer.from('ab'), Buffer.from('cd')]),
      );
      assert.equal(res.status, 'created');
      assert.equal(res.meta.sha256, sha256Hex('abcd'));
      assert.equal(readFileSync(store.blobPath(res.meta.sha256), 'utf8'), 'abcd');
      assert.deepEqual(
        store.versions('t').map((m) => m.version),
        [1],
      );
      assert.equal(store.latest('t')?.size, 4);
      assert.equal(store.byHash(sha256Hex('abcd'))?.target, 't');
    } finally {
      store.close();
    }
  });

  it('refuses a stream over the cap without a Content-Length, keeping nothing', async () => {
    const store = ArtifactStore.open(dir, { artifactBytesMax: 100 });
    try {
      const before = listBlobs(dir).length;
      const chunks = Array.from({ length: 11 }, () => Buffer.alloc(10, 1));
      await assert.rejects(
        store.putStream('t', 2, 'text/plain', Readable.from(chunks)),
        (err: unknown) => err instanceof ArtifactStoreError && err.code === 'ARTIFACT_TOO_LARGE',
      );
      assert.equal(store.get('t', 2), undefined);
      assert.equal(listBlobs(dir).length, before);
      assert.deepEqual(readdirSync(join(dir, 'tmp')), [], 'no temp file is left behind');
    } finally {
      store.close();
    }
  });

  it('is idempotent for the same content and refuses other content, bad names and media types', () => {
    const store = ArtifactStore.open(dir);
    try {
      assert.equal(store.put('t', 3, Buffer.from('x'), 'text/plain').status, 'created');
      assert.equal(store.put('t', 3, Buffer.from('x'), 'text/plain').status, 'exists');
      assert.throws(() => store.put('t', 3, Buffer.from('y'), 'text/plain'), /immutable/);
      assert.throws(() => store.put('', 1, Buffer.from('y'), 'text/plain'), /target name/);
      assert.throws(() => store.put('t', 0, Buffer.from('y'), 'text/plain'), /version is an integer/);
      assert.throws(() => store.put('t', 4, Buffer.from('y'), 'not a type'), /not a media type/);
      assert.deepEqual(
        store.versions('t', { afterVersion: 1, limit: 1 }).map((m) => m.version),
        [3],
      );
    } finally {
      store.close();
    }
  });
});
