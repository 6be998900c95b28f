/**
 * Issue 6's acceptance for staged rollouts, on a real 4-validator network: 100 devices enrolled in
 * group G (their enrollments submitted concurrently), a release of group:G that every device
 * applies, then release 2 staged by the real `configchain rollout` process in waves 10,50,100
 * with --max-failures 5%. The 100 devices then run the real agent (runRound) in-process; 10 of
 * them have a hook that fails, chosen by waveOf so that failures fall in the first wave. Shown:
 * devices outside wave 1 wait; the rollout halts in wave 1 with the reason; the halt is the state
 * of every validator and the report transactions that caused it are in the chain; `rollout show
 * --json` says halted; resume, abort and rollback are recorded as transactions; after the rollback
 * a device of wave 1 that applied version 2 restores version 1 and reports it.
 */
import assert from 'node:assert/strict';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { after, before, describe, it } from 'node:test';
import { ApiClient } from '../../src/api/client.ts';
import { generateKeyPair } from '../../src/crypto/ed25519.ts';
import { savePrivateKey } from '../../src/crypto/keyfile.ts';
import { deviceFiles, type RoundResult, runRound } from '../../src/device/agent.ts';
import type { DeviceId, PublicKeyHex, TargetName } from '../../src/encoding/brand.ts';
import { type RolloutEntry, signAsAdmin, type Transaction } from '../../src/ledger/index.ts';
import { waveOf } from '../../src/ledger/rollout.ts';
import { paths } from '../../src/node/layout.ts';
import { adminKeys, publish } from '../attacks/system.ts';
import { type CliRun, runCli, sleep, startNetwork, type TestNetwork } from './harness.ts';

const DEVICES = 100;
const FAILING = 10;
const GROUP = 'G';
const TARGET = `group:${GROUP}`;
const ROLLOUT = 'g-v2-staged';
const WAVES = [10, 50, 100];

function cli(args: readonly string[], timeoutMs = 60_000): Promise<CliRun> {
  return runCli(args, timeoutMs);
}

