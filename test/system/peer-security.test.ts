/**
 * Issue 4 acceptance (f): nothing from outside the validator set, and nothing with a forged
 * signature, is accepted on a validator's peer port, and no node's chain changes.
 * - a TLS client without a certificate, and one with a certificate from another CA, are refused
 *   in the handshake: no frame they send is read;
 * - a connection with a real validator certificate (validator 3's, as a compromised TLS key would
 *   give) sends PBFT messages, a state-transfer answer and a transaction whose signatures are
 *   forged: none of it moves any chain.
 * The network runs with a long heartbeat so that an unchanged chain means exactly that.
 */
import assert from 'node:assert/strict';
import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { after, before, describe, it } from 'node:test';
import { connect, type TLSSocket } from 'node:tls';
import { Domain } from '../../src/crypto/domains.ts';
import { sign } from '../../src/crypto/ed25519.ts';
import type { BlockHash, Hash32Hex, Height, ValidatorId, View } from '../../src/encoding/brand.ts';
import { attestTx } from '../../src/ledger/index.ts';
import { encodeFrame } from '../../src/net/frames.ts';
import { createCa, issueValidatorCert } from '../../src/net/pki.ts';
import { paths } from '../../src/node/layout.ts';
import { answers, type ChainEntry, sha256OfText, sleep, startNetwork, type TestNetwork } from './harness.ts';

function frame(message: object): Buffer {
  return encodeFrame(Buffer.from(JSON.stringify(message), 'utf8'));
}

/** Opens a TLS connection to a peer port; resolves whether the handshake succeeded. */
function dial(
  port: number,
  creds: { ca: string; cert?: string; key?: string },
): Promise<{ socket: TLSSocket; ok: boolean }> {
  return new Promise((done) => {
    const socket = connect({
      host: '127.0.0.1',
      port,
      ca: creds.ca,
      ...(creds.cert === undefined ? {} : { cert: creds.cert, key: creds.key }),
      minVersion: 'TLSv1.3',
      servername: 'localhost',
      rejectUnauthorized: false,
    });
    let settled = false;
    const finish = (ok: boolean) => {
      if (settled) return;
      settled = true;
      done({ socket, ok });
    };
    // In TLS 1.3 the server checks the client certificate after the client's handshake finishes,
    // so a refused client learns it from the connection closing right after "secureConnect".
    socket.once('secureConnect', () => {
      setTimeout(() => finish(!socket.destroyed && socket.readyState === 'open'), 500);
    });
    socket.once('error', () => finish(false));
    socket.once('close', () => finish(false));
  });
}

function chainKey(chain: readonly ChainEntry[]): string {
  return chain.map((e) => e.hash).join(',');
}

