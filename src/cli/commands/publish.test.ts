/**
 * The operator commands' own checks, in-process on a network directory made by initNetwork with no
 * process running: admin keys, the policy size limit, unreachable validators and config servers,
 * and pending files. What needs a running network is in test/system/publish.test.ts.
 */
import assert from 'node:assert/strict';
import {
  chmodSync,
  closeSync,
  copyFileSync,
  mkdirSync,
  mkdtempSync,
  openSync,
  readFileSync,
  rmSync,
  truncateSync,
  writeFileSync,
} from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { DeviceId, Hash32Hex, Height, PublicKeyHex, TargetName } from '../../encoding/brand.ts';
import { type DeviceEntry, type ReleaseBody, signRelease } from '../../ledger/index.ts';
import { paths } from '../../node/layout.ts';
import { approve } from './approve.ts';
import { deviceTable } from './devices.ts';
import { type InitResult, initNetwork } from './init.ts';
import {
  adminKeyIds,
  loadAdminKey,
  OperatorError,
  parseAdminList,
  publish,
  writePending,
} from './publish.ts';

/** A loopback port nothing listens on (bound, then closed). */
function closedPort(): Promise<number> {
  return new Promise((done) => {
    const server = createServer();
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number };
      server.close(() => done(port));
    });
  });
}

function rejectsWith(code: string, pattern: RegExp) {
  return (err: unknown) => {
    assert.ok(err instanceof OperatorError, `expected an OperatorError, got ${String(err)}`);
    assert.equal(err.code, code, err.message);
    assert.match(err.message, pattern);
    return true;
  };
}

const quiet = () => {};

