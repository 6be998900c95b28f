import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { Domain } from '../crypto/domains.ts';
import { sign } from '../crypto/ed25519.ts';
import { sha256Hex } from '../crypto/hash.ts';
import type { DeviceId, SignatureHex, TargetName, TxId, ValidatorId, View } from '../encoding/brand.ts';
import { applyBlock, buildBlock } from './apply.ts';
import { genesisBlock } from './block.ts';
import type { LedgerRule } from './errors.ts';
import { LedgerState } from './state.ts';
import { createTestNetwork, seededKey } from './testing.ts';
import {
  addApproval,
  attestTx,
  checkTransaction,
  parseTransaction,
  signAsAdmin,
  signAsDevice,
  signRelease,
  txId,
} from './tx.ts';
import type {
  AttestBody,
  BlockHeader,
  DeviceEnrollBody,
  DeviceReportBody,
  DeviceRevokeBody,
  ReleaseBody,
  Transaction,
} from './types.ts';

const net = createTestNetwork({ seed: 'tx-tests' });
const { genesis, adminKeys, validatorKeys } = net;
const [admin0, admin1, admin2] = adminKeys as [
  (typeof adminKeys)[0],
  (typeof adminKeys)[0],
  (typeof adminKeys)[0],
];
const deviceKey = seededKey('tx-tests/device/cam-1');

function release(
  version: number,
  content = `config v${version}`,
  extra: Partial<ReleaseBody> = {},
): ReleaseBody {
  const bytes = Buffer.from(content);
  return {
    type: 'release',
    chainId: genesis.chainId,
    target: 'default' as TargetName,
    version,
    sha256: sha256Hex(bytes),
    size: bytes.length,
    mediaType: 'text/plain',
    content: bytes.toString('base64'),
    ...extra,
  };
}

function attest(version: number): AttestBody {
  return {
    type: 'attest',
    chainId: genesis.chainId,
    target: 'default' as TargetName,
    version,
    sha256: sha256Hex(`attested ${version}`),
    size: 12,
  };
}

const enroll = (id = 'cam-1'): DeviceEnrollBody => ({
  type: 'device-enroll',
  chainId: genesis.chainId,
  deviceId: id as DeviceId,
  publicKey: deviceKey.publicKeyHex,
  group: 'cameras',
  target: 'default' as TargetName,
});

const revoke = (id = 'cam-1'): DeviceRevokeBody => ({
  type: 'device-revoke',
  chainId: genesis.chainId,
  deviceId: id as DeviceId,
  reason: 'lost',
});

const report = (seq: number, id = 'cam-1'): DeviceReportBody => ({
  type: 'device-report',
  chainId: genesis.chainId,
  deviceId: id as DeviceId,
  seq,
  target: 'default' as TargetName,
  version: 1,
  sha256: sha256Hex('config v1'),
  status: 'applied',
  detail: '',
});

/** A small chain that commits transactions through buildBlock and re-checks them with applyBlock. */
class Chain {
  parent: BlockHeader = genesisBlock(genesis).header;
  state: LedgerState = LedgerState.empty();

  commit(...txs: Transaction[]): this {
    const built = buildBlock(genesis, this.parent, this.state, txs, {
      view: 0 as View,
      proposer: 0 as ValidatorId,
      timestampMs: this.parent.timestampMs + 1000,
    });
    assert.deepEqual(
      built.rejected.map((r) => r.reason),
      [],
    );
    const applied = applyBlock(genesis, this.parent, this.state, built.block);
    assert.equal(applied.state.root, built.state.root);
    this.parent = built.block.header;
    this.state = applied.state;
    return this;
  }
}

function expectRejected(state: LedgerState, tx: unknown, rule: LedgerRule, pattern?: RegExp): void {
  const result = checkTransaction(genesis, state, tx);
  assert.equal(result.ok, false, 'the transaction should be rejected');
  if (result.ok) return;
  assert.equal(result.error.code, 'TX_INVALID');
  assert.equal(result.error.data.rule, rule, result.error.message);
  if (pattern !== undefined) assert.match(result.error.message, pattern);
}

