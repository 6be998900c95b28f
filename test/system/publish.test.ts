/**
 * `configchain publish`, `approve` and `devices enroll|revoke|list` as real processes against a
 * real 4-validator network with both config servers: releases with enough admins commit, a
 * release with too few approvals waits in a pending file until `approve` completes it, and every
 * refusal (too big for the policy, a version that is not newer, different bytes at a used version,
 * no validator reachable) exits 1 with a message that says what was wrong.
 */
import assert from 'node:assert/strict';
import { closeSync, existsSync, openSync, readFileSync, truncateSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { sha256Hex } from '../../src/crypto/hash.ts';
import { paths } from '../../src/node/layout.ts';
import { type CliRun, runCli, startNetwork, type TestNetwork } from './harness.ts';

function cli(args: readonly string[], timeoutMs = 90_000): Promise<CliRun> {
  return runCli(args, timeoutMs);
}

async function getJson(url: string): Promise<{ status: number; body: Record<string, unknown> }> {
  const res = await fetch(url, { signal: AbortSignal.timeout(10_000) });
  return { status: res.status, body: (await res.json()) as Record<string, unknown> };
}

describe('configchain publish, approve and devices on a real network', () => {
  let net: TestNetwork;
  let dir: string;
  const file = (name: string, text: string) => {
    const path = join(dir, name);
    writeFileSync(path, text);
    return path;
  };

  before(async () => {
    net = await startNetwork({ demo: true });
    dir = net.dir;
  });
  after(async () => {
    await net?.stop();
  });

  it('publishes with enough admin keys: uploads to A and B and commits the release', async () => {
    const f = file('app-v1.json', '{"interval": 10}\n');
    const run = await cli(['publish', '--dir', dir, '--target', 'app', '--file', f, '--json']);
    assert.equal(run.code, 0, run.stderr + run.stdout);
    const result = JSON.parse(run.stdout) as Record<string, unknown>;
    assert.equal(result.status, 'committed');
    assert.equal(result.version, 1, 'the first release of a target is version 1');
    assert.deepEqual(result.approvals, ['admin-1', 'admin-2']);
    assert.deepEqual(
      (result.uploads as { server: string; status: string }[]).map((u) => [u.server, u.status]),
      [
        ['A', 'created'],
        ['B', 'created'],
      ],
    );
    const sha = sha256Hex(readFileSync(f));
    const target = await getJson(`${net.apiUrl(2)}/v1/targets/app`);
    assert.equal(target.status, 200);
    assert.equal(target.body.version, 1);
    assert.equal(target.body.sha256, sha);
    assert.equal(target.body.source, 'release');
    assert.equal(target.body.mediaType, 'application/json');
    // Both config servers serve the bytes under the released version.
    for (const id of ['A', 'B'] as const) {
      const res = await fetch(`${net.configServerUrl(id)}/v1/targets/app/versions/1`);
      assert.equal(sha256Hex(Buffer.from(await res.arrayBuffer())), sha);
    }

    // Without --json it prints the steps, and the version defaults to the ledger's + 1.
    const text = await cli([
      'publish',
      '--dir',
      dir,
      '--target',
      'app',
      '--file',
      file('app-v2.json', '{"interval": 20}\n'),
    ]);
    assert.equal(text.code, 0, text.stderr + text.stdout);
    assert.match(text.stdout, /as app version 2/);
    assert.match(text.stdout, /config server A .*: uploaded/);
    assert.match(text.stdout, /committed in block \d+, tx [0-9a-f]{64}/);
  });

  it('with one admin of a threshold of 2 writes a pending file, and approve completes it', async () => {
    const f = file('app-v3.txt', 'interval=30\n');
    const run = await cli(['publish', '--dir', dir, '--target', 'app', '--file', f, '--admin', 'admin-1']);
    assert.equal(run.code, 0, run.stderr + run.stdout);
    const pending = join(dir, 'pending', 'app-3.json');
    assert.match(run.stdout, /1 of the 2 needed/);
    assert.ok(
      run.stdout.includes(`configchain approve --dir ${dir} --pending ${pending} --admin admin-2`),
      run.stdout,
    );
    assert.ok(existsSync(pending));
    // Nothing is on the ledger yet.
    assert.equal((await getJson(`${net.apiUrl(0)}/v1/targets/app`)).body.version, 2);

    // The same admin cannot approve twice.
    const again = await cli(['approve', '--dir', dir, '--pending', pending, '--admin', 'admin-1']);
    assert.equal(again.code, 1);
    assert.match(again.stderr, /admin-1 has already approved/);

    const approved = await cli(['approve', '--dir', dir, '--pending', pending, '--admin', 'admin-2']);
    assert.equal(approved.code, 0, approved.stderr + approved.stdout);
    assert.match(approved.stdout, /2 of the 2 approvals needed/);
    assert.match(approved.stdout, /committed in block \d+/);
    assert.ok(!existsSync(pending), 'the pending file is removed once the release commits');
    const target = await getJson(`${net.apiUrl(3)}/v1/targets/app`);
    assert.equal(target.body.version, 3);
    assert.equal(target.body.sha256, sha256Hex(Buffer.from('interval=30\n')));
    assert.equal(target.body.mediaType, 'text/plain');
  });

  it('refuses what it must, with a message that says what was wrong and what to do', async () => {
    // Bigger than policy.artifactBytesMax: refused before reading or uploading (a sparse file).
    const genesis = JSON.parse(readFileSync(paths.genesis(dir), 'utf8')) as {
      policy: { artifactBytesMax: number };
    };
    const huge = join(dir, 'huge.bin');
    closeSync(openSync(huge, 'w'));
    truncateSync(huge, genesis.policy.artifactBytesMax + 1);
    const tooBig = await cli(['publish', '--dir', dir, '--target', 'app', '--file', huge]);
    assert.equal(tooBig.code, 1);
    assert.match(tooBig.stderr, /more than this network's policy\.artifactBytesMax/);

    // Publishing exactly what is committed again is harmless: the same signed transaction.
    const v1 = join(dir, 'app-v1.json');
    const repeat = await cli(['publish', '--dir', dir, '--target', 'app', '--file', v1, '--version', '1']);
    assert.equal(repeat.code, 0, repeat.stderr + repeat.stdout);
    // A different release at a version that is not newer: the bytes are on the servers already
    // (same sha256), the ledger rejects it.
    const stale = await cli([
      'publish',
      '--dir',
      dir,
      '--target',
      'app',
      '--file',
      v1,
      '--version',
      '1',
      '--media-type',
      'application/x-other',
    ]);
    assert.equal(stale.code, 1);
    assert.match(stale.stdout, /already holds these bytes/);
    assert.match(stale.stderr, /validators rejected the release of app version 1 \(TX_INVALID\)/);

    // Different bytes at a version the config servers hold: versions are immutable.
    const other = file('other.json', '{"interval": 99}\n');
    const conflict = await cli([
      'publish',
      '--dir',
      dir,
      '--target',
      'app',
      '--file',
      other,
      '--version',
      '2',
    ]);
    assert.equal(conflict.code, 1);
    assert.match(conflict.stderr, /already holds different content as app version 2/);
    assert.match(conflict.stderr, /publish this file as a new version/);

    // No validator at --node.
    const down = await cli([
      'publish',
      '--dir',
      dir,
      '--target',
      'app',
      '--file',
      other,
      '--node',
      'http://127.0.0.1:9',
    ]);
    assert.equal(down.code, 1);
    assert.match(down.stderr, /no validator answered .*--node/);

    // An admin whose key is not in the directory.
    const noKey = await cli([
      'publish',
      '--dir',
      dir,
      '--target',
      'app',
      '--file',
      other,
      '--admin',
      'admin-9',
    ]);
    assert.equal(noKey.code, 1);
    assert.match(noKey.stderr, /"admin-9" is not an admin of this network/);
  });

  it('enrolls, lists and revokes devices', async () => {
    const enroll = await cli([
      'devices',
      'enroll',
      '--dir',
      dir,
      '--id',
      'sensor-7',
      '--target',
      'app',
      '--json',
    ]);
    assert.equal(enroll.code, 0, enroll.stderr + enroll.stdout);
    const enrolled = JSON.parse(enroll.stdout) as { publicKey: string; createdKey: boolean; target: string };
    assert.equal(enrolled.createdKey, true);
    const deviceJson = JSON.parse(readFileSync(paths.deviceFile(dir, 'sensor-7'), 'utf8')) as Record<
      string,
      unknown
    >;
    assert.equal(deviceJson.publicKey, enrolled.publicKey);
    assert.equal(deviceJson.target, 'app');
    assert.equal(deviceJson.configServer, net.configServerUrl('A'));

    // A device whose key is held elsewhere: only its public key is named.
    const outside = '3b6a27bcceb6a42d62a3a8d02a6f0d73653215771de243a63ac048a18b59da29';
    const byKey = await cli([
      'devices',
      'enroll',
      '--dir',
      dir,
      '--id',
      'gateway-1',
      '--public-key',
      outside,
      '--group',
      'edge',
    ]);
    assert.equal(byKey.code, 0, byKey.stderr + byKey.stdout);
    assert.ok(!existsSync(paths.deviceFile(dir, 'gateway-1')));

    const twice = await cli([
      'devices',
      'enroll',
      '--dir',
      dir,
      '--id',
      'sensor-7',
      '--target',
      'app',
      '--group',
      'b',
    ]);
    assert.equal(twice.code, 1);
    assert.match(twice.stderr, /validators rejected the enrollment of device sensor-7 \(TX_INVALID\)/);

    const revoke = await cli([
      'devices',
      'revoke',
      '--dir',
      dir,
      '--id',
      'gateway-1',
      '--reason',
      'decommissioned',
    ]);
    assert.equal(revoke.code, 0, revoke.stderr + revoke.stdout);

    const list = await cli(['devices', 'list', '--dir', dir, '--json']);
    assert.equal(list.code, 0, list.stderr + list.stdout);
    const devices = JSON.parse(list.stdout) as {
      deviceId: string;
      status: string;
      target: string;
      group: string;
    }[];
    const byId = new Map(devices.map((d) => [d.deviceId, d]));
    assert.equal(byId.get('sensor-7')?.status, 'enrolled');
    assert.equal(byId.get('sensor-7')?.target, 'app');
    assert.equal(byId.get('gateway-1')?.status, 'revoked');
    assert.equal(byId.get('gateway-1')?.group, 'edge');

    const table = await cli(['devices', 'list', '--dir', dir]);
    assert.equal(table.code, 0, table.stderr);
    assert.match(table.stdout, /^DEVICE +STATUS +TARGET/m);
    assert.match(table.stdout, /^gateway-1 +revoked +default +edge/m);
    assert.match(table.stdout, /^sensor-7 +enrolled +app +-/m);
  });
});
