/**
 * Attacks 1-6 of issue 5 on the wire: a real 4-validator network and real config servers (OS
 * processes on loopback), the real device agent (runRound, as `configchain device --once` runs
 * it) talking HTTP, and the adversaries of adversaries.ts put between them by editing the
 * device's device.json, as an attacker who owns a server or a cache would stand in the path.
 *
 * Heartbeats every 500 ms and a header age limit of 5 s keep the freeze attack to seconds. The
 * tests share one network and run in order; each uses its own enrolled device.
 */
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { after, before, describe, it } from 'node:test';
import { sha256Hex } from '../../src/crypto/hash.ts';
import { deviceFiles, type RoundResult, readDeviceState, runRound } from '../../src/device/agent.ts';
import type { TargetProof } from '../../src/device/contract.ts';
import { defaultDeviceHttp } from '../../src/device/http.ts';
import type { DeviceReportBody } from '../../src/ledger/types.ts';
import { sleep, startNetwork, type TestNetwork } from '../system/harness.ts';
import {
  allProofForgeries,
  type CompromisedConfigServer,
  type FreezingCache,
  type LyingValidator,
  type ProofForgery,
  startCompromisedConfigServer,
  startFreezingCache,
  startLyingValidator,
} from './adversaries.ts';
import {
  allTransactions,
  type DeviceRoute,
  deviceProcessOnce,
  enroll,
  honestValidators,
  newDevice,
  placeDevice,
  publish,
  type TestDevice,
} from './system.ts';

const TARGET = 'attacks-wire';
const HEADER_AGE_MS_MAX = 5000;
/** Same length for every version, so a substitute of equal size is refused by its hash. */
const content = (version: number) =>
  Buffer.from(`wire attack target, version ${String(version).padStart(3, '0')}\n`);