function expectAccepted(state: LedgerState, tx: unknown): void {
  const result = checkTransaction(genesis, state, tx);
  assert.ok(result.ok, result.ok ? '' : result.error.message);
}

const empty = LedgerState.empty();

describe('release transactions', () => {
  it('apply with the threshold of distinct admin approvals', () => {
    const tx = signRelease(release(1), [admin0, admin1]);
    const chain = new Chain().commit(tx);
    const entry = chain.state.target('default');
    assert.deepEqual(entry, {
      kind: 'target',
      target: 'default',
      source: 'release',
      version: 1,
      sha256: sha256Hex('config v1'),
      size: 9,
      mediaType: 'text/plain',
      height: 1,
      txId: txId(tx),
    });
  });

  it('collects approvals one by one', () => {
    const partial = signRelease(release(1), [admin2]);
    expectRejected(empty, partial, 'threshold-not-met');
    expectAccepted(empty, addApproval(partial, admin0));
  });

  it('refuse fewer approvals than the threshold', () => {
    expectRejected(empty, signRelease(release(1), [admin0]), 'threshold-not-met', /needs 2/);
  });

  it('do not count unknown signers', () => {
    const stranger = { id: 'mallory', privateKey: seededKey('mallory').privateKey };
    expectRejected(empty, signRelease(release(1), [admin0, stranger]), 'threshold-not-met');
  });

  it('count a duplicate admin once', () => {
    expectRejected(empty, signRelease(release(1), [admin0, admin0]), 'threshold-not-met', /1 distinct/);
  });

  it('refuse a bad signature by a known admin even when the threshold is otherwise met', () => {
    const tx = signRelease(release(1), [admin0, admin1, admin2]);
    const forged = {
      ...tx,
      signatures: tx.signatures.map((s, i) =>
        i === 2 ? { ...s, signature: sign(Domain.releaseApproval, release(2), admin2.privateKey) } : s,
      ),
    };
    expectRejected(empty, forged, 'bad-signature', /admin2/);
  });

  it('refuse approvals made in the wrong signing domain', () => {
    const body = release(1);
    const tx = {
      body,
      signatures: [admin0, admin1].map((a) => ({
        signer: a.id,
        signature: sign(Domain.transaction, body, a.privateKey),
      })),
    };
    expectRejected(empty, tx, 'bad-signature');
  });

  it('refuse rollback and replay', () => {
    const v2 = signRelease(release(2), [admin0, admin1]);
    const chain = new Chain().commit(v2);
    expectRejected(chain.state, v2, 'version-not-newer', /rollback or a replay/);
    expectRejected(chain.state, signRelease(release(1), [admin0, admin1]), 'version-not-newer');
    expectAccepted(chain.state, signRelease(release(3), [admin0, admin1]));
  });

  it('refuse inline content that does not match size or hash', () => {
    expectRejected(empty, signRelease(release(1, 'abc', { size: 4 }), [admin0, admin1]), 'content-mismatch');
    expectRejected(
      empty,
      signRelease(release(1, 'abc', { sha256: sha256Hex('abd') }), [admin0, admin1]),
      'content-mismatch',
    );
  });

  it('refuse inline content over the policy limit and over the global limit', () => {
    const big = 'x'.repeat(genesis.policy.inlineContentBytesMax + 1);
    expectRejected(
      empty,
      signRelease(release(1, big), [admin0, admin1]),
      'too-large',
      /inlineContentBytesMax/,
    );
    const huge = 'x'.repeat(20_000);
    expectRejected(empty, signRelease(release(1, huge), [admin0, admin1]), 'schema', /content/);
  });

  it('accept a release without inline content', () => {
    const { content: _content, ...body } = release(1);
    expectAccepted(empty, signRelease(body, [admin0, admin1]));
  });

  it('refuse a wrong chain id', () => {
    expectRejected(
      empty,
      signRelease(release(1, 'x', { chainId: 'other-chain' }), [admin0, admin1]),
      'chain-id',
    );
  });

  it('refuse unknown fields in the body, the transaction and a signature', () => {
    const tx = signRelease(release(1), [admin0, admin1]);
    expectRejected(
      empty,
      { ...tx, body: { ...tx.body, extra: 1 } },
      'schema',
      /tx\.body\.extra: unknown field/,
    );
    expectRejected(empty, { ...tx, note: 'hi' }, 'schema', /tx\.note/);
    expectRejected(
      empty,
      { ...tx, signatures: [{ ...tx.signatures[0], at: 1 }] },
      'schema',
      /signatures\[0\]\.at/,
    );
  });

  it('refuse wrong types and ranges with the field named', () => {
    const tx = signRelease(release(1), [admin0, admin1]);
    expectRejected(empty, { ...tx, body: { ...tx.body, version: '1' } }, 'schema', /tx\.body\.version/);
    expectRejected(empty, { ...tx, body: { ...tx.body, version: 0 } }, 'schema', /version/);
    expectRejected(empty, { ...tx, body: { ...tx.body, version: 1.5 } }, 'schema', /version/);
    expectRejected(empty, { ...tx, body: { ...tx.body, sha256: 'ABC' } }, 'schema', /sha256/);
    expectRejected(empty, { ...tx, body: { ...tx.body, target: 'a/b' } }, 'schema', /target/);
    expectRejected(empty, { ...tx, body: { ...tx.body, target: 'x'.repeat(129) } }, 'schema', /target/);
    expectRejected(empty, { ...tx, body: { ...tx.body, type: 'mint' } }, 'schema', /type/);
    expectRejected(empty, { ...tx, signatures: [] }, 'schema', /signatures/);
    expectRejected(empty, null, 'schema');
    expectRejected(empty, { body: null, signatures: [] }, 'schema');
  });

  it('let the signatureChecked hint skip verification only when it says true', () => {
    const tx = signRelease(release(1), [admin0, admin1]);
    const forged = {
      ...tx,
      signatures: tx.signatures.map((s) => ({ ...s, signature: '00'.repeat(64) as SignatureHex })),
    };
    const id = txId(forged);
    assert.equal(
      checkTransaction(genesis, empty, forged, { signatureChecked: (x: TxId) => x === id }).ok,
      true,
    );
    assert.equal(checkTransaction(genesis, empty, forged, { signatureChecked: () => false }).ok, false);
    // Even a verified transaction must meet the signer rules.
    const single = signRelease(release(1), [admin0]);
    assert.equal(checkTransaction(genesis, empty, single, { signatureChecked: () => true }).ok, false);
  });
});

