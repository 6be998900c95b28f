/**
 * Attacks of issue 5 on what the validators accept and store, on a real 4-validator network made
 * without --demo (so no unauthenticated compatibility calls):
 *   7. forged releases (fewer admins than the threshold, unknown keys, an impersonated admin, one
 *      admin counted twice) are rejected by every validator and never committed;
 *   8. unenrolled and revoked devices cannot fetch proofs, validate or report (403 on the API, rejected
 *      on the ledger), and a replayed report (same seq) is rejected;
 *   9. a byte flipped in one validator's database file: that node refuses to start, while the other
 *      three commit and serve.
 * The tests share one network and run in order; attack 9 goes last because it leaves a node down.
 */
import assert from 'node:assert/strict';
import { generateKeyPairSync } from 'node:crypto';
import { closeSync, openSync, readFileSync, readSync, writeSync } from 'node:fs';
import { after, before, describe, it } from 'node:test';
import Database from 'better-sqlite3';
import { Domain } from '../../src/crypto/domains.ts';
import { sign } from '../../src/crypto/ed25519.ts';
import { sha256Hex } from '../../src/crypto/hash.ts';
import { deviceFiles, runRound } from '../../src/device/agent.ts';
import type { TargetName } from '../../src/encoding/brand.ts';
import { signAsDevice, signRelease } from '../../src/ledger/index.ts';
import type { DeviceReportBody, Transaction } from '../../src/ledger/types.ts';
import { paths } from '../../src/node/layout.ts';
import { sleep, startNetwork, type TestNetwork } from '../system/harness.ts';
import {
  adminKeys,
  allTransactions,
  enroll,
  newDevice,
  placeDevice,
  publish,
  releaseBody,
  revoke,
  sendAsPeer,
  signedRequest,
  submitTx,
  type TestDevice,
  upload,
} from './system.ts';

const TARGET = 'attacks-ledger';
const content = (version: number) => Buffer.from(`ledger attack target, version ${version}\n`, 'utf8');

function reportTx(
  net: TestNetwork,
  device: TestDevice,
  seq: number,
  version: number,
  detail = '',
): Transaction {
  const body: DeviceReportBody = {
    type: 'device-report',
    chainId: net.init.genesis.chainId,
    deviceId: device.id,
    seq,
    target: TARGET as TargetName,
    version,
    sha256: sha256Hex(content(version)),
    status: 'applied',
    detail,
  };
  return signAsDevice(body, device.key);
}