describe('attacks on the wire (issue 5: 1-6)', { timeout: 240_000 }, () => {
  let net: TestNetwork;
  let configA: CompromisedConfigServer;
  let liar: LyingValidator;
  let cache: FreezingCache;
  /** The latest released version of TARGET. */
  let latest = 0;
  const log: string[] = [];

  async function release(): Promise<void> {
    latest++;
    await publish(net, TARGET, latest, content(latest));
  }

  /** Enrolls a device and points it at a route. */
  async function device(
    name: string,
    route: DeviceRoute,
    target = TARGET,
    group = 'attacks',
  ): Promise<TestDevice> {
    const d = newDevice(`wire-${name}`);
    await enroll(net, d, target, 0, group);
    placeDevice(net, d, target, route);
    return d;
  }

  async function round(
    d: TestDevice,
    route?: DeviceRoute,
    target = TARGET,
    mode: 'proof' | 'simple' = 'proof',
  ): Promise<RoundResult> {
    if (route !== undefined) placeDevice(net, d, target, route);
    return runRound({ dir: net.dir, deviceId: d.id, mode, log: (line) => log.push(`${d.id}: ${line}`) });
  }

  /** A result and the agent's last log lines, for assertion messages. */
  function explain(result: RoundResult): string {
    return `${JSON.stringify(result)}\nagent log:\n${log.slice(-12).join('\n')}`;
  }

  function honestRoute(configServer = net.configServerUrl('A')): DeviceRoute {
    return { configServer, validators: honestValidators(net) };
  }

  function appliedBytes(d: TestDevice): Buffer | null {
    const file = deviceFiles.applied(net.dir, d.id, TARGET);
    return existsSync(file) ? readFileSync(file) : null;
  }

  // Devices that need state from before later releases.
  let rollbackDevice: TestDevice;
  let freezeDevice: TestDevice;

  before(async () => {
    net = await startNetwork({ demo: false, heartbeatIntervalMs: 500, headerAgeMsMax: HEADER_AGE_MS_MAX });
    configA = await startCompromisedConfigServer(net.configServerUrl('A'));
    liar = await startLyingValidator(net.apiUrl(0), null);
    cache = await startFreezingCache(net.apiUrl(1));
    await release();
    // Through the freezing cache, two devices apply version 1: the cache now holds its proof.
    const viaCache = { configServer: net.configServerUrl('A'), validators: [cache.url] };
    rollbackDevice = await device('rollback', viaCache);
    freezeDevice = await device('freeze', viaCache);
    for (const d of [rollbackDevice, freezeDevice]) {
      const result = await round(d);
      assert.equal(result.kind, 'applied', explain(result));
    }
    assert.equal(cache.frozen.size, 1);
    await release();
  });

  after(async () => {
    await Promise.all([configA?.close(), liar?.close(), cache?.close()]);
    await net?.stop();
  });

  it('attack 1: A serves other bytes: the device refuses them, reports the mismatch on the ledger, and downloads again', async () => {
    const evil = Buffer.from(content(latest).toString('utf8').replace('version', 'VERSION'));
    assert.equal(evil.byteLength, content(latest).byteLength);
    const d = await device('mismatch', honestRoute(configA.url));
    const simple = await device('mismatch-simple', honestRoute(configA.url));
    configA.lie = { kind: 'substitute', bytes: evil };
    try {
      // This round runs as the device's own process: `configchain device --once` exits 1.
      const refused = await deviceProcessOnce(net, d);
      assert.equal(refused.code, 1, refused.log);
      assert.equal(refused.result.kind, 'mismatch', refused.log);
      assert.equal(refused.result.code, 'ARTIFACT_HASH', refused.log);
      assert.match(refused.log, /mismatch/);
      // A device in the article's simple mode (no proofs) asks a validator, which checks the hash
      // against config server B and answers "invalid".
      const simpleResult = await round(simple, undefined, TARGET, 'simple');
      assert.equal(simpleResult.kind, 'mismatch', explain(simpleResult));
      assert.equal(simpleResult.code, 'INVALID');
      assert.equal(simpleResult.report?.status, 'committed');
    } finally {
      configA.lie = { kind: 'honest' };
    }
    for (const x of [d, simple]) {
      assert.equal(appliedBytes(x), null, `nothing was applied on ${x.id}`);
      assert.equal(readDeviceState(net.dir, x.id).lastAppliedVersion, 0);
    }

    // The mismatch is on every validator's ledger, signed by the device, naming the bad hash.
    for (let v = 0; v < net.n; v++) {
      const reports = (await allTransactions(net, v))
        .map((t) => t.body)
        .filter((b): b is DeviceReportBody => b.type === 'device-report' && b.deviceId === d.id);
      assert.equal(reports.length, 1, `validator ${v} holds the report`);
      assert.equal(reports[0]?.status, 'mismatch');
      assert.equal(reports[0]?.version, latest);
      assert.equal(reports[0]?.sha256, sha256Hex(evil));
    }

    // Once A serves the released bytes again, the next round applies them.
    const applied = await round(d);
    assert.equal(applied.kind, 'applied', explain(applied));
    assert.deepEqual(appliedBytes(d), content(latest));
  });

  it('attack 2: rollback: A serves an older version with its valid old proof: refused', async () => {
    const d = rollbackDevice;
    const updated = await round(d, honestRoute());
    assert.equal(updated.kind, 'applied', explain(updated));
    assert.equal(readDeviceState(net.dir, d.id).lastAppliedVersion, latest);

    // The cache still answers the genuine, quorum-certified proof of version 1, and A its bytes.
    configA.lie = { kind: 'older', target: TARGET, version: 1 };
    try {
      const result = await round(d, { configServer: configA.url, validators: [cache.url] });
      assert.equal(result.kind, 'refused', explain(result));
      assert.equal(result.code, 'ROLLBACK');
      // A serving old bytes against the current proof is refused by the hash.
      const third = await device('rollback-bytes', honestRoute(configA.url));
      const mismatch = await round(third);
      assert.equal(mismatch.kind, 'mismatch', explain(mismatch));
      assert.equal(mismatch.code, 'ARTIFACT_HASH');
    } finally {
      configA.lie = { kind: 'honest' };
    }
    assert.equal(readDeviceState(net.dir, d.id).lastAppliedVersion, latest);
    assert.deepEqual(appliedBytes(d), content(latest));
  });

  it('attack 3: freeze: a cache keeps serving an old certified header: refused once older than headerAgeMsMax', async () => {
    const d = freezeDevice;
    const frozen = JSON.parse([...cache.frozen.values()][0]?.toString('utf8') ?? 'null') as TargetProof;
    const waitMs = frozen.header.timestampMs + HEADER_AGE_MS_MAX + 200 - Date.now();
    if (waitMs > 0) await sleep(waitMs);
    const before = cache.servedStale;
    const result = await round(d, { configServer: net.configServerUrl('A'), validators: [cache.url] });
    assert.equal(result.kind, 'refused', explain(result));
    assert.equal(result.code, 'STALE_HEADER');
    assert.equal(cache.servedStale, before + 1, 'the cache answered its frozen proof');
    assert.equal(readDeviceState(net.dir, d.id).lastAppliedVersion, 1);

    // Heartbeat blocks keep the honest validators' headers fresh on an idle chain.
    const fresh = await round(d, {
      configServer: net.configServerUrl('A'),
      validators: [cache.url, ...honestValidators(net, [1])],
    });
    assert.equal(fresh.kind, 'applied', explain(fresh));
    assert.equal(fresh.version, latest);
  });

  it('attack 4: mix-and-match: a valid proof for another group is refused, and the device fails over', async () => {
    // A device of group "cameras" fetches the genuine proof of its own rollout target.
    const cameraTarget = 'group:cameras';
    await publish(net, cameraTarget, 1, Buffer.from('camera configuration\n'));
    const camera = await device('camera', honestRoute(), cameraTarget, 'cameras');
    const identity = {
      chainId: net.init.genesis.chainId,
      deviceId: camera.id,
      key: camera.key,
      nowMs: () => Date.now(),
    };
    const cameraProof = await defaultDeviceHttp.fetchTargetProof(net.apiUrl(2), cameraTarget, identity);

    // The lying validator answers it to a device of another group.
    liar.forgery = () => cameraProof;
    try {
      const d = await device('mix', { configServer: net.configServerUrl('A'), validators: [liar.url] });
      const result = await round(d);
      assert.equal(result.kind, 'refused', explain(result));
      assert.equal(result.code, 'WRONG_TARGET');
      const failover = await round(d, {
        configServer: net.configServerUrl('A'),
        validators: [liar.url, ...honestValidators(net, [0])],
      });
      assert.equal(failover.kind, 'applied', explain(failover));
      assert.deepEqual(appliedBytes(d), content(latest));
    } finally {
      liar.forgery = null;
    }
  });

  it('attack 5: a lying validator forges headers, certificates and state proofs: each refused, and the device fails over', async () => {
    const expected: Record<ProofForgery, string> = {
      'header-state-root': 'HEADER_HASH',
      'header-timestamp': 'HEADER_HASH',
      'entry-version': 'STATE_PROOF',
      'too-few-signers': 'CERT_QUORUM',
      'unknown-key': 'CERT_SIGNATURE',
      'unknown-signer': 'CERT_UNKNOWN_SIGNER',
      'duplicate-signer': 'CERT_QUORUM',
      'state-proof': 'STATE_PROOF',
      'consistent-forged-entry': 'CERT_SIGNATURE',
    };
    const onlyLiar = { configServer: net.configServerUrl('A'), validators: [liar.url] };
    const liarFirst = {
      configServer: net.configServerUrl('A'),
      validators: [liar.url, ...honestValidators(net, [0])],
    };
    const d = await device('lied-to', onlyLiar);
    try {
      for (const forgery of allProofForgeries) {
        liar.forgery = forgery;
        const refused = await round(d, onlyLiar);
        assert.equal(refused.kind, 'refused', `${forgery}: ${explain(refused)}`);
        assert.equal(refused.code, expected[forgery], forgery);
        assert.equal(readDeviceState(net.dir, d.id).lastAppliedVersion, 0, `${forgery} changed nothing`);
      }
      // With honest validators after the liar, the device gets past every forgery.
      for (const [i, forgery] of allProofForgeries.entries()) {
        liar.forgery = forgery;
        const forgedBefore = liar.forged;
        const result = await round(d, liarFirst);
        assert.equal(liar.forged, forgedBefore + 1, `${forgery}: the liar was asked first`);
        assert.equal(result.kind, i === 0 ? 'applied' : 'nothing-new', `${forgery}: ${explain(result)}`);
        assert.equal(readDeviceState(net.dir, d.id).lastAppliedVersion, latest);
      }
    } finally {
      liar.forgery = null;
    }
    assert.deepEqual(appliedBytes(d), content(latest));
  });

  it('attack 6: endless data: A streams past the release size: the download is aborted at the limit', async () => {
    const capBytes = 512 * 1024 * 1024;
    configA.lie = { kind: 'endless', capBytes };
    const d = await device('endless', honestRoute(configA.url));
    const started = Date.now();
    let result: RoundResult;
    try {
      result = await round(d);
    } finally {
      configA.lie = { kind: 'honest' };
    }
    assert.equal(result.kind, 'mismatch', explain(result));
    assert.equal(result.code, 'ARTIFACT_SIZE');
    const stream = await configA.endless[0];
    assert.ok(stream !== undefined);
    console.log(
      `endless data: the release is ${content(latest).byteLength} bytes; the adversary got ${stream.bytesSent} bytes into the socket before the device hung up, after ${Date.now() - started} ms`,
    );
    assert.equal(stream.closedByClient, true, 'the device closed the connection, not the cap');
    // What the adversary wrote is bounded by the release size plus what loopback socket buffers
    // absorb before backpressure, far below the cap.
    assert.ok(stream.bytesSent < 64 * 1024 * 1024, `the adversary sent ${stream.bytesSent} bytes`);
    assert.equal(appliedBytes(d), null);
    assert.equal(
      existsSync(`${deviceFiles.applied(net.dir, d.id, TARGET)}.tmp`),
      false,
      'no partial file is left',
    );
    assert.equal(result.report?.status, 'committed', 'the mismatch is reported');
  });
});
