import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { deviceBackoffMsMax, deviceBackoffMsMin } from '../constants.ts';
import { generateKeyPair } from '../crypto/ed25519.ts';
import { sha256Hex } from '../crypto/hash.ts';
import { savePrivateKey } from '../crypto/keyfile.ts';
import type { DeviceReportBody, Transaction } from '../ledger/types.ts';
import { paths } from '../node/layout.ts';
import {
  backoffMs,
  type DeviceState,
  deviceFiles,
  type RoundOptions,
  roundSucceeded,
  runRound,
  writeDeviceState,
} from './agent.ts';
import type { TargetProof } from './contract.ts';
import { type DeviceHttp, DeviceHttpError, defaultDeviceHttp, type SubmitAnswer } from './http.ts';
import { makeTargetProof } from './testing.ts';

const fixture = makeTargetProof({ version: 3, content: 'setting = 3\n' });
const now = fixture.proof.header.timestampMs + 1000;
const validators = ['http://v0', 'http://v1', 'http://v2'];
const dirs: string[] = [];

after(() => {
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
});

/** A network directory with the fixture's genesis and one device, as init would lay it out. */
function deviceDir(): string {
  const dir = mkdtempSync(join(tmpdir(), 'configchain-agent-'));
  dirs.push(dir);
  writeFileSync(paths.genesis(dir), JSON.stringify(fixture.network.genesis));
  const pair = generateKeyPair();
  savePrivateKey(paths.deviceKey(dir, 'd1'), pair.privateKey);
  writeFileSync(
    paths.deviceFile(dir, 'd1'),
    JSON.stringify({
      deviceId: 'd1',
      publicKey: pair.publicKeyHex,
      target: 'default',
      configServer: 'http://a',
      validators,
    }),
  );
  return dir;
}

function state(dir: string): DeviceState {
  return JSON.parse(readFileSync(deviceFiles.state(dir, 'd1'), 'utf8')) as DeviceState;
}

function unreachable(url: string): never {
  throw new DeviceHttpError('UNREACHABLE', `GET ${url} failed: connection refused`, { url });
}

/** Fake network: proofs by validator, the artifact from A, and a record of submitted reports. */
function fakeHttp(options: {
  proofs: Record<string, TargetProof | 'down'>;
  artifact?: Buffer;
  submit?: (validator: string, tx: Transaction) => SubmitAnswer;
}): { http: Partial<DeviceHttp>; reports: DeviceReportBody[] } {
  const reports: DeviceReportBody[] = [];
  const artifact = options.artifact ?? fixture.content;
  const http: Partial<DeviceHttp> = {
    fetchTargetProof: async (validator) => {
      const proof = options.proofs[validator] ?? 'down';
      if (proof === 'down') unreachable(validator);
      return JSON.parse(JSON.stringify(proof));
    },
    download: async (_url, bytesMax, sink) => {
      // Two chunks, as a stream would deliver them; the cap is the caller's.
      const data = artifact.subarray(0, Math.min(artifact.length, bytesMax));
      await sink(data.subarray(0, 4));
      await sink(data.subarray(4));
      return {
        sha256: sha256Hex(data),
        size: artifact.length > bytesMax ? bytesMax + 1 : data.length,
        exceeded: artifact.length > bytesMax,
        versionHeader: null,
      };
    },
    submitTx: async (validator, tx) => {
      // Recorded before the answer, so offers to a validator that is down count too.
      reports.push(tx.body as DeviceReportBody);
      return (options.submit ?? (() => ({ status: 'committed', txId: 'ab'.repeat(32) })))(validator, tx);
    },
  };
  return { http, reports };
}

function round(dir: string, http: Partial<DeviceHttp>, extra: Partial<RoundOptions> = {}) {
  const lines: string[] = [];
  const options: RoundOptions = {
    dir,
    deviceId: 'd1',
    nowMs: () => now,
    http,
    log: (l) => lines.push(l),
    ...extra,
  };
  return { run: () => runRound(options), lines };
}

const forged: TargetProof = {
  ...fixture.proof,
  header: { ...fixture.proof.header, timestampMs: fixture.proof.header.timestampMs + 1 },
};