describe('operator commands without a running network', () => {
  let dir: string;
  let init: InitResult;
  let release: ReleaseBody;

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'cc-publish-'));
    // Port 1 is never bound by a test network here: nothing listens on any of its ports.
    init = await initNetwork({ dir, basePort: 1, demo: true });
    release = {
      type: 'release',
      chainId: init.genesis.chainId,
      target: 'app' as TargetName,
      version: 1,
      sha256: 'ab'.repeat(32) as Hash32Hex,
      size: 3,
      mediaType: 'text/plain',
    };
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('parses --admin lists and refuses empty lists and repeats', () => {
    assert.deepEqual(parseAdminList(' admin-1, admin-2 '), ['admin-1', 'admin-2']);
    assert.equal(parseAdminList(undefined), undefined);
    assert.throws(() => parseAdminList(','), rejectsWith('ADMIN_UNKNOWN', /names no admin/));
    assert.throws(() => parseAdminList('admin-1,admin-1'), rejectsWith('ADMIN_REPEATED', /twice/));
  });

  it('finds the admin keys of genesis in DIR/admins and checks each is the key genesis names', () => {
    writeFileSync(join(paths.adminsDir(dir), 'stranger.key'), 'not a key');
    assert.deepEqual(adminKeyIds(dir, init.genesis), ['admin-1', 'admin-2', 'admin-3']);
    assert.equal(loadAdminKey(dir, init.genesis, 'admin-2').id, 'admin-2');
    assert.throws(
      () => loadAdminKey(dir, init.genesis, 'stranger'),
      rejectsWith('ADMIN_UNKNOWN', /not an admin/),
    );

    const other = mkdtempSync(join(tmpdir(), 'cc-publish-keys-'));
    try {
      assert.throws(
        () => loadAdminKey(other, init.genesis, 'admin-1'),
        rejectsWith('ADMIN_KEY_MISSING', /admins\/admin-1\.key/),
      );
      // admin-2's key file under admin-1's name: not the key genesis names for admin-1.
      const wrong = paths.adminKey(other, 'admin-1');
      mkdirSync(paths.adminsDir(other));
      copyFileSync(paths.adminKey(dir, 'admin-2'), wrong);
      chmodSync(wrong, 0o600);
      assert.throws(
        () => loadAdminKey(other, init.genesis, 'admin-1'),
        rejectsWith('ADMIN_KEY_MISMATCH', /not the key genesis names/),
      );
      chmodSync(wrong, 0o644);
      assert.throws(
        () => loadAdminKey(other, init.genesis, 'admin-1'),
        rejectsWith('ADMIN_KEY_INVALID', /chmod 600/),
      );
    } finally {
      rmSync(other, { recursive: true, force: true });
    }
  });

  it('refuses a file bigger than policy.artifactBytesMax before reading or uploading it', async () => {
    const huge = join(dir, 'huge.bin');
    closeSync(openSync(huge, 'w'));
    truncateSync(huge, init.genesis.policy.artifactBytesMax + 1);
    await assert.rejects(
      publish({ dir, target: 'app', file: huge, print: quiet }),
      rejectsWith('FILE_TOO_LARGE', /policy\.artifactBytesMax/),
    );
    await assert.rejects(
      publish({ dir, target: 'app', file: join(dir, 'missing.txt'), print: quiet }),
      rejectsWith('FILE_UNREADABLE', /cannot read --file/),
    );
    await assert.rejects(
      publish({ dir, target: 'no spaces', file: huge, print: quiet }),
      rejectsWith('TARGET_INVALID', /--target/),
    );
  });

  it('says to start the network or pass --node when no validator or config server answers', async () => {
    const file = join(dir, 'app.txt');
    writeFileSync(file, 'abc');
    const port = await closedPort();
    await assert.rejects(
      publish({ dir, target: 'app', file, node: `http://127.0.0.1:${port}`, print: quiet }),
      rejectsWith(
        'NODE_UNREACHABLE',
        /no validator answered while reading target app .*ECONNREFUSED.*--node/,
      ),
    );
    await assert.rejects(
      publish({ dir, target: 'app', file, print: quiet }),
      rejectsWith('NODE_UNREACHABLE', /start the network/),
    );
    // With --version no validator is asked first: the upload to config server A fails.
    await assert.rejects(
      publish({ dir, target: 'app', file, version: 1, print: quiet }),
      rejectsWith(
        'CONFIG_SERVER_UNREACHABLE',
        /config server A at http:\/\/127\.0\.0\.1:102 does not answer/,
      ),
    );
  });

  it('approve refuses a missing, foreign or already approved pending file, and keeps a new approval when the submit fails', async () => {
    const pending = join(dir, 'pending', 'app-1.json');
    await assert.rejects(
      approve({ dir, pending, admin: 'admin-2', print: quiet }),
      rejectsWith('PENDING_MISSING', /no pending release/),
    );

    writePending(
      pending,
      signRelease({ ...release, chainId: 'another-chain' }, [loadAdminKey(dir, init.genesis, 'admin-1')]),
    );
    await assert.rejects(
      approve({ dir, pending, admin: 'admin-2', print: quiet }),
      rejectsWith('PENDING_WRONG_NETWORK', /chain another-chain/),
    );

    writeFileSync(pending, '{"tx": {}}');
    await assert.rejects(
      approve({ dir, pending, admin: 'admin-2', print: quiet }),
      rejectsWith('PENDING_INVALID', /not a pending release/),
    );

    writePending(pending, signRelease(release, [loadAdminKey(dir, init.genesis, 'admin-1')]));
    await assert.rejects(
      approve({ dir, pending, admin: 'admin-1', print: quiet }),
      rejectsWith('ALREADY_APPROVED', /admin-1 has already approved/),
    );

    const port = await closedPort();
    await assert.rejects(
      approve({ dir, pending, admin: 'admin-2', node: `http://127.0.0.1:${port}`, print: quiet }),
      rejectsWith('NODE_UNREACHABLE', /submitting the release of app version 1/),
    );
    const kept = JSON.parse(readFileSync(pending, 'utf8')) as { tx: { signatures: { signer: string }[] } };
    assert.deepEqual(
      kept.tx.signatures.map((s) => s.signer),
      ['admin-1', 'admin-2'],
      'the approval made before the failed submit is in the pending file',
    );
  });

  it('approve keeps collecting while the threshold is not reached, and names who approves next', async () => {
    // A network whose genesis asks for all three admins (no process reads it here).
    const strict = mkdtempSync(join(tmpdir(), 'cc-approve-'));
    try {
      const made = await initNetwork({ dir: strict, basePort: 1 });
      const genesis = { ...made.genesis, releaseThreshold: 3 };
      writeFileSync(paths.genesis(strict), JSON.stringify(genesis));
      const pending = join(strict, 'pending', 'app-1.json');
      writePending(
        pending,
        signRelease({ ...release, chainId: genesis.chainId }, [loadAdminKey(strict, genesis, 'admin-1')]),
      );
      const lines: string[] = [];
      const result = await approve({ dir: strict, pending, admin: 'admin-2', print: (l) => lines.push(l) });
      assert.equal(result.status, 'pending');
      assert.deepEqual(result.approvals, ['admin-1', 'admin-2']);
      assert.ok(result.status === 'pending' && result.next.endsWith(`--pending ${pending} --admin admin-3`));
      assert.match(lines.join('\n'), /2 of the 3 approvals needed/);
      const kept = JSON.parse(readFileSync(pending, 'utf8')) as { tx: { signatures: { signer: string }[] } };
      assert.deepEqual(
        kept.tx.signatures.map((s) => s.signer),
        ['admin-1', 'admin-2'],
      );
    } finally {
      rmSync(strict, { recursive: true, force: true });
    }
  });

  it('prints the device registry as an aligned table', () => {
    const entry = (
      id: string,
      status: 'enrolled' | 'revoked',
      report: DeviceEntry['lastReport'],
    ): DeviceEntry => ({
      kind: 'device',
      deviceId: id as DeviceId,
      publicKey: 'cd'.repeat(32) as PublicKeyHex,
      group: id === 'cam-1' ? 'cameras' : '',
      target: 'fleet' as TargetName,
      status,
      enrolledAt: 3 as Height,
      lastSeq: report === null ? 0 : 4,
      lastReport: report,
    });
    const lines = deviceTable([
      entry('cam-1', 'enrolled', {
        version: 2,
        sha256: 'ab'.repeat(32) as Hash32Hex,
        status: 'applied',
        height: 9 as Height,
      }),
      entry('device-10', 'revoked', null),
    ]);
    assert.deepEqual(lines, [
      'DEVICE     STATUS    TARGET  GROUP    ENROLLED AT  LAST REPORT              PUBLIC KEY',
      'cam-1      enrolled  fleet   cameras  3            v2 applied at 9 (seq 4)  cdcdcdcdcdcdcdcd...',
      'device-10  revoked   fleet   -        3            -                        cdcdcdcdcdcdcdcd...',
    ]);
  });
});