describe('attest transactions', () => {
  const key0 = (validatorKeys[0] as { privateKey: import('node:crypto').KeyObject }).privateKey;
  const key1 = (validatorKeys[1] as { privateKey: import('node:crypto').KeyObject }).privateKey;

  it('apply unsigned: the validators check them against their config source, not a signature', () => {
    const chain = new Chain().commit(signRelease(release(1), [admin0, admin1]));
    chain.commit({ body: attest(2), signatures: [] });
    const entry = chain.state.target('default');
    assert.equal(entry?.source, 'attest');
    assert.equal(entry?.version, 2);
    assert.equal(entry?.mediaType, 'text/plain', 'an attestation keeps the media type');
  });

  it('are the same transaction whichever validator makes them', () => {
    const offer = { version: 2, size: 12 };
    const a = attestTx(genesis.chainId, 'default' as TargetName, sha256Hex('attested 2'), offer);
    const b = attestTx(genesis.chainId, 'default' as TargetName, sha256Hex('attested 2'), offer);
    assert.equal(txId(a), txId(b));
    assert.deepEqual(a, { body: attest(2), signatures: [] });
  });

  it('refuse a signature on an attest that names no submitter, valid or not', () => {
    const body = attest(1);
    for (const key of [key0, key1]) {
      const tx = { body, signatures: [{ signer: '0', signature: sign(Domain.transaction, body, key) }] };
      expectRejected(empty, tx, 'schema');
    }
  });

  it('refuse a version that is not newer than the current one', () => {
    const chain = new Chain().commit(signRelease(release(3), [admin0, admin1]));
    expectRejected(chain.state, { body: attest(3), signatures: [] }, 'version-not-newer');
  });

  // Chains recorded before attests became unsigned hold attests that name their submitter and
  // carry its signature: they still verify, and only with exactly that valid signature.
  it('still apply in the legacy form: signed by the validator named as submitter', () => {
    const chain = new Chain().commit(signRelease(release(1), [admin0, admin1]));
    const body: AttestBody = { ...attest(2), submitter: 0 as ValidatorId };
    chain.commit({ body, signatures: [{ signer: '0', signature: sign(Domain.transaction, body, key0) }] });
    assert.equal(chain.state.target('default')?.version, 2);
  });

  it('refuse a legacy attest signed by another validator, with a bad signature, or by a stranger', () => {
    const body: AttestBody = { ...attest(1), submitter: 0 as ValidatorId };
    const byOther = { body, signatures: [{ signer: '1', signature: sign(Domain.transaction, body, key1) }] };
    expectRejected(empty, byOther, 'unknown-signer');
    const wrongKey = { body, signatures: [{ signer: '0', signature: sign(Domain.transaction, body, key1) }] };
    expectRejected(empty, wrongKey, 'bad-signature');
    expectRejected(empty, { body, signatures: [] }, 'schema');
    const stranger: AttestBody = { ...attest(1), submitter: 5 as ValidatorId };
    expectRejected(
      empty,
      { body: stranger, signatures: [{ signer: '5', signature: sign(Domain.transaction, stranger, key0) }] },
      'unknown-signer',
    );
  });
});