describe('runRound (proof mode)', () => {
  it('fails over past a dead and a lying validator, applies the verified artifact and reports', async () => {
    const dir = deviceDir();
    const fake = fakeHttp({
      proofs: { 'http://v0': 'down', 'http://v1': forged, 'http://v2': fixture.proof },
      submit: (validator) => {
        if (validator === 'http://v0') unreachable(validator);
        return { status: 'committed', txId: 'cd'.repeat(32) };
      },
    });
    const r = round(dir, fake.http);
    const result = await r.run();
    assert.equal(result.kind, 'applied', r.lines.join('\n'));
    assert.ok(result.kind === 'applied');
    assert.equal(result.version, 3);
    assert.equal(result.report.status, 'committed');
    assert.equal(result.report.validator, 'http://v1');
    assert.ok(roundSucceeded(result));
    assert.ok(r.lines.some((l) => l.includes('http://v0 failed')));
    assert.ok(r.lines.some((l) => l.includes('refused the proof of http://v1: HEADER_HASH')));
    assert.deepEqual(readFileSync(deviceFiles.applied(dir, 'd1', 'default')), fixture.content);
    assert.equal(existsSync(`${deviceFiles.applied(dir, 'd1', 'default')}.tmp`), false);
    assert.deepEqual(state(dir), {
      lastAppliedVersion: 3,
      sha256: sha256Hex(fixture.content),
      nextSeq: 2,
      pendingReport: null,
    });
    assert.deepEqual(
      fake.reports.map((b) => [b.seq, b.status, b.version]),
      [
        [1, 'applied', 3],
        [1, 'applied', 3],
      ],
      'the same signed report, offered to v0 (down) then v1',
    );
  });

  it('refuses when every validator lies or rolls back, and applies nothing', async () => {
    const dir = deviceDir();
    await writeDeviceState(dir, 'd1', {
      lastAppliedVersion: 5,
      sha256: null,
      nextSeq: 4,
      pendingReport: null,
    });
    const fake = fakeHttp({
      proofs: { 'http://v0': forged, 'http://v1': fixture.proof, 'http://v2': 'down' },
    });
    const result = await round(dir, fake.http).run();
    assert.equal(result.kind, 'refused');
    assert.ok(result.kind === 'refused');
    assert.equal(result.code, 'ROLLBACK');
    assert.deepEqual(
      result.attempts.map((a) => a.code),
      ['HEADER_HASH', 'ROLLBACK', 'UNREACHABLE'],
    );
    assert.equal(existsSync(deviceFiles.applied(dir, 'd1', 'default')), false);
    assert.equal(fake.reports.length, 0);
    assert.equal(roundSucceeded(result), false);
  });

  it('says nothing new for the applied version and for a stale header refuses instead', async () => {
    const dir = deviceDir();
    await writeDeviceState(dir, 'd1', {
      lastAppliedVersion: 3,
      sha256: null,
      nextSeq: 2,
      pendingReport: null,
    });
    const fake = fakeHttp({ proofs: { 'http://v0': fixture.proof } });
    const current = await round(dir, fake.http).run();
    assert.deepEqual(current, {
      kind: 'nothing-new',
      target: 'default',
      version: 3,
      why: 'current',
      attempts: [],
    });
    assert.ok(roundSucceeded(current));
    const stale = await round(dir, fake.http, {
      nowMs: () => now + 10 * 60_000,
      headerAgeMsMax: 60_000,
    }).run();
    assert.equal(stale.kind === 'refused' && stale.code, 'STALE_HEADER');
  });

  it('persists the signed report and the next seq before sending, and sends an undelivered report first next round', async () => {
    const dir = deviceDir();
    let validatorsUp = false;
    const seen: DeviceState[] = [];
    const fake = fakeHttp({
      proofs: { 'http://v0': fixture.proof },
      submit: (validator) => {
        seen.push(state(dir));
        if (!validatorsUp) unreachable(validator);
        return { status: 'committed', txId: 'ef'.repeat(32) };
      },
    });
    const first = await round(dir, fake.http).run();
    assert.ok(first.kind === 'applied' && first.report.status === 'unsent');
    assert.equal(roundSucceeded(first), false);
    for (const s of seen) {
      assert.equal(s.nextSeq, 2, 'seq 1 was recorded as used before the report left');
      assert.equal((s.pendingReport?.body as DeviceReportBody | undefined)?.seq, 1);
    }
    assert.equal((state(dir).pendingReport?.body as DeviceReportBody | undefined)?.seq, 1);

    validatorsUp = true;
    fake.reports.length = 0;
    const second = await round(dir, fake.http).run();
    assert.equal(second.kind, 'nothing-new');
    assert.deepEqual(
      fake.reports.map((b) => b.seq),
      [1],
    );
    assert.equal(state(dir).pendingReport, null);
    assert.equal(state(dir).nextSeq, 2);
  });

  it('skips report numbers the ledger already accepted when state.json lost its counter', async () => {
    const dir = deviceDir();
    const ledgerLastSeq = 5;
    const fake = fakeHttp({
      proofs: { 'http://v0': fixture.proof },
      submit: (_validator, tx) => {
        const seq = (tx.body as DeviceReportBody).seq;
        if (seq <= ledgerLastSeq) {
          return {
            status: 'rejected',
            txId: '12'.repeat(32),
            code: 'TX_INVALID',
            reason: `report seq ${seq} of device d1 is not above its last accepted seq ${ledgerLastSeq}; a replay, or the device lost its counter`,
          };
        }
        return { status: 'committed', txId: '34'.repeat(32) };
      },
    });
    fake.http.fetchDevice = async () => ({ lastSeq: ledgerLastSeq });
    const result = await round(dir, fake.http).run();
    assert.ok(result.kind === 'applied');
    assert.deepEqual([result.report.status, result.report.seq], ['committed', 6]);
    assert.deepEqual(
      fake.reports.map((b) => b.seq),
      [1, 6],
    );
    assert.equal(state(dir).nextSeq, 7);
    assert.equal(state(dir).pendingReport, null);
  });

  it('reports a mismatch with the next seq when A serves other bytes, and keeps the old version', async () => {
    const dir = deviceDir();
    const evil = Buffer.from('setting = 0\n'); // the same size, another hash
    const fake = fakeHttp({ proofs: { 'http://v0': fixture.proof }, artifact: evil });
    const result = await round(dir, fake.http).run();
    assert.equal(result.kind === 'mismatch' && result.code, 'ARTIFACT_HASH');
    assert.deepEqual(
      fake.reports.map((b) => [b.seq, b.status, b.sha256]),
      [[1, 'mismatch', sha256Hex(evil)]],
    );
    assert.equal(state(dir).lastAppliedVersion, 0);
    assert.equal(existsSync(deviceFiles.applied(dir, 'd1', 'default')), false);
    const endless = fakeHttp({ proofs: { 'http://v0': fixture.proof }, artifact: Buffer.alloc(10_000, 1) });
    const big = await round(dir, endless.http).run();
    assert.equal(big.kind === 'mismatch' && big.code, 'ARTIFACT_SIZE');
    assert.equal(state(dir).nextSeq, 3);
  });

  it('counts a failing hook as failed: reported, and the version is not recorded as applied', async () => {
    const dir = deviceDir();
    const fake = fakeHttp({ proofs: { 'http://v0': fixture.proof } });
    const result = await round(dir, fake.http, { hook: 'exit 3; true' }).run();
    assert.equal(result.kind === 'failed' && result.code, 'HOOK_FAILED');
    assert.deepEqual(
      fake.reports.map((b) => b.status),
      ['failed'],
    );
    assert.equal(state(dir).lastAppliedVersion, 0);
    const ok = await round(dir, fake.http, { hook: 'test -s' }).run();
    assert.equal(ok.kind, 'applied');
  });
});