describe('attacks on the ledger (issue 5: 7, 8, 9)', { timeout: 180_000 }, () => {
  let net: TestNetwork;
  /** The enrolled device of attack 8; attack 9 runs its agent. */
  let honest: TestDevice;
  before(async () => {
    net = await startNetwork({ demo: false, heartbeatIntervalMs: 60_000 });
    await publish(net, TARGET, 1, content(1));
  });
  after(async () => {
    await net?.stop();
  });

  it('attack 7: forged releases are rejected by every validator and never committed', async () => {
    const [admin1, admin2] = adminKeys(net);
    assert.ok(admin1 !== undefined && admin2 !== undefined);
    assert.equal(net.init.genesis.releaseThreshold, 2);
    // Version 2 is on both config servers, so only the signatures are wrong.
    await upload(net, TARGET, 2, content(2));
    const body = releaseBody(net, TARGET, 2, content(2));
    const stranger = { id: 'admin-2', privateKey: generateKeyPairSync('ed25519').privateKey };
    const intruder = { id: 'intruder', privateKey: generateKeyPairSync('ed25519').privateKey };
    const forgeries: { name: string; tx: Transaction; reason: RegExp }[] = [
      { name: 'one admin of two', tx: signRelease(body, [admin1]), reason: /from 1 distinct admin/ },
      {
        name: 'an admin and a key no genesis names',
        tx: signRelease(body, [admin1, intruder]),
        reason: /from 1 distinct admin/,
      },
      {
        name: 'an admin and an impersonation of admin-2 with another key',
        tx: signRelease(body, [admin1, stranger]),
        reason: /admin admin-2 does not verify/,
      },
      {
        name: 'one admin counted twice',
        tx: signRelease(body, [admin1, admin1]),
        reason: /from 1 distinct admin/,
      },
      {
        name: "two admins' signatures over another body",
        tx: {
          body,
          signatures: [admin1, admin2].map((k) => ({
            signer: k.id,
            signature: sign(Domain.releaseApproval, { ...body, version: 3 }, k.privateKey),
          })),
        },
        reason: /does not verify/,
      },
      {
        name: 'two admins signing in the transaction domain instead of the approval domain',
        tx: {
          body,
          signatures: [admin1, admin2].map((k) => ({
            signer: k.id,
            signature: sign(Domain.transaction, body, k.privateKey),
          })),
        },
        reason: /does not verify/,
      },
    ];
    const refusedIds = new Set<string>();
    for (const forgery of forgeries) {
      for (let v = 0; v < net.n; v++) {
        const answer = await submitTx(net, v, forgery.tx, 2000);
        assert.equal(
          answer.httpStatus,
          422,
          `validator ${v} on "${forgery.name}": ${JSON.stringify(answer)}`,
        );
        assert.equal(answer.status, 'rejected');
        assert.match(answer.reason ?? '', forgery.reason, `validator ${v} on "${forgery.name}"`);
        refusedIds.add(answer.txId);
      }
    }
    // Even a release with a full threshold of genuine admin signatures (stolen keys) does not
    // commit when the validator-facing config server B does not hold its bytes: the attacker
    // uploaded them to A only. Every validator fetches from B and hashes before voting.
    const evil = Buffer.from('a configuration the attacker uploaded to A only\n', 'utf8');
    await upload(net, TARGET, 99, evil, ['A']);
    const stolenKeys = signRelease(releaseBody(net, TARGET, 99, evil), [admin1, admin2]);
    const notOnB = await submitTx(net, 0, stolenKeys, 3000);
    assert.notEqual(notOnB.status, 'committed', JSON.stringify(notOnB));

    // The same forgeries pushed straight into consensus over validator 3's peer links (its host
    // taken over), bypassing every API check, together with an honest release of version 2. The
    // honest one commits, which shows the links delivered; none of the forgeries does.
    const honestV2 = signRelease(releaseBody(net, TARGET, 2, content(2)), [admin1, admin2]);
    const gossip = [stolenKeys, ...forgeries.map((f) => f.tx), honestV2].map((tx) => ({ kind: 'tx', tx }));
    await sendAsPeer(net, 3, [0, 1, 2], gossip);
    await waitForVersion(net, [0, 1, 2, 3], TARGET, 2);
    for (let v = 0; v < net.n; v++) {
      const txs = await allTransactions(net, v);
      const releases = txs.filter((t) => t.body.type === 'release' && t.body.target === TARGET);
      assert.deepEqual(
        releases.map((t) => (t.body as { version: number }).version),
        [1, 2],
        `validator ${v} holds exactly the two honest releases`,
      );
      assert.ok(!releases.some((t) => (t.body as { sha256: string }).sha256 === sha256Hex(evil)));
      for (const release of releases) {
        assert.equal(new Set(release.signatures.map((s) => s.signer)).size, 2);
        assert.ok(!release.signatures.some((s) => s.signer === 'intruder'));
      }
    }
    assert.equal(refusedIds.size, forgeries.length, 'each forgery was its own transaction');
  });

  it('attack 8: unenrolled and revoked devices cannot validate, fetch proofs or report, and a replayed report is rejected', async () => {
    honest = newDevice('attacks-honest');
    const stolen = newDevice('attacks-stolen');
    const unknown = newDevice('attacks-unknown');
    await enroll(net, honest, TARGET);
    await enroll(net, stolen, TARGET);
    await revoke(net, stolen);

    // On the API: neither an unknown nor a revoked device may fetch a proof or validate a hash
    // (403), and a request signed with another key than the enrolled one is refused (401).
    const impostor = { ...unknown, id: honest.id };
    const hash = sha256Hex(content(2));
    for (const [who, status] of [
      [unknown, 403],
      [stolen, 403],
      [impostor, 401],
    ] as const) {
      for (let v = 0; v < net.n; v++) {
        const proof = await signedRequest(net, v, who, 'GET', `/v1/targets/${TARGET}/proof`);
        assert.equal(proof.status, status, `proof for ${who.id} on ${v}: ${proof.text}`);
        assert.match(proof.text, status === 403 ? /DEVICE_FORBIDDEN/ : /DEVICE_UNAUTHORIZED/);
        const validate = await signedRequest(net, v, who, 'POST', '/validateHash', { hash, target: TARGET });
        assert.equal(validate.status, status, `validateHash for ${who.id} on ${v}: ${validate.text}`);
      }
    }
    // The revoked device's own agent gets nowhere: every validator refuses it.
    placeDevice(net, stolen, TARGET, {
      configServer: net.configServerUrl('A'),
      validators: [0, 1, 2, 3].map((v) => net.apiUrl(v)),
    });
    const round = await runRound({ dir: net.dir, deviceId: stolen.id });
    assert.equal(round.kind, 'failed', JSON.stringify(round));
    assert.deepEqual(round.kind === 'failed' ? round.attempts.map((a) => a.code) : [], [
      'DEVICE_FORBIDDEN',
      'DEVICE_FORBIDDEN',
      'DEVICE_FORBIDDEN',
      'DEVICE_FORBIDDEN',
    ]);
    const allowed = await signedRequest(net, 0, honest, 'GET', `/v1/targets/${TARGET}/proof`);
    assert.equal(allowed.status, 200, `the enrolled device may fetch its proof: ${allowed.text}`);
    // Unsigned, on a network made without --demo: refused too.
    const unsigned = await fetch(`${net.apiUrl(0)}/v1/targets/${TARGET}/proof`);
    assert.equal(unsigned.status, 401);

    // On the ledger: their reports are rejected by every rule that applies, whoever relays them.
    const unenrolled = await submitTx(net, 0, reportTx(net, unknown, 1, 2));
    assert.equal(unenrolled.status, 'rejected', JSON.stringify(unenrolled));
    assert.match(unenrolled.reason ?? '', /not enrolled/);
    const revoked = await submitTx(net, 1, reportTx(net, stolen, 1, 2));
    assert.equal(revoked.status, 'rejected', JSON.stringify(revoked));
    assert.match(revoked.reason ?? '', /revoked/);
    // A report signed by another key in the honest device's name.
    const forged = await submitTx(net, 2, reportTx(net, impostor, 1, 2));
    assert.equal(forged.status, 'rejected', JSON.stringify(forged));
    assert.match(forged.reason ?? '', /does not verify/);

    const first = reportTx(net, honest, 1, 2);
    const accepted = await submitTx(net, 0, first);
    assert.equal(accepted.status, 'committed', JSON.stringify(accepted));
    // Sending the very same report again changes nothing: it is answered with its one commit.
    const again = await submitTx(net, 1, first);
    assert.equal(again.status, 'committed');
    assert.equal(again.height, accepted.height);
    // A new report with a used sequence number is a replay, on every validator.
    for (let v = 0; v < net.n; v++) {
      const replay = await submitTx(net, v, reportTx(net, honest, 1, 2, `replay at ${v}`));
      assert.equal(replay.status, 'rejected', `validator ${v}: ${JSON.stringify(replay)}`);
      assert.match(replay.reason ?? '', /not above its last accepted seq 1/);
    }
    const next = await submitTx(net, 2, reportTx(net, honest, 2, 2));
    assert.equal(next.status, 'committed', 'the next sequence number is accepted');
    await net.waitHeight([0, 1, 2, 3], next.height ?? 0);

    for (let v = 0; v < net.n; v++) {
      const reports = (await allTransactions(net, v)).filter((t) => t.body.type === 'device-report');
      assert.deepEqual(
        reports.map((t) => [(t.body as DeviceReportBody).deviceId, (t.body as DeviceReportBody).seq]),
        [
          [honest.id, 1],
          [honest.id, 2],
        ],
        `validator ${v} holds only the honest device's two reports`,
      );
    }
  });

  it('attack 9: a byte flipped in one validator database: it refuses to start, the other three carry on', async () => {
    const status = await net.status(0);
    const victim = (status.primary + 1) % net.n;
    const others = [0, 1, 2, 3].filter((v) => v !== victim);
    await net.kill9(victim);

    const file = paths.database(net.dir, victim);
    const flipped = flipByteOfFirstRelease(file);
    assert.match(flipped.was, /[0-9a-f]/);

    net.startValidator(victim);
    const code = await net.waitExit(victim, 60_000);
    assert.equal(code, 1, `the tampered node exits non-zero:\n${net.output(victim)}`);
    assert.match(net.output(victim), new RegExp(`corrupt from height ${flipped.height}`));
    const served = await fetch(`${net.apiUrl(victim)}/health`, { signal: AbortSignal.timeout(2000) })
      .then((r) => r.status)
      .catch(() => 'refused');
    assert.equal(served, 'refused', 'the tampered node serves nothing');

    // The other three commit a new release and agree on the chain.
    const height = await publish(net, TARGET, 3, content(3), others[0], others);
    await net.waitHeight(others, height);
    const chain = await net.waitSameChains(others);
    assert.ok(chain.length > height);
    for (const v of others) {
      const response = await fetch(`${net.apiUrl(v)}/v1/targets/${TARGET}`);
      assert.equal(response.status, 200);
      const entry = (await response.json()) as { version: number; sha256: string };
      assert.deepEqual([entry.version, entry.sha256], [3, sha256Hex(content(3))]);
    }

    // A device that asks the tampered node first fails over to the others and applies version 3.
    placeDevice(net, honest, TARGET, {
      configServer: net.configServerUrl('A'),
      validators: [net.apiUrl(victim), ...others.map((v) => net.apiUrl(v))],
    });
    const lines: string[] = [];
    const result = await runRound({ dir: net.dir, deviceId: honest.id, log: (line) => lines.push(line) });
    assert.equal(result.kind, 'applied', `${JSON.stringify(result)}\n${lines.join('\n')}`);
    assert.equal(result.version, 3);
    assert.equal(result.report.status, 'committed');
    assert.ok(
      lines.some((line) => line.includes(net.apiUrl(victim)) && line.includes('trying the next validator')),
      'the device asked the tampered node first',
    );
    assert.deepEqual(readFileSync(deviceFiles.applied(net.dir, honest.id, TARGET)), content(3));
  });
});

