/**
 * Issue 4 acceptance (d) and (e): crashes and pauses of real validator processes.
 * (d) kill -9 of a backup and then of the current primary: validations still succeed within the
 *     view-change timeout, and each killed node restarts from its own disk and catches up to an
 *     identical chain.
 * (e) SIGSTOP of one validator: the others go on; after SIGCONT it catches up.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import Database from 'better-sqlite3';
import { paths } from '../../src/node/layout.ts';
import { answers, sha256OfText, sleep, startNetwork, type TestNetwork } from './harness.ts';

const H = (v: number) => sha256OfText(String(v));

/**
 * Asks `via` to validate until the answer is a decision. 503 (timeout, unavailable) is an honest
 * "not yet" while a view change runs; the first decision must be 'added' or, if an earlier
 * attempt's attest committed after its answer timed out, 'current'.
 */
async function validateUntilDecided(
  net: TestNetwork,
  via: number,
  hash: string,
  budgetMs: number,
): Promise<string> {
  const deadline = Date.now() + budgetMs;
  for (;;) {
    const answer = await net.validateHash(via, hash);
    if (answer.status === 200) return answer.body;
    assert.equal(answer.status, 503, `unexpected answer ${answer.status}: ${answer.body}`);
    if (Date.now() > deadline) assert.fail(`no decision for ${hash} within ${budgetMs} ms: ${answer.body}`);
    await sleep(200);
  }
}

describe('crash and pause of validator processes', { timeout: 240_000 }, () => {
  let net: TestNetwork;
  before(async () => {
    net = await startNetwork({ versions: 12 });
  });
  after(async () => {
    await net?.stop();
  });

  it('(d) kill -9 of a backup, then of the primary: validations go on, and restarted nodes catch up from disk', async () => {
    assert.deepEqual(await net.validateHash(0, H(1)), { status: 200, body: answers.added });
    const startView = (await net.status(0)).view;
    const primary = (await net.status(0)).primary;
    const backup = (primary + 1) % 4;

    // A backup dies: the other three still commit.
    await net.kill9(backup);
    const survivor = (primary + 2) % 4;
    assert.deepEqual(await net.validateHash(survivor, H(2)), { status: 200, body: answers.added });
    net.startValidator(backup);
    await net.waitReady([backup]);
    await net.waitSameChains([0, 1, 2, 3], 30_000);
    assert.ok((await net.status(backup)).height >= 2, 'the restarted backup caught up');

    // The primary dies: after a view change the rest commit, within a few view-change timeouts.
    await net.kill9(primary);
    const asked = (primary + 1) % 4;
    const started = Date.now();
    const decision = await validateUntilDecided(net, asked, H(3), 20_000);
    assert.ok(decision === answers.added || decision === answers.current, `decision was ${decision}`);
    const tookMs = Date.now() - started;
    const status = await net.status(asked);
    assert.ok(status.view > startView, 'a view change replaced the dead primary');
    assert.notEqual(status.primary, primary);
    console.log(`primary ${primary} killed: decided in ${tookMs} ms, now view ${status.view}`);
    assert.deepEqual(await net.validateHash(asked, H(4)), { status: 200, body: answers.added });

    // The old primary restarts from its own disk and catches up to an identical chain.
    net.startValidator(primary);
    await net.waitReady([primary]);
    const chain = await net.waitSameChains([0, 1, 2, 3], 40_000);
    const attested = chain.flatMap((e) =>
      (e.transactions as { body?: { type?: string; sha256?: string } }[])
        .filter((t) => t.body?.type === 'attest')
        .map((t) => t.body?.sha256),
    );
    for (const v of [1, 2, 3, 4]) assert.ok(attested.includes(H(v)), `version ${v} is in the chain`);
    assert.deepEqual(await net.validateHash(primary, H(4)), { status: 200, body: answers.current });
  });

  it('(e) SIGSTOP of one validator: the rest go on, and after SIGCONT it catches up', async () => {
    const status = await net.status(0);
    const paused = (status.primary + 1) % 4;
    const asked = (status.primary + 2) % 4;
    net.signal(paused, 'SIGSTOP');
    try {
      assert.deepEqual(await net.validateHash(asked, H(5)), { status: 200, body: answers.added });
      assert.deepEqual(await net.validateHash(asked, H(6)), { status: 200, body: answers.added });
    } finally {
      net.signal(paused, 'SIGCONT');
    }
    await net.waitSameChains([0, 1, 2, 3], 40_000);
    assert.deepEqual(await net.validateHash(paused, H(6)), { status: 200, body: answers.current });
  });

  it('a validator whose stored chain is corrupt refuses to start and names the first bad height', async () => {
    const victim = ((await net.status(0)).primary + 3) % 4;
    await net.kill9(victim);
    // Rewrite one character of block 1's stored header, as a disk error or an attacker would.
    const db = new Database(paths.database(net.dir, victim));
    const row = db.prepare('SELECT header FROM blocks WHERE height = 1').get() as { header: string };
    const tampered = row.header.replace(
      /"timestampMs":(\d)/,
      (_m, d: string) => `"timestampMs":${(Number(d) + 1) % 10}`,
    );
    assert.notEqual(tampered, row.header);
    db.prepare('UPDATE blocks SET header = ? WHERE height = 1').run(tampered);
    db.close();
    net.startValidator(victim);
    const code = await net.waitExit(victim, 60_000);
    assert.equal(code, 1, 'the node exits non-zero');
    assert.match(net.output(victim), /corrupt from height 1/);
    // The rest of the network is unaffected.
    const asked = (victim + 1) % 4;
    assert.deepEqual(await net.validateHash(asked, H(7)), { status: 200, body: answers.added });
  });
});