describe('download', () => {
  it('hashes what it streams and hangs up on a server that sends more than the limit', async () => {
    let closed = false;
    const server = createServer((req, res) => {
      res.writeHead(200, { 'x-configchain-version': '4' });
      if (req.url === '/small') return res.end('hello');
      const chunk = Buffer.alloc(16 * 1024, 7);
      const pump = () => {
        while (!closed && res.write(chunk)) {
          // keep writing until the socket pushes back
        }
      };
      res.on('drain', pump);
      res.on('close', () => {
        closed = true;
      });
      pump();
    });
    await new Promise<void>((done) => server.listen(0, '127.0.0.1', done));
    const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    try {
      let received = 0;
      const big = await defaultDeviceHttp.download(
        `${url}/endless`,
        100_000,
        async (chunk) => {
          received += chunk.byteLength;
        },
        10_000,
      );
      assert.equal(big.exceeded, true);
      assert.equal(received, 100_000, 'exactly the limit reaches the file');
      assert.equal(big.sha256, sha256Hex(Buffer.alloc(100_000, 7)));
      const small = await defaultDeviceHttp.download(`${url}/small`, 100, async () => undefined, 10_000);
      assert.deepEqual(small, { sha256: sha256Hex('hello'), size: 5, exceeded: false, versionHeader: 4 });
      for (let i = 0; i < 50 && !closed; i++) await new Promise((done) => setTimeout(done, 20));
      assert.ok(closed, 'the endless response was cut off');
    } finally {
      server.closeAllConnections();
      server.close();
    }
  });
});

describe('backoffMs', () => {
  it('grows exponentially from the minimum, stays under the maximum, with jitter in [half, whole]', () => {
    assert.equal(
      backoffMs(1, () => 1),
      deviceBackoffMsMin,
    );
    assert.equal(
      backoffMs(1, () => 0),
      deviceBackoffMsMin / 2,
    );
    assert.equal(
      backoffMs(3, () => 1),
      4 * deviceBackoffMsMin,
    );
    for (let failures = 1; failures < 100; failures++) {
      const high = backoffMs(failures, () => 1);
      assert.ok(high <= deviceBackoffMsMax && backoffMs(failures, () => 0) >= deviceBackoffMsMin / 2);
      assert.ok(high >= backoffMs(failures - 1, () => 1));
    }
    assert.equal(
      backoffMs(100, () => 1),
      deviceBackoffMsMax,
    );
  });
});
