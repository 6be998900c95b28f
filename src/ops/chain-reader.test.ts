import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { blockHash, genesisBlock } from '../ledger/index.ts';
import { scenarioChain, TestChain } from '../storage/testchain.ts';
import { ChainReader, httpBlockSource } from './chain-reader.ts';
import type { ChainCheckError } from './chain-verifier.ts';
import type { OpsError } from './errors.ts';

describe('httpBlockSource', () => {
  const chain = new TestChain({ seed: 'ops-http' });
  const genesis = genesisBlock(chain.genesis);
  const records: unknown[] = [{ hash: blockHash(genesis.header), block: genesis, certificate: null }];
  for (const a of scenarioChain(chain)) {
    records.push({ hash: blockHash(a.block.header), block: a.block, certificate: a.certificate });
  }
  const asked: number[] = [];
  let mode: 'honest' | 'garbage' = 'honest';
  let server: Server;
  let url: string;

  before(async () => {
    // Serves GET /v1/blocks from the records as a validator would, and records each page size asked.
    server = createServer((req, res) => {
      const query = new URL(req.url ?? '/', 'http://x').searchParams;
      const from = Number(query.get('from'));
      const limit = Number(query.get('limit'));
      asked.push(limit);
      res.writeHead(200, { 'content-type': 'application/json' });
      if (mode === 'garbage') res.end('<html>not a page</html>');
      else
        res.end(JSON.stringify({ tipHeight: records.length - 1, blocks: records.slice(from, from + limit) }));
    });
    await new Promise<void>((done) => server.listen(0, '127.0.0.1', done));
    url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  after(async () => {
    await new Promise((done) => server.close(done));
  });

  it('asks again with fewer blocks when a page is larger than it may read, and verifies them all', async () => {
    const largest = Math.max(...records.map((r) => JSON.stringify(r).length));
    asked.length = 0;
    const reader = new ChainReader(chain.genesis, httpBlockSource(url, 5000, 2 * largest + 100), {
      pageSize: 6,
    });
    assert.equal(await reader.sync(), records.length - 1);
    assert.equal(reader.verifier.state.root, chain.state.root);
    assert.ok(asked.includes(6) && Math.min(...asked) <= 2, `pages asked: ${asked.join(', ')}`);
  });

  it('refuses a single block larger than the page limit, and an answer that is not a page', async () => {
    const tooSmall = new ChainReader(chain.genesis, httpBlockSource(url, 5000, 50));
    await assert.rejects(
      tooSmall.sync(),
      (e: ChainCheckError) => e.height === 0 && /more than 50 bytes/.test(e.message),
    );
    mode = 'garbage';
    try {
      const reader = new ChainReader(chain.genesis, httpBlockSource(url));
      await assert.rejects(
        reader.sync(),
        (e: OpsError) => e.code === 'NODE_ERROR' && /not JSON/.test(e.message),
      );
    } finally {
      mode = 'honest';
    }
    const down = new ChainReader(chain.genesis, httpBlockSource('http://127.0.0.1:1', 2000));
    await assert.rejects(
      down.sync(),
      (e: OpsError) => e.code === 'NODE_UNREACHABLE' && /--node/.test(e.message),
    );
  });
});