describe('peer port security', { timeout: 120_000 }, () => {
  let net: TestNetwork;
  let ca: string;
  let peerPorts: number[];
  before(async () => {
    net = await startNetwork({ heartbeatIntervalMs: 10 * 60_000 });
    ca = readFileSync(paths.caCert(net.dir), 'utf8');
    peerPorts = net.init.network.validators.map((v) => v.peerPort);
    // One real block first, so there is something to rewrite.
    assert.deepEqual(await net.validateHash(0, sha256OfText('1')), { status: 200, body: answers.added });
  });
  after(async () => {
    await net?.stop();
  });

  it('(f) refuses clients without a network certificate, and forged messages change no chain', async () => {
    const before = await net.waitSameChains([0, 1, 2, 3]);
    const genesis = net.init.genesis;
    const evilHash = sha256OfText('not a released configuration') as Hash32Hex;

    // 1. No certificate, and a certificate of another CA: refused in the handshake.
    const otherCa = await createCa('Some other CA');
    const otherCert = await issueValidatorCert(otherCa, 1);
    for (const port of peerPorts) {
      const anonymous = await dial(port, { ca });
      anonymous.socket.write(frame({ kind: 'tx', tx: {} }));
      const foreign = await dial(port, { ca, cert: otherCert.certPem, key: otherCert.keyPem });
      assert.equal(anonymous.ok, false, `peer port ${port} kept a connection without a client certificate`);
      assert.equal(foreign.ok, false, `peer port ${port} kept a connection with another CA's certificate`);
      anonymous.socket.destroy();
      foreign.socket.destroy();
    }

    // 2. A real validator certificate (validator 3's), sending messages with forged signatures.
    const cert = readFileSync(paths.tlsCert(net.dir, 3), 'utf8');
    const key = readFileSync(paths.tlsKey(net.dir, 3), 'utf8');
    const forger = generateKeyPairSync('ed25519').privateKey;
    const tip = before[before.length - 1];
    assert.ok(tip !== undefined);
    const seq = (tip.index + 1) as Height;
    // An attest of a hash that config server B does not offer: every honest validator refuses it.
    const attest = attestTx(genesis.chainId, 'default' as never, evilHash, { version: 99, size: 1 });
    // A block that rewrites the chain from the tip with the forged attest, shaped like a real one.
    const fakeHeader = {
      chainId: genesis.chainId,
      height: seq,
      prevHash: tip.hash as BlockHash,
      timestampMs: Date.now(),
      txCount: 1,
      txRoot: randomBytes(32).toString('hex') as Hash32Hex,
      stateRoot: randomBytes(32).toString('hex') as Hash32Hex,
      validatorSetHash: randomBytes(32).toString('hex') as Hash32Hex,
      view: 0 as View,
      proposer: 0 as ValidatorId,
    };
    const digest = randomBytes(32).toString('hex') as BlockHash;
    const forged = (domain: (typeof Domain)[keyof typeof Domain], payload: object) =>
      sign(domain, payload, forger);
    const messages: object[] = [
      { kind: 'tx', tx: attest },
      {
        kind: 'pre-prepare',
        view: 0,
        seq,
        digest,
        block: { header: fakeHeader, txs: [attest] },
        replica: 0,
        signature: forged(Domain.pbftPrePrepare, { chainId: genesis.chainId, view: 0, seq, digest }),
      },
      ...[0, 1, 2].flatMap((replica) => [
        {
          kind: 'prepare',
          view: 0,
          seq,
          digest,
          replica,
          signature: forged(Domain.pbftPrepare, { chainId: genesis.chainId, view: 0, seq, digest }),
        },
        {
          kind: 'commit',
          view: 0,
          seq,
          digest,
          replica,
          signature: forged(Domain.pbftCommit, {
            chainId: genesis.chainId,
            view: 0,
            height: seq,
            blockHash: digest,
          }),
        },
      ]),
      {
        kind: 'view-change',
        newView: 1,
        checkpoint: { seq: 0, digest: before[0]?.hash, proof: [] },
        prepared: [],
        replica: 1,
        signature: 'ab'.repeat(64),
      },
      {
        kind: 'blocks',
        blocks: [
          {
            block: { header: fakeHeader, txs: [attest] },
            certificate: {
              height: seq,
              view: 0,
              blockHash: digest,
              signatures: [0, 1, 2].map((validator) => ({
                validator,
                signature: forged(Domain.pbftCommit, {
                  chainId: genesis.chainId,
                  view: 0,
                  height: seq,
                  blockHash: digest,
                }),
              })),
            },
          },
        ],
      },
      { kind: 'garbage', payload: 'x'.repeat(100) },
    ];
    for (const port of peerPorts.slice(0, 3)) {
      const link = await dial(port, { ca, cert, key });
      assert.equal(link.ok, true, 'a validator certificate is accepted');
      for (const m of messages) link.socket.write(frame(m));
      await sleep(300);
      link.socket.destroy();
    }

    await sleep(2000);
    const afterChains = await Promise.all([0, 1, 2, 3].map((i) => net.chain(i)));
    for (const [i, chain] of afterChains.entries()) {
      assert.equal(chainKey(chain), chainKey(before), `validator ${i}'s chain changed`);
    }
    // The network still works, and the forged hash is not valid anywhere.
    assert.deepEqual(await net.validateHash(1, evilHash), { status: 200, body: answers.failure });
    assert.deepEqual(await net.validateHash(2, sha256OfText('2')), { status: 200, body: answers.added });
    await net.waitSameChains([0, 1, 2, 3]);
  });
});