/** Runs `work` over the items with at most `limit` at a time, keeping the order of the results. */
async function pool<T, R>(items: readonly T[], limit: number, work: (item: T) => Promise<R>): Promise<R[]> {
  const results: R[] = new Array(items.length);
  let next = 0;
  const worker = async () => {
    for (;;) {
      const i = next++;
      const item = items[i];
      if (item === undefined) return;
      results[i] = await work(item);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  return results;
}

describe('a staged rollout over 100 devices, 10% failing', () => {
  let net: TestNetwork;
  let dir: string;
  let chainId: string;
  const ids = Array.from({ length: DEVICES }, (_, i) => `cam-${String(i).padStart(3, '0')}`);
  const waveOfDevice = new Map(ids.map((id) => [id, waveOf(id, ROLLOUT, WAVES)]));
  let failing: Set<string>;
  const content = { 1: Buffer.from('mode=stable\n'), 2: Buffer.from('mode=staged\n') };

  function admin(index: number) {
    const info = adminKeys(net)[index];
    assert.ok(info !== undefined);
    return info;
  }

  async function submit(tx: Transaction, via: number): Promise<number> {
    const answer = await new ApiClient(net.apiUrl(via), { timeoutMs: 60_000 }).submitTx(tx, 30_000);
    assert.equal(answer.status, 'committed', JSON.stringify(answer));
    assert.ok(answer.height !== undefined);
    return answer.height;
  }

  /** Uploads a version to A and B and commits its release (via validator 1) on every validator. */
  async function release(version: 1 | 2): Promise<void> {
    await publish(net, TARGET, version, content[version], 1);
  }

  function round(id: string): Promise<RoundResult> {
    return runRound({ dir, deviceId: id, ...(failing.has(id) ? { hook: 'false' } : {}) });
  }

  /** The rollout on one validator once `ready` holds for it (bounded). */
  async function rolloutOn(via: number, ready: (r: RolloutEntry) => boolean): Promise<RolloutEntry> {
    const client = new ApiClient(net.apiUrl(via), { timeoutMs: 10_000 });
    for (let i = 0; ; i++) {
      const entry = await client.rollout(ROLLOUT);
      if (ready(entry) || i >= 150) return entry;
      await sleep(100);
    }
  }

  before(async () => {
    net = await startNetwork({ validators: 4 });
    dir = net.dir;
    chainId = net.init.genesis.chainId;
    // Ten failing devices, as many of them in wave 1 as it has but at least one, the rest later.
    const first = ids.filter((id) => waveOfDevice.get(id) === 0);
    const later = ids.filter((id) => waveOfDevice.get(id) !== 0);
    assert.ok(first.length >= 3, `wave 1 holds ${first.length} of the 100 devices; the test needs a few`);
    failing = new Set([...first.slice(0, 2), ...later.slice(0, FAILING - 2)]);
    assert.equal(failing.size, FAILING);
  });

  after(async () => {
    await net?.stop();
  });

  it('enrolls 100 devices concurrently and every one applies release 1 of group:G', async () => {
    const a = admin(0);
    const validators = net.init.genesis.validators.map((_, i) => net.apiUrl(i));
    const txs = ids.map((id) => {
      const pair = generateKeyPair();
      mkdirSync(deviceFiles.dir(dir, id), { recursive: true });
      savePrivateKey(paths.deviceKey(dir, id), pair.privateKey);
      writeFileSync(
        paths.deviceFile(dir, id),
        `${JSON.stringify({ deviceId: id, publicKey: pair.publicKeyHex, target: TARGET, configServer: net.configServerUrl('A'), validators })}\n`,
      );
      return signAsAdmin(
        {
          type: 'device-enroll',
          chainId,
          deviceId: id as DeviceId,
          publicKey: pair.publicKeyHex as PublicKeyHex,
          group: GROUP,
          target: TARGET as TargetName,
        },
        a.id,
        a.privateKey,
      );
    });
    const heights = await Promise.all(txs.map((tx, i) => submit(tx, i % 4)));
    await net.waitHeight([0, 1, 2, 3], Math.max(...heights));
    await release(1);

    const results = await pool(ids, 10, (id) => runRound({ dir, deviceId: id }));
    for (const [i, r] of results.entries())
      assert.equal(r.kind, 'applied', `${ids[i]}: ${JSON.stringify(r)}`);
  });

  it('records release 2 as a rollout with the real CLI; devices outside wave 1 wait, and a failure halts wave 1', async () => {
    await release(2);
    const recorded = await cli([
      'rollout',
      '--dir',
      dir,
      '--target',
      TARGET,
      '--version',
      '2',
      '--waves',
      WAVES.join(','),
      '--max-failures',
      '5%',
      '--id',
      ROLLOUT,
      '--json',
    ]);
    assert.equal(recorded.code, 0, recorded.stderr);
    const out = JSON.parse(recorded.stdout) as { rolloutId: string; height: number; rollout: RolloutEntry };
    assert.equal(out.rolloutId, ROLLOUT);
    assert.equal(out.rollout.status, 'running');
    // Every device falls into the wave waveOf says, and the ledger counted them so.
    for (const [wave, progress] of out.rollout.progress.entries()) {
      assert.equal(progress.devices, ids.filter((id) => waveOfDevice.get(id) === wave).length);
    }
    await net.waitHeight([0, 1, 2, 3], out.height);

    // Devices outside wave 1 first, so that the wave, not yet a halt, is what holds them back;
    // then wave 1's healthy devices, then its failing ones, whose reports halt the rollout.
    const order = [
      ...ids.filter((id) => waveOfDevice.get(id) !== 0),
      ...ids.filter((id) => waveOfDevice.get(id) === 0 && !failing.has(id)),
      ...ids.filter((id) => waveOfDevice.get(id) === 0 && failing.has(id)),
    ];
    const healthy = order.length - 2;
    const results = [
      ...(await pool(order.slice(0, healthy), 10, round)),
      ...(await pool(order.slice(healthy), 10, round)),
    ];
    for (const [i, r] of results.entries()) {
      const id = order[i] as string;
      const wave = waveOfDevice.get(id) as number;
      const what = `${id} (wave ${wave + 1}${failing.has(id) ? ', failing' : ''}): ${JSON.stringify(r)}`;
      if (wave > 0) {
        assert.equal(r.kind, 'waiting', what);
        assert.ok(r.kind === 'waiting');
        assert.equal(r.why, 'wave', what);
        assert.equal(r.wave, wave + 1, what);
        assert.equal(r.version, 1, what);
        assert.equal(readFileSync(deviceFiles.applied(dir, id, TARGET), 'utf8'), 'mode=stable\n');
      } else if (failing.has(id)) {
        assert.equal(r.kind === 'failed' && r.code, 'HOOK_FAILED', what);
      } else {
        assert.equal(r.kind, 'applied', what);
      }
    }

    // The halt is the state of every validator, with its reason.
    for (let v = 0; v < 4; v++) {
      const entry = await rolloutOn(v, (r) => r.status === 'halted' && r.progress[0]?.failures === 2);
      assert.equal(entry.status, 'halted', `validator ${v}: ${JSON.stringify(entry)}`);
      assert.equal(entry.currentWave, 0, 'the rollout never left wave 1');
      // The reason names the failures at the moment of the halt; later reports still count.
      assert.match(entry.reason, /^wave 1 of 3: [12] of its \d+ device\(s\) failed, more than 5%/);
      assert.equal(entry.progress[1]?.successes, 0);
      assert.equal(entry.progress[2]?.successes, 0);
    }
    // The failure reports that halted it are transactions in the chain.
    const chain = await net.chain(0);
    const reports = chain
      .flatMap((b) => b.transactions as Transaction[])
      .filter((tx) => tx.body.type === 'device-report' && tx.body.version === 2);
    const failed = reports.filter((tx) => tx.body.type === 'device-report' && tx.body.status === 'failed');
    assert.deepEqual(
      failed.map((tx) => (tx.body as { deviceId: string }).deviceId).sort(),
      [...failing].filter((id) => waveOfDevice.get(id) === 0).sort(),
    );
    assert.ok(chain.some((b) => (b.transactions as Transaction[]).some((tx) => tx.body.type === 'rollout')));

    // A halted rollout holds back every device that has not updated.
    const later = ids.filter((id) => (waveOfDevice.get(id) as number) > 0).slice(0, 3);
    for (const id of later) {
      const r = await round(id);
      assert.ok(r.kind === 'waiting' && r.why === 'halted', JSON.stringify(r));
      assert.match(r.reason, /halted \(wave 1 of 3/);
    }

    const shown = await cli(['rollout', 'show', '--dir', dir, '--id', ROLLOUT, '--json']);
    assert.equal(shown.code, 0, shown.stderr);
    const view = JSON.parse(shown.stdout) as { status: string; reason: string; waves: { devices: number }[] };
    assert.equal(view.status, 'halted');
    assert.match(view.reason, /^wave 1 of 3/);
    assert.equal(view.waves.length, 3);
    const text = await cli(['rollout', 'show', '--dir', dir, '--id', ROLLOUT]);
    assert.equal(text.code, 0, text.stderr);
    assert.match(text.stdout, /halted, wave 1 of 3/);
    assert.match(text.stdout, /reason: wave 1 of 3/);
    // --watch on a settled rollout draws it once and ends (plain lines: the output is a pipe).
    const watched = await cli(['rollout', 'show', '--dir', dir, '--id', ROLLOUT, '--watch']);
    assert.equal(watched.code, 0, watched.stderr);
    assert.equal(watched.stdout, text.stdout);
    // `configchain status` lists it among the rollouts under way, from the chain it verified.
    const status = await cli(['status', '--dir', dir]);
    assert.equal(status.code, 0, status.stderr);
    assert.match(
      status.stdout,
      /Rollouts under way:\n {2}rollout g-v2-staged: group:G version 2, halted, wave 1 of 3/,
    );
  });

  it('records resume, abort and rollback as transactions (one of two racing controls is rejected), and a rolled-back device restores release 1', async () => {
    const control = async (action: string, seq: number, status: string) => {
      const run = await cli(['rollout', action, '--dir', dir, '--id', ROLLOUT, '--json']);
      assert.equal(run.code, 0, run.stderr);
      const out = JSON.parse(run.stdout) as { seq: number; txId: string; height: number };
      assert.equal(out.seq, seq);
      const found = await new ApiClient(net.apiUrl(3), { timeoutMs: 10_000 }).tx(out.txId).catch(async () => {
        await net.waitHeight([3], out.height);
        return new ApiClient(net.apiUrl(3), { timeoutMs: 10_000 }).tx(out.txId);
      });
      assert.deepEqual(
        { type: found.tx.body.type, action: (found.tx.body as { action?: string }).action },
        { type: 'rollout-control', action },
      );
      const entry = await rolloutOn(3, (r) => r.controlSeq === seq);
      assert.equal(entry.status, status);
      return entry;
    };
    // Two admins resume at once, both with seq 1: one commits, and the other is rejected with the
    // reason (a control that crossed another), well before its wait runs out.
    const race = [admin(0), admin(1)].map((a) =>
      new ApiClient(net.apiUrl(2), { timeoutMs: 60_000 }).submitTx(
        signAsAdmin(
          { type: 'rollout-control', chainId, rolloutId: ROLLOUT, action: 'resume', seq: 1 },
          a.id,
          a.privateKey,
        ),
        25_000,
      ),
    );
    const started = Date.now();
    const answers = await Promise.all(race);
    assert.deepEqual(answers.map((a) => a.status).sort(), ['committed', 'rejected'], JSON.stringify(answers));
    assert.match(answers.find((a) => a.status === 'rejected')?.reason ?? '', /must carry seq 2, not 1/);
    assert.ok(
      Date.now() - started < 20_000,
      'the loser is rejected when the winner commits, not at the wait limit',
    );
    assert.equal((await rolloutOn(3, (r) => r.controlSeq === 1)).status, 'running');

    await control('abort', 2, 'aborted');
    await control('resume', 3, 'running');
    const rolledBack = await control('rollback', 4, 'aborted');
    assert.equal(rolledBack.rollback, true);

    const applied = ids.find((id) => waveOfDevice.get(id) === 0 && !failing.has(id)) as string;
    await net.waitHeight([0, 1, 2, 3], (await net.status(3)).height);
    const r = await round(applied);
    assert.ok(r.kind === 'rolled-back', JSON.stringify(r));
    assert.equal(r.version, 1);
    assert.equal(r.from, 2);
    assert.equal(r.report.status, 'committed');
    assert.equal(readFileSync(deviceFiles.applied(dir, applied, TARGET), 'utf8'), 'mode=stable\n');
    // Next round it stays on release 1: the rolled-back version is not applied again.
    const again = await round(applied);
    assert.ok(again.kind === 'waiting' && again.why === 'rolled-back', JSON.stringify(again));
  });
});
