/**
 * Issue 6 acceptance for the operator commands: on a real network of 4 validator processes, each
 * command (status, history, show, diff, audit, devices list, export, verify-chain) runs as a real
 * `configchain` process; its text output is checked, and its --json output is checked against
 * the schema the command exports (src/ops/schemas.ts). A lying node (an HTTP proxy in front of
 * validator 0 that alters one block) makes `history` fail loudly and name that block, and
 * `devices list` refuse to print a registry read from it.
 */
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { TSchema } from 'typebox';
import Value from 'typebox/value';
import { generateKeyPair } from '../../src/crypto/ed25519.ts';
import { sha256Hex } from '../../src/crypto/hash.ts';
import { loadPrivateKey } from '../../src/crypto/keyfile.ts';
import type { DeviceId, Hash32Hex, TargetName } from '../../src/encoding/brand.ts';
import { signAsAdmin, signAsDevice, signRelease } from '../../src/ledger/index.ts';
import type { Transaction } from '../../src/ledger/types.ts';
import { paths } from '../../src/node/layout.ts';
import {
  AuditOutputSchema,
  DevicesOutputSchema,
  DiffOutputSchema,
  ErrorOutputSchema,
  ExportOutputSchema,
  HistoryOutputSchema,
  ShowOutputSchema,
  StatusOutputSchema,
  VerifyChainOutputSchema,
} from '../../src/ops/schemas.ts';
import { runCli, sha256OfText, startNetwork, type TestNetwork } from './harness.ts';

