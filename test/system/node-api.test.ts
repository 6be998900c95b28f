/**
 * The validator side of device trust on 4 real validator processes and two config servers:
 * heartbeats keep an idle chain's certified header fresh, proofs from any validator verify with the
 * device's own verifier against the genesis alone, signed device requests are checked against the
 * on-ledger registry, a release is fetched and hashed before it commits and then copied by every
 * validator, and blocks stream as server-sent events.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { ApiClient } from '../../src/api/client.ts';
import { deviceSigner } from '../../src/api/device-signer.ts';
import { generateKeyPair } from '../../src/crypto/ed25519.ts';
import { loadPrivateKey } from '../../src/crypto/keyfile.ts';
import { verifyTargetProof, verifyTxProof } from '../../src/device/verify.ts';
import type { DeviceId, Hash32Hex, PublicKeyHex, TargetName } from '../../src/encoding/brand.ts';
import { signAsAdmin, signRelease } from '../../src/ledger/index.ts';
import type { Transaction } from '../../src/ledger/types.ts';
import { paths } from '../../src/node/layout.ts';
import { answers, sha256OfText, sleep, startNetwork, type TestNetwork } from './harness.ts';

// Long enough that a loaded test machine (several suites on 2 cores) still commits each heartbeat
// well within one interval; the property checked is the same at any interval.
const HEARTBEAT_MS = 1000;
const H = (v: number) => sha256OfText(String(v)) as Hash32Hex;

describe('node API for device trust on 4 validator processes', { timeout: 180_000 }, () => {
  let net: TestNetwork;
  let clients: ApiClient[];
  const admins = () =>
    net.init.genesis.admins
      .slice(0, net.init.genesis.releaseThreshold)
      .map((a) => ({ id: a.id, privateKey: loadPrivateKey(paths.adminKey(net.dir, a.id)).privateKey }));

  before(async () => {
    net = await startNetwork({ heartbeatIntervalMs: HEARTBEAT_MS, versions: 6 });
    clients = [0, 1, 2, 3].map((id) => new ApiClient(net.apiUrl(id)));
  });
  after(async () => {
    await net?.stop();
  });

  it('keeps the certified header of an idle chain fresher than twice the heartbeat interval', async () => {
    const first = await clients[0]?.status();
    assert.ok(first !== undefined);
    // The processes have just started (and compete for the CPU while they warm up): let a few
    // heartbeats commit before measuring.
    await net.waitHeight([0, 1, 2, 3], first.height + 2);
    let heartbeats = 0;
    for (let sample = 0; sample < 10; sample++) {
      await sleep(300);
      const client = clients[sample % 4];
      assert.ok(client !== undefined);
      const tip = (await client.blocks((await client.status()).height, 1)).blocks[0];
      assert.ok(tip !== undefined);
      const ageMs = Date.now() - tip.block.header.timestampMs;
      assert.ok(ageMs < 2 * HEARTBEAT_MS, `validator ${sample % 4}'s tip is ${ageMs} ms old`);
      for (const tx of tip.block.txs) if (tx.body.type === 'heartbeat') heartbeats++;
    }
    const last = await clients[0]?.status();
    assert.ok(last !== undefined && last.height >= first.height + 4, 'heartbeat blocks were committed');
    assert.ok(heartbeats > 0, 'the tips carried heartbeat transactions');
  });

  it("serves proofs that the device's verifier accepts, from every validator", async () => {
    assert.deepEqual(await net.validateHash(0, H(1)), { status: 200, body: answers.added });
    await net.waitSameChains([0, 1, 2, 3]).catch(() => undefined);
    for (const [id, client] of clients.entries()) {
      const proof = await client.targetProof('default');
      const verdict = verifyTargetProof(proof, {
        genesis: net.init.genesis,
        target: 'default',
        lastAppliedVersion: 0,
        nowMs: Date.now(),
        headerAgeMsMax: 2 * HEARTBEAT_MS + 1000,
      });
      assert.equal(verdict.ok, true, `validator ${id}: ${JSON.stringify(verdict)}`);
      assert.equal(verdict.ok && verdict.entry?.sha256, H(1));
    }
    const txId = (await clients[0]?.target('default'))?.txId;
    assert.ok(txId !== undefined);
    const txProof = await clients[3]?.txProof(txId);
    const verdict = verifyTxProof(txProof, { genesis: net.init.genesis, txId });
    assert.equal(verdict.ok, true, JSON.stringify(verdict));
  });

  it('fetches and hashes a release before it commits, and every validator keeps a copy', async () => {
    const release = (version: number, sha256: Hash32Hex, size: number): Transaction =>
      signRelease(
        {
          type: 'release',
          chainId: net.init.genesis.chainId,
          target: 'default' as TargetName,
          version,
          sha256,
          size,
          mediaType: 'text/plain',
        },
        admins(),
      );
    // Version 7 was never uploaded: the validators would vote against it, so it is refused at once.
    const missing = await clients[1]?.submitTx(release(7, sha256OfText('7') as Hash32Hex, 1), 5000);
    assert.equal(missing?.status, 'rejected');
    assert.equal(missing?.code, 'ARTIFACT_UNVERIFIED');
    // A release whose size is not the artifact's: refused after the download.
    const wrongSize = await clients[1]?.submitTx(release(6, H(6), 2), 5000);
    assert.equal(wrongSize?.status, 'rejected');
    assert.match(wrongSize?.reason ?? '', /2 bytes/);

    const committed = await clients[2]?.submitTx(release(6, H(6), 1), 10_000);
    assert.equal(committed?.status, 'committed', JSON.stringify(committed));
    const deadline = Date.now() + 10_000;
    for (const [id, client] of clients.entries()) {
      let copy = await client.content(H(6));
      while (copy === undefined && Date.now() < deadline) {
        await sleep(100);
        copy = await client.content(H(6));
      }
      assert.equal(Buffer.from(copy?.bytes ?? []).toString('utf8'), '6', `validator ${id} holds the copy`);
      assert.equal(await client.holdsContent(H(6)), true);
      const byVersion = await client.versionContent('default', 6);
      assert.equal(Buffer.from(byVersion?.bytes ?? []).toString('utf8'), '6');
    }
    assert.equal(await clients[0]?.holdsContent(H(5)), false, 'content never released is not held');
  });

  it('checks signed device requests against the registry on the ledger', async () => {
    const genesis = net.init.genesis;
    const device = generateKeyPair();
    const admin = admins()[0];
    assert.ok(admin !== undefined);
    const enroll = signAsAdmin(
      {
        type: 'device-enroll',
        chainId: genesis.chainId,
        deviceId: 'cam-7' as DeviceId,
        publicKey: device.publicKeyHex as PublicKeyHex,
        group: 'cameras',
        target: 'default' as TargetName,
      },
      admin.id,
      admin.privateKey,
    );
    assert.equal((await clients[0]?.submitTx(enroll, 10_000))?.status, 'committed');
    await net.waitSameChains([0, 1, 2, 3]).catch(() => undefined);
    const signer = (deviceId: string, key = device.privateKey) =>
      deviceSigner({ chainId: genesis.chainId, deviceId, key });
    for (const id of [0, 1, 2, 3]) {
      const asDevice = new ApiClient(net.apiUrl(id), { device: signer('cam-7') });
      for (let tries = 0; ; tries++) {
        try {
          assert.equal((await asDevice.targetProof('default')).entry?.version, 6);
          break;
        } catch (error) {
          // A validator that has not executed the enrollment yet says the device is unknown.
          if (tries > 50) throw error;
          await sleep(100);
        }
      }
      await assert.rejects(asDevice.targetProof('other'), { code: 'DEVICE_FORBIDDEN' });
      const stranger = new ApiClient(net.apiUrl(id), { device: signer('nobody') });
      await assert.rejects(stranger.targetProof('default'), { code: 'DEVICE_FORBIDDEN' });
      const forger = new ApiClient(net.apiUrl(id), { device: signer('cam-7', generateKeyPair().privateKey) });
      await assert.rejects(forger.targetProof('default'), { code: 'DEVICE_UNAUTHORIZED' });
      assert.equal((await forger.validateHash(H(6))).status, 401);
      assert.equal((await asDevice.validateHash(H(6))).outcome, 'current');
    }
    const listed = await clients[3]?.devices();
    assert.deepEqual(
      listed?.devices.map((d) => d.deviceId),
      ['cam-7'],
    );
  });

  it('streams committed blocks as server-sent events', async () => {
    const controller = new AbortController();
    const client = clients[1];
    assert.ok(client !== undefined);
    const status = await client.status();
    let block: { height: number; hash: string } | undefined;
    const timer = setTimeout(() => controller.abort(), 10_000);
    try {
      for await (const event of client.events(controller.signal)) {
        if (event.event === 'block') {
          block = event.data;
          break;
        }
      }
    } finally {
      clearTimeout(timer);
      controller.abort();
    }
    assert.ok(block !== undefined, 'a heartbeat block arrived as an event');
    assert.ok(block.height > status.height);
    assert.equal((await client.block(block.height)).hash, block.hash);
  });

  it("replaces a silent primary on an idle chain: the backups' heartbeats start a view change", async () => {
    const before = await net.status(0);
    const primary = before.primary;
    const others = [0, 1, 2, 3].filter((id) => id !== primary);
    const watcher = others[0];
    assert.ok(watcher !== undefined);
    net.signal(primary, 'SIGSTOP');
    try {
      const deadline = Date.now() + 30_000;
      let status = await net.status(watcher);
      while (!(status.view > before.view && status.height > before.height) && Date.now() < deadline) {
        await sleep(200);
        status = await net.status(watcher);
      }
      assert.ok(status.view > before.view, `a view change replaced the stopped primary ${primary}`);
      assert.notEqual(status.primary, primary);
      // The new primary keeps the idle chain's header fresh again.
      const height = status.height;
      await net.waitHeight(others, height + 2, 10_000);
      const tip = (await clients[watcher]?.blocks((await net.status(watcher)).height, 1))?.blocks[0];
      assert.ok(tip !== undefined && Date.now() - tip.block.header.timestampMs < 2 * HEARTBEAT_MS + 1000);
    } finally {
      net.signal(primary, 'SIGCONT');
    }
  });
});
