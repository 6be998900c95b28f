/**
 * The rollout command's parsing and display, and `rollout show --watch` against a real HTTP API
 * (the in-memory facade, real ledger rules and signatures): on a terminal it redraws in place
 * until an abort settles the rollout; on a pipe it prints only changes.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { FastifyInstance } from 'fastify';
import { MemoryFacade, memoryNetwork } from '../../api/memory-facade.ts';
import { buildApiServer } from '../../api/server.ts';
import type { Hash32Hex, TargetName } from '../../encoding/brand.ts';
import { signAsAdmin, signRelease, type Transaction } from '../../ledger/index.ts';
import { enrollTx } from '../../ledger/testing.ts';
import { paths } from '../../node/layout.ts';
import { OperatorError } from './publish.ts';
import { parsePercent, parseWaves, rolloutLines, showRollout } from './rollout.ts';

describe('rollout option parsing', () => {
  it('takes cumulative waves ending at 100 and whole percentages, and says what is wrong otherwise', () => {
    assert.deepEqual(parseWaves('10,50,100'), [10, 50, 100]);
    assert.deepEqual(parseWaves('100'), [100]);
    assert.deepEqual(parseWaves('10%, 50%, 100%'), [10, 50, 100]);
    for (const bad of [
      '10,50',
      '50,10,100',
      '10,10,100',
      '0,100',
      '10.5,100',
      '',
      'a,100',
      '10,5x,100',
      '010,100',
      '0x10,100',
      '10,1e2',
    ]) {
      assert.throws(
        () => parseWaves(bad),
        (e: unknown) => e instanceof OperatorError && e.code === 'WAVES_INVALID',
      );
    }
    assert.equal(parsePercent('5%'), 5);
    assert.equal(parsePercent('0'), 0);
    for (const bad of ['101%', '-1', '2.5%', 'five', '5x', '5%x', '05%', ' 5%', '0x5']) {
      assert.throws(
        () => parsePercent(bad),
        (e: unknown) => e instanceof OperatorError && e.code === 'MAX_FAILURES_INVALID',
      );
    }
  });
});

describe('rollout show', () => {
  const net = memoryNetwork(5000, Date.now());
  const [a1, a2] = net.adminKeys.map((a) => ({ id: a.id, privateKey: a.key.privateKey }));
  const chainId = net.genesis.chainId;
  let facade: MemoryFacade;
  let app: FastifyInstance;
  let url: string;
  let dir: string;

  async function commit(tx: Transaction): Promise<void> {
    const result = await facade.submitTx(tx, { waitMs: 0 });
    assert.equal(result.status, 'committed', JSON.stringify(result));
  }

  before(async () => {
    assert.ok(a1 !== undefined && a2 !== undefined);
    dir = mkdtempSync(join(tmpdir(), 'configchain-rollout-'));
    writeFileSync(paths.genesis(dir), JSON.stringify(net.genesis));
    facade = new MemoryFacade(net, 0);
    app = await buildApiServer(facade);
    await app.listen({ host: '127.0.0.1', port: 0 });
    const address = app.server.address();
    assert.ok(address !== null && typeof address === 'object');
    url = `http://127.0.0.1:${address.port}`;
    for (let i = 0; i < 12; i++) {
      await commit(enrollTx(chainId, a1, { deviceId: `d-${i}`, group: 'G', target: 'group:G' }));
    }
    const target = 'group:G' as TargetName;
    await commit(
      signRelease(
        {
          type: 'release',
          chainId,
          target,
          version: 1,
          sha256: 'b'.repeat(64) as Hash32Hex,
          size: 1,
          mediaType: 'text/plain',
        },
        [a1, a2],
      ),
    );
    await commit(
      signRelease(
        {
          type: 'rollout',
          chainId,
          rolloutId: 'r',
          target,
          version: 1,
          waves: [50, 100],
          maxFailuresPercent: 10,
        },
        [a1, a2],
      ),
    );
  });

  after(async () => {
    await app.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('redraws in place on a terminal until an abort settles the rollout', async () => {
    assert.ok(a1 !== undefined);
    const chunks: string[] = [];
    const out = { isTTY: true, write: (t: string) => chunks.push(t) };
    const watching = showRollout({ dir, id: 'r', node: url, watch: true, json: false, out });
    // Let it draw the running rollout at least once, then abort it on the ledger.
    for (let i = 0; i < 50 && chunks.length === 0; i++) await new Promise((r) => setTimeout(r, 20));
    assert.match(chunks[0] ?? '', /rollout r: group:G version 1, running, wave 1 of 2/);
    await commit(
      signAsAdmin(
        { type: 'rollout-control', chainId, rolloutId: 'r', action: 'abort', seq: 1 },
        a1.id,
        a1.privateKey,
      ),
    );
    await watching;
    const text = chunks.join('');
    const lines = (chunks[0] ?? '').trimEnd().split('\n').length;
    assert.equal(lines, 3, 'a title and one line per wave');
    // Each redraw first moves the cursor up over the previous drawing and clears to the end.
    assert.ok(text.includes(`\u001b[${lines}F\u001b[J`), JSON.stringify(text));
    assert.match(chunks.at(-1) ?? '', /aborted, wave 1 of 2/);
    assert.match(chunks.at(-1) ?? '', /reason: aborted by admin admin-1/);
  });

  it('prints plain lines once on a pipe, and JSON that says the status', async () => {
    const chunks: string[] = [];
    await showRollout({
      dir,
      id: 'r',
      node: url,
      watch: true,
      json: false,
      out: { write: (t) => chunks.push(t) },
    });
    assert.equal(
      chunks.join(''),
      `${rolloutLines(facade.rollout('r') ?? assert.fail('no rollout')).join('\n')}\n`,
    );
    const json: string[] = [];
    await showRollout({
      dir,
      id: 'r',
      node: url,
      watch: false,
      json: true,
      out: { write: (t) => json.push(t) },
    });
    const view = JSON.parse(json.join('')) as { status: string; waves: { devices: number; open: boolean }[] };
    assert.equal(view.status, 'aborted');
    assert.equal(
      view.waves.reduce((n, w) => n + w.devices, 0),
      12,
    );
    await assert.rejects(
      showRollout({ dir, id: 'nope', node: url, watch: false, json: true, out: { write: () => true } }),
      (e: unknown) => e instanceof OperatorError && e.code === 'ROLLOUT_NOT_FOUND',
    );
  });
});