describe('device transactions', () => {
  it('enroll, report and revoke a device', () => {
    const chain = new Chain().commit(signAsAdmin(enroll(), admin0.id, admin0.privateKey));
    assert.deepEqual(chain.state.device('cam-1'), {
      kind: 'device',
      deviceId: 'cam-1',
      publicKey: deviceKey.publicKeyHex,
      group: 'cameras',
      target: 'default',
      status: 'enrolled',
      enrolledAt: 1,
      lastSeq: 0,
      lastReport: null,
    });
    chain.commit(
      signAsDevice(report(1), deviceKey.privateKey),
      signAsDevice(report(5), deviceKey.privateKey),
    );
    assert.equal(chain.state.device('cam-1')?.lastSeq, 5);
    assert.deepEqual(chain.state.device('cam-1')?.lastReport, {
      version: 1,
      sha256: sha256Hex('config v1'),
      status: 'applied',
      height: 2,
    });
    chain.commit(signAsAdmin(revoke(), admin1.id, admin1.privateKey));
    assert.equal(chain.state.device('cam-1')?.status, 'revoked');
  });

  it('refuse enrolling an enrolled id, and re-enrolling a revoked one', () => {
    const chain = new Chain().commit(signAsAdmin(enroll(), admin0.id, admin0.privateKey));
    expectRejected(
      chain.state,
      signAsAdmin(enroll(), admin1.id, admin1.privateKey),
      'device-already-enrolled',
      /already enrolled/,
    );
    chain.commit(signAsAdmin(revoke(), admin0.id, admin0.privateKey));
    expectRejected(
      chain.state,
      signAsAdmin(enroll(), admin1.id, admin1.privateKey),
      'device-already-enrolled',
      /revoked/,
    );
  });

  it('refuse enroll and revoke not signed by an admin', () => {
    const stranger = seededKey('stranger');
    expectRejected(empty, signAsAdmin(enroll(), 'mallory', stranger.privateKey), 'unknown-signer');
    expectRejected(empty, signAsAdmin(enroll(), admin0.id, stranger.privateKey), 'bad-signature');
  });

  it('refuse revoking an unknown or already revoked device', () => {
    expectRejected(empty, signAsAdmin(revoke(), admin0.id, admin0.privateKey), 'device-not-enrolled');
    const chain = new Chain()
      .commit(signAsAdmin(enroll(), admin0.id, admin0.privateKey))
      .commit(signAsAdmin(revoke(), admin0.id, admin0.privateKey));
    expectRejected(chain.state, signAsAdmin(revoke(), admin0.id, admin0.privateKey), 'device-revoked');
  });

  it('refuse replayed and stale report sequence numbers', () => {
    const first = signAsDevice(report(3), deviceKey.privateKey);
    const chain = new Chain().commit(signAsAdmin(enroll(), admin0.id, admin0.privateKey)).commit(first);
    expectRejected(chain.state, first, 'replayed-seq', /replay/);
    expectRejected(chain.state, signAsDevice(report(2), deviceKey.privateKey), 'replayed-seq');
    expectAccepted(chain.state, signAsDevice(report(4), deviceKey.privateKey));
  });

  it('refuse reports from unenrolled or revoked devices, or signed by another key', () => {
    expectRejected(empty, signAsDevice(report(1), deviceKey.privateKey), 'device-not-enrolled');
    const chain = new Chain().commit(signAsAdmin(enroll(), admin0.id, admin0.privateKey));
    expectRejected(chain.state, signAsDevice(report(1), seededKey('other').privateKey), 'bad-signature');
    const wrongSigner = { ...signAsDevice(report(1), deviceKey.privateKey), signatures: [] };
    expectRejected(chain.state, wrongSigner, 'schema');
    chain.commit(signAsAdmin(revoke(), admin0.id, admin0.privateKey));
    expectRejected(chain.state, signAsDevice(report(1), deviceKey.privateKey), 'device-revoked');
  });

  it('refuse unknown fields and bad values in device bodies', () => {
    const tx = signAsAdmin(enroll(), admin0.id, admin0.privateKey);
    expectRejected(empty, { ...tx, body: { ...tx.body, role: 'x' } }, 'schema', /role/);
    expectRejected(empty, { ...tx, body: { ...tx.body, deviceId: 'x'.repeat(129) } }, 'schema', /deviceId/);
    expectRejected(empty, { ...tx, body: { ...tx.body, publicKey: 'abcd' } }, 'schema', /publicKey/);
    const rep = signAsDevice(report(1), deviceKey.privateKey);
    expectRejected(empty, { ...rep, body: { ...rep.body, status: 'great' } }, 'schema', /status/);
    expectRejected(empty, { ...rep, body: { ...rep.body, seq: 0 } }, 'schema', /seq/);
  });
});