/**
 * Flips one hex digit of the sha256 inside the first release's stored transaction, in the raw
 * database file (not through SQL): the bytes are found in the pages that belong to the txs table.
 * The write-ahead log is folded into the file first, so the file holds every committed row.
 */
function flipByteOfFirstRelease(file: string): { height: number; was: string } {
  const db = new Database(file);
  db.pragma('wal_checkpoint(TRUNCATE)');
  const row = db
    .prepare("SELECT height, body FROM txs WHERE type = 'release' ORDER BY height, idx LIMIT 1")
    .get() as { height: number; body: string };
  const pageSize = db.pragma('page_size', { simple: true }) as number;
  const pages = (
    db.prepare("SELECT pageno FROM dbstat WHERE name = 'txs' ORDER BY pageno").all() as { pageno: number }[]
  ).map((p) => p.pageno);
  db.close();
  const sha = (JSON.parse(row.body) as { body: { sha256: string } }).body.sha256;
  const needle = Buffer.from(row.body, 'utf8');
  const shaAt = row.body.indexOf(sha);
  assert.ok(shaAt >= 0);
  const fd = openSync(file, 'r+');
  try {
    for (const pageno of pages) {
      const page = Buffer.alloc(pageSize);
      readSync(fd, page, 0, pageSize, (pageno - 1) * pageSize);
      const at = page.indexOf(needle);
      if (at < 0) continue;
      const offset = (pageno - 1) * pageSize + at + shaAt;
      const was = String.fromCharCode(page[at + shaAt] ?? 0);
      const now = was === '0' ? '1' : '0';
      writeSync(fd, Buffer.from(now, 'utf8'), 0, 1, offset);
      return { height: row.height, was };
    }
  } finally {
    closeSync(fd);
  }
  throw new Error(`the first release's transaction was not found whole in a page of ${file}`);
}

/** Polls GET /v1/targets/:target on each validator until it answers this version (bounded). */
async function waitForVersion(
  net: TestNetwork,
  validators: readonly number[],
  target: string,
  version: number,
  timeoutMs = 30_000,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (const v of validators) {
    for (;;) {
      const seen = await fetch(`${net.apiUrl(v)}/v1/targets/${encodeURIComponent(target)}`, {
        signal: AbortSignal.timeout(5000),
      })
        .then(async (r) => (r.status === 200 ? ((await r.json()) as { version: number }).version : 0))
        .catch(() => 0);
      if (seen >= version) break;
      if (Date.now() > deadline) {
        throw new Error(
          `validator ${v} shows ${target} at version ${seen}, not ${version}, after ${timeoutMs} ms`,
        );
      }
      await sleep(100);
    }
  }
}
