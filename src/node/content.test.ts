import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import pino from 'pino';
import { sha256Hex } from '../crypto/hash.ts';
import type { Hash32Hex, TargetName } from '../encoding/brand.ts';
import { signRelease } from '../ledger/index.ts';
import { createTestNetwork } from '../ledger/testing.ts';
import type { Transaction } from '../ledger/types.ts';
import { MemoryStore } from '../storage/memory.ts';
import { TestChain } from '../storage/testchain.ts';
import { ConfigSourceClient } from './config-source.ts';
import { ContentKeeper } from './content.ts';

const net = createTestNetwork();
const admins = net.adminKeys.slice(0, net.genesis.releaseThreshold);

function release(target: string, version: number, bytes: Buffer, inline: boolean): Transaction {
  return signRelease(
    {
      type: 'release',
      chainId: net.genesis.chainId,
      target: target as TargetName,
      version,
      sha256: sha256Hex(bytes),
      size: bytes.length,
      mediaType: 'text/plain',
      ...(inline ? { content: bytes.toString('base64') } : {}),
    },
    admins,
  );
}

describe('ContentKeeper', () => {
  const stored = Buffer.from('served by B', 'utf8');
  let requests = 0;
  let failFirst = 1;
  const server = createServer((req, res) => {
    requests++;
    if (req.url === `/v1/artifacts/${sha256Hex(stored)}` && failFirst-- <= 0) {
      res.writeHead(200, { 'content-length': stored.length }).end(stored);
    } else {
      res.writeHead(503).end();
    }
  });
  let base: string;
  before(async () => {
    await new Promise<void>((done) => server.listen(0, '127.0.0.1', () => done()));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  after(() => {
    server.closeAllConnections();
    server.close();
  });

  it('stores inline content at once and skips content above the copy limit', () => {
    const store = MemoryStore.create(net.genesis);
    const source = new ConfigSourceClient({ baseUrl: base });
    const keeper = new ContentKeeper({
      genesis: net.genesis,
      store,
      configSource: source,
      logger: pino({ level: 'silent' }),
    });
    const small = Buffer.from('inline bytes', 'utf8');
    const big = Buffer.alloc(net.genesis.policy.contentCopyBytesMax + 1, 1);
    keeper.onCommitted([release('t', 1, small, true), release('t', 2, big, false)]);
    assert.deepEqual(Buffer.from(store.getContent(sha256Hex(small)) ?? []), small);
    assert.equal(keeper.mediaType(sha256Hex(small)), 'text/plain');
    assert.equal(keeper.missing, 0, 'the big one is not queued');
    keeper.close();
    source.close();
  });

  it('stores what the vote downloaded, and fetches a missed copy in the background with retries', async () => {
    const store = MemoryStore.create(net.genesis);
    const source = new ConfigSourceClient({ baseUrl: base, keepContentBytesMax: 1024 });
    const keeper = new ContentKeeper({
      genesis: net.genesis,
      store,
      configSource: source,
      logger: pino({ level: 'silent' }),
      retryMs: 20,
    });
    const sha = sha256Hex(stored) as Hash32Hex;
    keeper.onCommitted([release('t', 1, stored, false)]);
    assert.equal(store.getContent(sha), null);
    assert.equal(keeper.missing, 1);
    const deadline = Date.now() + 5000;
    while (store.getContent(sha) === null && Date.now() < deadline)
      await new Promise((d) => setTimeout(d, 10));
    assert.deepEqual(Buffer.from(store.getContent(sha) ?? []), stored, 'fetched after one failed attempt');
    assert.ok(requests >= 2);

    // A validator that checked the artifact before voting already holds the bytes: no new request.
    const other = MemoryStore.create(net.genesis);
    const checked = new ConfigSourceClient({ baseUrl: base, keepContentBytesMax: 1024 });
    assert.deepEqual(await checked.checkArtifact(sha, stored.length), { ok: true });
    const before = requests;
    const keeper2 = new ContentKeeper({
      genesis: net.genesis,
      store: other,
      configSource: checked,
      logger: pino({ level: 'silent' }),
    });
    keeper2.onCommitted([release('t', 1, stored, false)]);
    assert.deepEqual(Buffer.from(other.getContent(sha) ?? []), stored);
    assert.equal(requests, before);
    for (const k of [keeper, keeper2]) k.close();
    for (const s of [source, checked]) s.close();
  });

  it('finds, at start, the copies of recent releases that it lacks', async () => {
    const chain = new TestChain();
    const store = MemoryStore.create(chain.genesis);
    const releases = [chain.release('a'), chain.release('b', 'served by B')];
    for (const tx of releases) store.appendBlock(chain.next([tx]));
    const first = releases[0]?.body;
    assert.ok(first?.type === 'release');
    store.putContent(first.sha256, Buffer.from('config of a #1', 'utf8'));
    const source = new ConfigSourceClient({ baseUrl: base });
    failFirst = 0;
    const keeper = new ContentKeeper({
      genesis: chain.genesis,
      store,
      configSource: source,
      logger: pino({ level: 'silent' }),
      retryMs: 20,
    });
    const asked = requests;
    await keeper.scanRecent(store.tip().height);
    const sha = sha256Hex(stored);
    const deadline = Date.now() + 5000;
    while (store.getContent(sha) === null && Date.now() < deadline)
      await new Promise((d) => setTimeout(d, 10));
    assert.deepEqual(Buffer.from(store.getContent(sha) ?? []), stored, 'the missing copy was fetched');
    assert.equal(requests - asked, 1, 'the copy it held was not fetched again');
    assert.equal(keeper.mediaType(sha), 'text/plain');
    keeper.close();
    source.close();
  });
});