describe('parseTransaction', () => {
  it('returns a transaction equal to a valid input and keeps its id', () => {
    const tx = signRelease(release(1), [admin0, admin1]);
    const parsed = parseTransaction(JSON.parse(JSON.stringify(tx)));
    assert.deepEqual(parsed, tx);
    assert.equal(txId(parsed), txId(tx));
  });
});

describe('hostile input', () => {
  const valid = signRelease(release(1), [admin0, admin1]);

  it('property: checkTransaction answers every JSON value with a typed rejection, never a throw', () => {
    fc.assert(
      fc.property(fc.jsonValue(), (value) => {
        const result = checkTransaction(genesis, empty, value);
        assert.equal(result.ok, false);
        if (!result.ok) assert.equal(result.error.code, 'TX_INVALID');
      }),
      { numRuns: 300 },
    );
  });

  it('property: changing any one field of a valid transaction never throws and never passes unless unchanged', () => {
    const paths: (readonly string[])[] = [
      ...Object.keys(valid.body).map((k) => ['body', k]),
      ['signatures', '0', 'signer'],
      ['signatures', '0', 'signature'],
    ];
    fc.assert(
      fc.property(fc.constantFrom(...paths), fc.jsonValue(), (path, replacement) => {
        const copy = JSON.parse(JSON.stringify(valid));
        let target = copy;
        for (const key of path.slice(0, -1)) target = target[key];
        const last = path.at(-1) as string;
        const unchanged = JSON.stringify(target[last]) === JSON.stringify(replacement);
        target[last] = replacement;
        const result = checkTransaction(genesis, empty, copy);
        if (!unchanged) assert.equal(result.ok, false, `${path.join('.')} = ${JSON.stringify(replacement)}`);
      }),
      { numRuns: 300 },
    );
  });
});
