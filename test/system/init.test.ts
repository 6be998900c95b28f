/**
 * `configchain init`: the network directory contract (docs/operations.md), file modes, refusing
 * to overwrite, --force, and the CLI's own error for a bad validator count.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { promisify } from 'node:util';
import { initNetwork } from '../../src/cli/commands/init.ts';
import { ArtifactStore } from '../../src/configserver/store.ts';
import { sha256Hex } from '../../src/crypto/hash.ts';
import { loadPrivateKey } from '../../src/crypto/keyfile.ts';
import { parseGenesis } from '../../src/ledger/index.ts';
import { certificateCommonName, isIssuedBy } from '../../src/net/pki.ts';
import { loadNetworkFile, paths } from '../../src/node/layout.ts';
import { repoRoot } from './harness.ts';

const run = promisify(execFile);
const dirs: string[] = [];
function tempDir(): string {
  const dir = mkdtempSync(join(tmpdir(), 'configchain-init-'));
  dirs.push(dir);
  return dir;
}
after(() => {
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
});

function mode(path: string): number {
  return statSync(path).mode & 0o777;
}

describe('configchain init', () => {
  it('creates the whole network directory with owner-only private keys', async () => {
    const dir = tempDir();
    const { network, genesis } = await initNetwork({ dir, basePort: 23000, demo: true });

    assert.deepEqual(loadNetworkFile(dir), network);
    const parsed = parseGenesis(JSON.parse(readFileSync(paths.genesis(dir), 'utf8')));
    assert.deepEqual(parsed, genesis);
    assert.equal(genesis.validators.length, 4);
    assert.equal(genesis.releaseThreshold, 2);
    assert.equal(genesis.admins.length, 3);
    assert.equal(genesis.policy.allowUnauthenticatedCompat, true);
    assert.deepEqual(
      genesis.validators.map((v) => [v.apiUrl, v.peerAddress]),
      [0, 1, 2, 3].map((i) => [`http://127.0.0.1:${23001 + i}`, `127.0.0.1:${24001 + i}`]),
    );
    assert.deepEqual(
      genesis.configSources.map((s) => [s.id, s.url, s.role]),
      [
        ['A', 'http://127.0.0.1:23101', 'device-facing'],
        ['B', 'http://127.0.0.1:23102', 'validator-facing'],
      ],
    );

    const ca = readFileSync(paths.caCert(dir), 'utf8');
    assert.equal(mode(paths.caKey(dir)), 0o600);
    for (let i = 0; i < 4; i++) {
      assert.equal(mode(paths.validatorKey(dir, i)), 0o600);
      assert.equal(mode(paths.tlsKey(dir, i)), 0o600);
      assert.equal(loadPrivateKey(paths.validatorKey(dir, i)).publicKeyHex, genesis.validators[i]?.publicKey);
      const cert = readFileSync(paths.tlsCert(dir, i), 'utf8');
      assert.equal(certificateCommonName(cert), `validator-${i}`);
      assert.equal(await isIssuedBy(cert, ca), true);
      assert.ok(existsSync(paths.dataDir(dir, i)));
    }
    for (const admin of genesis.admins) {
      assert.equal(mode(paths.adminKey(dir, admin.id)), 0o600);
      assert.equal(loadPrivateKey(paths.adminKey(dir, admin.id)).publicKeyHex, admin.publicKey);
    }
    assert.deepEqual(network.devices, ['device-1']);
    assert.equal(mode(paths.deviceKey(dir, 'device-1')), 0o600);
    const device = JSON.parse(readFileSync(paths.deviceFile(dir, 'device-1'), 'utf8'));
    assert.equal(device.publicKey, loadPrivateKey(paths.deviceKey(dir, 'device-1')).publicKeyHex);

    // The demo data is on both config servers: versions 1..5 of "default" with contents "1".."5".
    for (const id of ['A', 'B'] as const) {
      const store = ArtifactStore.open(paths.artifactsDir(dir, id));
      try {
        const versions = store.versions('default');
        assert.deepEqual(
          versions.map((v) => [v.version, v.sha256, v.size]),
          [1, 2, 3, 4, 5].map((v) => [v, sha256Hex(String(v)), 1]),
        );
      } finally {
        store.close();
      }
    }
    assert.equal(sha256Hex('1'), '6b86b273ff34fce19d6b804eff5a3f5747ada4eaa22f1d49c01e52ddb7875b4b');
  });

  it('refuses to overwrite a network unless forced, and --force makes a new one', async () => {
    const dir = tempDir();
    const first = await initNetwork({ dir, basePort: 23500 });
    await assert.rejects(initNetwork({ dir, basePort: 23500 }), (error: Error) => {
      assert.match(error.message, /already holds a network/);
      assert.match(error.message, /--force/);
      return true;
    });
    // Nothing was touched by the refused attempt.
    assert.equal(loadNetworkFile(dir).chainId, first.network.chainId);
    const second = await initNetwork({ dir, basePort: 23500, force: true });
    assert.notEqual(second.network.chainId, first.network.chainId);
    assert.equal(loadNetworkFile(dir).chainId, second.network.chainId);
    assert.equal(second.genesis.policy.allowUnauthenticatedCompat, false);
  });

  it('makes 3f+1 validators and refuses other counts', async () => {
    const seven = await initNetwork({ dir: tempDir(), validators: 7, basePort: 24500 });
    assert.equal(seven.genesis.validators.length, 7);
    for (const n of [3, 5, 6]) {
      await assert.rejects(initNetwork({ dir: tempDir(), validators: n }), /3f\+1/);
    }
  });

  it('the CLI exits non-zero with a clear message when the directory holds a network', async () => {
    const dir = tempDir();
    await initNetwork({ dir, basePort: 25500 });
    const result = await run(process.execPath, ['--import', 'tsx', 'src/cli/main.ts', 'init', '--dir', dir], {
      cwd: repoRoot,
    }).then(
      () => ({ code: 0, stderr: '' }),
      (error: { code: number; stderr: string }) => error,
    );
    assert.equal(result.code, 1);
    assert.match(result.stderr, /refusing to overwrite/);
  });
});