interface Run {
  readonly status: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

/** Runs `configchain ...args` as a real process (asynchronously, so several can run at once). */
async function cli(args: readonly string[], timeoutMs = 60_000): Promise<Run> {
  const run = await runCli(args, timeoutMs);
  return { status: run.code, stdout: run.stdout, stderr: run.stderr };
}

/** Parses --json output and checks it against the command's schema, naming every mismatch. */
function checked<T>(schema: TSchema, run: Run): T {
  let value: unknown;
  try {
    value = JSON.parse(run.stdout);
  } catch {
    assert.fail(`not JSON (exit ${run.status}):\n${run.stdout}\n${run.stderr}`);
  }
  const errors = [...Value.Errors(schema, value)].map((e) => `${e.instancePath} ${e.message}`);
  assert.deepEqual(errors, [], `the --json output does not match its schema:\n${run.stdout}`);
  return value as T;
}

const v3Text = [
  '# camera settings',
  'fps = 25',
  'resolution = 1080p',
  'exposure = auto',
  'night_mode = off',
  'upload = https://a.example',
  '',
].join('\n');
const v4Text = [
  '# camera settings',
  'fps = 30',
  'resolution = 1080p',
  'exposure = auto',
  'night_mode = on',
  'upload = https://a.example',
  '',
].join('\n');
const v5Bytes = Buffer.from([0x7f, 0x45, 0x4c, 0x46, 0x00, 0x01, 0x02, 0x00, 0xff]);

describe('operator commands on 4 validator processes', { timeout: 300_000 }, () => {
  let net: TestNetwork;
  let dir: string;
  let releaseHeight = 0;
  const heights: number[] = [];

  /** A release of `default` signed by the two admins the threshold needs, with its content inline. */
  function release(version: number, bytes: Buffer, mediaType: string, target = 'default'): Transaction {
    const admins = ['admin-1', 'admin-2'].map((id) => ({
      id,
      privateKey: loadPrivateKey(paths.adminKey(dir, id)).privateKey,
    }));
    return signRelease(
      {
        type: 'release',
        chainId: net.init.genesis.chainId,
        target: target as TargetName,
        version,
        sha256: sha256Hex(bytes) as Hash32Hex,
        size: bytes.byteLength,
        mediaType,
        content: bytes.toString('base64'),
      },
      admins,
    );
  }

  async function submit(tx: Transaction): Promise<number> {
    const response = await fetch(`${net.apiUrl(1)}/v1/tx`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ tx, waitMs: 20_000 }),
    });
    const body = (await response.json()) as { status: string; height?: number; reason?: string };
    assert.equal(body.status, 'committed', JSON.stringify(body));
    return body.height ?? -1;
  }

  before(async () => {
    net = await startNetwork();
    dir = net.dir;
    // Two attests by the article's flow, then releases, a device and its report.
    assert.equal((await net.validateHash(0, sha256OfText('1'))).status, 200);
    assert.equal((await net.validateHash(0, sha256OfText('2'))).status, 200);
    releaseHeight = await submit(release(3, Buffer.from(v3Text), 'text/plain'));
    heights.push(releaseHeight);
    const deviceKey = loadPrivateKey(paths.deviceKey(dir, 'device-1'));
    const admin = loadPrivateKey(paths.adminKey(dir, 'admin-1')).privateKey;
    const chainId = net.init.genesis.chainId;
    heights.push(
      await submit(
        signAsAdmin(
          {
            type: 'device-enroll',
            chainId,
            deviceId: 'device-1' as DeviceId,
            publicKey: deviceKey.publicKeyHex,
            group: 'cameras',
            target: 'default' as TargetName,
          },
          'admin-1',
          admin,
        ),
      ),
    );
    heights.push(
      await submit(
        signAsDevice(
          {
            type: 'device-report',
            chainId,
            deviceId: 'device-1' as DeviceId,
            seq: 1,
            target: 'default' as TargetName,
            version: 3,
            sha256: sha256Hex(Buffer.from(v3Text)) as Hash32Hex,
            status: 'applied',
            detail: 'applied by the system test',
          },
          deviceKey.privateKey,
        ),
      ),
    );
    heights.push(await submit(release(4, Buffer.from(v4Text), 'text/plain')));
    heights.push(await submit(release(5, v5Bytes, 'application/octet-stream')));
    await net.waitSameChains([0, 1, 2, 3]);
  });
  after(async () => {
    await net?.stop();
  });

  it('status, history and audit print the verified chain, as text and as schema-checked JSON', async () => {
    const node = ['--dir', dir, '--node', net.apiUrl(2)];
    const [statusJson, statusText, historyJson, historyText, auditJson] = await Promise.all([
      cli(['status', '--dir', dir, '--json']),
      cli(['status', '--dir', dir]),
      cli(['history', ...node, '--target', 'default', '--json']),
      cli(['history', ...node, '--target', 'default']),
      cli(['audit', ...node, '--since', '2000-01-01', '--json']),
    ]);
    // Read after the plain audit, not beside it: the heartbeat check below relies on the chain
    // having only grown between the two reads, which running them at once did not guarantee.
    const auditAll = await cli(['audit', ...node, '--since', '2000-01-01', '--json', '--heartbeats']);

    assert.equal(statusJson.status, 0, statusJson.stderr);
    const status = checked<{
      node: string;
      verified: { height: number };
      network: { up: number; validators: number; primary: number };
      validators: { up: boolean; agreesWithVerifiedChain: boolean | null }[];
      fleet: {
        enrolled: number;
        targets: { target: string; version: number; devices: number; runningCurrent: number }[];
      };
    }>(StatusOutputSchema, statusJson);
    assert.equal(status.node, net.apiUrl(0), 'without --node the first reachable validator is read');
    assert.equal(status.network.validators, 4);
    assert.equal(status.network.up, 4);
    assert.ok(status.verified.height >= (heights.at(-1) ?? 0));
    assert.ok(status.validators.every((v) => v.up && v.agreesWithVerifiedChain !== false));
    assert.equal(status.fleet.enrolled, 1);
    const target = status.fleet.targets.find((t) => t.target === 'default');
    // device-1 reported v3, but v5 is current now: it follows the target without running its current release.
    assert.deepEqual(
      [target?.version, target?.devices, target?.runningCurrent],
      [5, 1, 0],
      JSON.stringify(status.fleet),
    );
    assert.equal(statusText.status, 0, statusText.stderr);
    assert.match(statusText.stdout, /Network: 4 validators \(tolerates 1 faulty\), 4 up/);
    assert.match(statusText.stdout, /device-1 +default +cameras +enrolled +applied v3/);

    assert.equal(historyJson.status, 0, historyJson.stderr);
    const history = checked<{
      node: string;
      entries: {
        version: number;
        type: string;
        height: number;
        current: boolean;
        signers: { kind: string; id: string }[];
        appliedBy: { ids: string[] };
      }[];
    }>(HistoryOutputSchema, historyJson);
    assert.equal(history.node, net.apiUrl(2));
    assert.deepEqual(
      history.entries.map((e) => [e.version, e.type, e.current]),
      [
        [1, 'attest', false],
        [2, 'attest', false],
        [3, 'release', false],
        [4, 'release', false],
        [5, 'release', true],
      ],
    );
    const v3 = history.entries[2];
    assert.equal(v3?.height, releaseHeight);
    assert.deepEqual(v3?.signers, [
      { kind: 'admin', id: 'admin-1' },
      { kind: 'admin', id: 'admin-2' },
    ]);
    assert.deepEqual(v3?.appliedBy.ids, ['device-1']);
    // An attest is unsigned: the validators of its block's commit certificate (a quorum) vouch for it.
    const attestSigners = history.entries[0]?.signers ?? [];
    assert.ok(attestSigners.length >= 3, JSON.stringify(attestSigners));
    assert.ok(attestSigners.every((s) => s.kind === 'validator' && ['0', '1', '2', '3'].includes(s.id)));
    assert.equal(new Set(attestSigners.map((s) => s.id)).size, attestSigners.length);
    assert.match(
      historyText.stdout,
      /v3 {2}release {2}block \d+ .*\n {4}sha256 [0-9a-f]{64}, \d+ bytes, text\/plain\n {4}signed by admins admin-1, admin-2/,
    );
    assert.match(historyText.stdout, /applied by: device-1 \(1 device\)/);
    assert.match(historyText.stdout, /v5 .*\(current\)/);

    assert.equal(auditJson.status, 0, auditJson.stderr);
    const audit = checked<{
      entries: { type: string; height: number; subject: string; signers: { kind: string }[] }[];
    }>(AuditOutputSchema, auditJson);
    const types = audit.entries.map((e) => e.type);
    assert.deepEqual(types, [
      'attest',
      'attest',
      'release',
      'device-enroll',
      'device-report',
      'release',
      'release',
    ]);
    // Heartbeats are counted, and listed with --heartbeats (the chain only grows between the two reads).
    const skipped = (JSON.parse(auditJson.stdout) as { heartbeatsSkipped: number }).heartbeatsSkipped;
    const all = checked<{ entries: { type: string; subject: string }[]; heartbeatsSkipped: number }>(
      AuditOutputSchema,
      auditAll,
    );
    assert.equal(all.heartbeatsSkipped, 0);
    const beats = all.entries.filter((e) => e.type === 'heartbeat');
    assert.ok(beats.length >= skipped, `${beats.length} heartbeats listed, ${skipped} counted before`);
    assert.ok(beats.every((e) => /^validator \d$/.test(e.subject)));
    const report = audit.entries.find((e) => e.type === 'device-report');
    assert.deepEqual([report?.subject, report?.signers[0]?.kind], ['device device-1', 'device']);
    const heightsInOrder = audit.entries.map((e) => e.height);
    assert.deepEqual(
      heightsInOrder,
      [...heightsInOrder].sort((a, b) => a - b),
      'in chain order',
    );
    // Nothing happened after a date in the future.
    const none = await cli(['audit', ...node, '--since', '2999-01-01', '--json']);
    assert.equal(none.status, 0);
    assert.equal(checked<{ entries: unknown[] }>(AuditOutputSchema, none).entries.length, 0);
  });

  it("show and diff read validators' copies checked against the chain; binary gets a clear message", async () => {
    const node = ['--dir', dir, '--node', net.apiUrl(3)];
    const [showRaw, showJson, diffText, diffJson, binary, missing, attested] = await Promise.all([
      cli(['show', ...node, '--target', 'default', '--version', '3']),
      cli(['show', ...node, '--target', 'default', '--version', '4', '--json']),
      cli(['diff', ...node, '--target', 'default', '--from', '3', '--to', '4']),
      cli(['diff', ...node, '--target', 'default', '--from', '3', '--to', '4', '--json']),
      cli(['diff', ...node, '--target', 'default', '--from', '4', '--to', '5']),
      cli(['show', ...node, '--target', 'default', '--version', '9', '--json']),
      cli(['show', ...node, '--target', 'default', '--version', '1', '--json']),
    ]);
    assert.equal(showRaw.status, 0, showRaw.stderr);
    assert.equal(showRaw.stdout, v3Text, 'the exact content, as released');
    assert.match(showRaw.stderr, /sha256 [0-9a-f]{64} matches its release at block \d+/);

    assert.equal(showJson.status, 0, showJson.stderr);
    const shown = checked<{ content: string; encoding: string; from: string; sha256: string }>(
      ShowOutputSchema,
      showJson,
    );
    assert.deepEqual([shown.content, shown.encoding], [v4Text, 'utf8']);
    assert.equal(shown.from, net.apiUrl(3), "the validator's own copy was read");
    assert.equal(shown.sha256, sha256Hex(Buffer.from(v4Text)));

    assert.equal(diffText.status, 0, diffText.stderr);
    const expected = [
      /^--- default@v3 \(sha256 [0-9a-f]{64}\)$/m,
      /^\+\+\+ default@v4 \(sha256 [0-9a-f]{64}\)$/m,
      /^@@ -1,6 \+1,6 @@$/m,
      /^-fps = 25\n\+fps = 30\n resolution = 1080p\n exposure = auto\n-night_mode = off\n\+night_mode = on\n upload = https:\/\/a.example$/m,
    ];
    for (const pattern of expected) assert.match(diffText.stdout, pattern);
    const diff = checked<{ identical: boolean; binary: string | null; hunks: unknown[]; text: string }>(
      DiffOutputSchema,
      diffJson,
    );
    assert.deepEqual([diff.identical, diff.binary, diff.hunks.length], [false, null, 1]);
    assert.equal(diff.text, diffText.stdout);

    assert.equal(binary.status, 0, binary.stderr);
    assert.match(binary.stdout, /No line diff of default v4 and v5: v5 is binary \(it contains NUL bytes\)/);
    assert.match(binary.stdout, /v5: sha256 [0-9a-f]{64}, 9 bytes/);

    // Validators copy released content only; an attested version is read from a config server by its hash.
    assert.equal(attested.status, 0, attested.stderr);
    const one = checked<{ content: string; from: string; type: string }>(ShowOutputSchema, attested);
    assert.deepEqual([one.content, one.type], ['1', 'attest']);
    assert.match(one.from, /^config server [AB] \(http:/);

    assert.equal(missing.status, 2);
    const error = checked<{ error: { code: string; message: string } }>(ErrorOutputSchema, missing);
    assert.equal(error.error.code, 'NOT_FOUND');
    assert.match(missing.stderr, /target default has no version 9 .* versions run from 1 to 5/);
  });

  it('export writes a file that verify-chain accepts offline, and refuses once a byte changes', async () => {
    const file = join(dir, 'export.jsonl');
    const exported = await cli(['export', '--dir', dir, '--out', file, '--json']);
    assert.equal(exported.status, 0, exported.stderr);
    const summary = checked<{ tipHeight: number; transactions: number }>(ExportOutputSchema, exported);
    assert.ok(summary.tipHeight >= (heights.at(-1) ?? 0));
    const verified = await cli(['verify-chain', file, '--genesis', paths.genesis(dir), '--json']);
    assert.equal(verified.status, 0, verified.stderr);
    const result = checked<{ ok: boolean; tipHeight: number }>(VerifyChainOutputSchema, verified);
    assert.deepEqual([result.ok, result.tipHeight], [true, summary.tipHeight]);

    // The release of v3 is on line releaseHeight + 3; change one hex digit of its sha256.
    const lines = readFileSync(file, 'utf8').split('\n');
    const line = lines[releaseHeight + 2] ?? '';
    const at = line.indexOf('"sha256":"') + 10;
    lines[releaseHeight + 2] = line.slice(0, at) + (line[at] === 'a' ? 'b' : 'a') + line.slice(at + 1);
    writeFileSync(file, lines.join('\n'));
    const bad = await cli(['verify-chain', file]);
    assert.equal(bad.status, 1);
    assert.match(bad.stdout, new RegExp(`FAILED at block ${releaseHeight} \\(line ${releaseHeight + 3}\\)`));
  });

  describe('a lying node', () => {
    let proxy: Server;
    let proxyUrl: string;
    before(async () => {
      // Forwards to validator 0, but rewrites the sha256 of the v3 release wherever a block page carries it.
      const upstream = net.apiUrl(0);
      proxy = createServer((req, res) => {
        void (async () => {
          const answer = await fetch(upstream + (req.url ?? '/'));
          let text = await answer.text();
          if ((req.url ?? '').startsWith('/v1/blocks')) {
            const page = JSON.parse(text) as {
              blocks: { block: { txs: { body: { version?: number; sha256?: string; type: string } }[] } }[];
            };
            for (const record of page.blocks) {
              for (const tx of record.block.txs) {
                if (tx.body.type === 'release' && tx.body.version === 3)
                  tx.body.sha256 = sha256OfText('evil config');
              }
            }
            text = JSON.stringify(page);
          }
          res.writeHead(answer.status, {
            'content-type': answer.headers.get('content-type') ?? 'application/json',
          });
          res.end(text);
        })().catch((error: Error) => {
          res.writeHead(502);
          res.end(error.message);
        });
      });
      await new Promise<void>((done) => proxy.listen(0, '127.0.0.1', done));
      proxyUrl = `http://127.0.0.1:${(proxy.address() as AddressInfo).port}`;
    });
    after(async () => {
      await new Promise((done) => proxy.close(done));
    });

    it('makes history fail loudly, naming the altered block, and print nothing it claims', async () => {
      const [text, json] = await Promise.all([
        cli(['history', '--dir', dir, '--node', proxyUrl, '--target', 'default']),
        cli(['history', '--dir', dir, '--node', proxyUrl, '--target', 'default', '--json']),
      ]);
      assert.equal(text.status, 1, text.stdout + text.stderr);
      assert.equal(text.stdout, '', 'no history is printed from a chain that does not verify');
      assert.match(
        text.stderr,
        new RegExp(`VERIFICATION FAILED: block ${releaseHeight} does not verify: .*`),
      );
      assert.match(text.stderr, /txRoot|transactions hash/);
      assert.equal(json.status, 1);
      const error = checked<{ error: { code: string; height: number } }>(ErrorOutputSchema, json);
      assert.deepEqual([error.error.code, error.error.height], ['CHAIN_INVALID', releaseHeight]);
    });
    it('makes devices list fail loudly instead of printing a registry it cannot verify', async () => {
      const run = await cli(['devices', 'list', '--dir', dir, '--node', proxyUrl, '--json']);
      assert.equal(run.status, 1, run.stdout + run.stderr);
      assert.match(run.stderr, /VERIFICATION FAILED/);
      const error = checked<{ error: { code: string; height: number } }>(ErrorOutputSchema, run);
      assert.deepEqual([error.error.code, error.error.height], ['CHAIN_INVALID', releaseHeight]);
    });
  });

  it('devices list reads the registry from the verified chain; status --json lists rollouts under way', async () => {
    const [listJson, listText, statusBefore] = await Promise.all([
      cli(['devices', 'list', '--dir', dir, '--json']),
      cli(['devices', 'list', '--dir', dir]),
      cli(['status', '--dir', dir, '--json']),
    ]);
    assert.equal(listJson.status, 0, listJson.stderr);
    const devices = checked<
      {
        deviceId: string;
        status: string;
        group: string;
        target: string;
        lastSeq: number;
        lastReport: { version: number; status: string } | null;
      }[]
    >(DevicesOutputSchema, listJson);
    assert.deepEqual(
      devices.map((d) => [d.deviceId, d.status, d.group, d.target, d.lastSeq, d.lastReport?.version]),
      [['device-1', 'enrolled', 'cameras', 'default', 1, 3]],
    );
    assert.equal(listText.status, 0, listText.stderr);
    assert.match(listText.stdout, /^DEVICE +STATUS +TARGET +GROUP/m);
    assert.match(listText.stdout, /^device-1 +enrolled +default +cameras +\d+ +v3 applied/m);
    assert.equal(statusBefore.status, 0, statusBefore.stderr);
    assert.deepEqual(checked<{ rollouts: unknown[] }>(StatusOutputSchema, statusBefore).rollouts, []);

    // A staged rollout of a group target with one enrolled device that has not reported: it runs.
    await submit(release(1, Buffer.from('fps = 15\n'), 'text/plain', 'group:cameras'));
    await submit(
      signAsAdmin(
        {
          type: 'device-enroll',
          chainId: net.init.genesis.chainId,
          deviceId: 'device-2' as DeviceId,
          publicKey: generateKeyPair().publicKeyHex,
          group: 'cameras',
          target: 'group:cameras' as TargetName,
        },
        'admin-1',
        loadPrivateKey(paths.adminKey(dir, 'admin-1')).privateKey,
      ),
    );
    const recorded = await cli([
      'rollout',
      '--dir',
      dir,
      '--target',
      'group:cameras',
      '--version',
      '1',
      '--waves',
      '100',
      '--max-failures',
      '50%',
      '--id',
      'cams-1',
      '--json',
    ]);
    assert.equal(recorded.status, 0, recorded.stderr + recorded.stdout);
    const statusAfter = await cli(['status', '--dir', dir, '--json', '--node', net.apiUrl(1)]);
    assert.equal(statusAfter.status, 0, statusAfter.stderr);
    const status = checked<{
      rollouts: { rolloutId: string; target: string; version: number; status: string; waves: unknown[] }[];
    }>(StatusOutputSchema, statusAfter);
    assert.deepEqual(
      status.rollouts.map((r) => [r.rolloutId, r.target, r.version, r.status, r.waves.length]),
      [['cams-1', 'group:cameras', 1, 'running', 1]],
    );
  });

  it('status shows a stopped validator as down, and the rest keep answering', async () => {
    await net.kill9(3);
    const run = await cli(['status', '--dir', dir, '--json']);
    assert.equal(run.status, 0, run.stderr);
    const status = checked<{
      network: { up: number };
      validators: { id: number; up: boolean; error: string | null }[];
    }>(StatusOutputSchema, run);
    assert.equal(status.network.up, 3);
    assert.deepEqual(
      status.validators.map((v) => v.up),
      [true, true, true, false],
    );
    assert.ok((status.validators[3]?.error ?? '').length > 0);
  });
});
