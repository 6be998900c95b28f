import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { generateKeyPair } from '../crypto/ed25519.ts';
import type { ValidatorId } from '../encoding/brand.ts';
import { attestTx, blockHash, genesisBlock } from '../ledger/index.ts';
import type { Genesis } from '../ledger/types.ts';
import { sanitizeBlock, sanitizeCertifiedBlocks, sanitizeConsensusMessage } from './messages.ts';

const keys = [0, 1, 2, 3].map(() => generateKeyPair());
const genesis: Genesis = {
  chainId: 'test-chain',
  genesisTimeMs: 1_700_000_000_000,
  validators: keys.map((k, i) => ({
    id: i as ValidatorId,
    publicKey: k.publicKeyHex,
    peerAddress: `127.0.0.1:${6001 + i}`,
    apiUrl: `http://127.0.0.1:${5001 + i}`,
  })),
  admins: [{ id: 'admin-1', publicKey: keys[0]!.publicKeyHex }],
  releaseThreshold: 1,
  configSources: [
    { id: 'A', url: 'http://127.0.0.1:5101', role: 'device-facing' },
    { id: 'B', url: 'http://127.0.0.1:5102', role: 'validator-facing' },
  ],
  policy: {
    heartbeatIntervalMs: 5000,
    headerAgeMsMax: 300_000,
    inlineContentBytesMax: 1024,
    contentCopyBytesMax: 1024,
    artifactBytesMax: 1024,
    allowUnauthenticatedCompat: true,
    clockSkewMsMax: 10_000,
  },
};
const block0 = genesisBlock(genesis);
const digest = blockHash(block0.header);
const sig = 'ab'.repeat(64);
const tx = attestTx(genesis.chainId, 'default' as never, 'cd'.repeat(32) as never, { version: 1, size: 1 });
const block = { header: { ...block0.header, height: 1, prevHash: digest }, txs: [tx] };

describe('peer message shape checks', () => {
  it('keeps well-formed PBFT messages and blocks (through a JSON round trip)', () => {
    const wire = (m: object) => JSON.parse(JSON.stringify(m)) as Record<string, unknown>;
    const pp = wire({ kind: 'pre-prepare', view: 0, seq: 1, digest, block, replica: 0, signature: sig });
    assert.deepEqual(sanitizeConsensusMessage(pp, 1, 4), pp);
    const vote = wire({ kind: 'commit', view: 2, seq: 1, digest, replica: 3, signature: sig });
    assert.deepEqual(sanitizeConsensusMessage(vote, 3, 4), vote);
    const vc = wire({
      kind: 'view-change',
      newView: 1,
      checkpoint: { seq: 0, digest, proof: [] },
      prepared: [
        {
          prePrepare: pp,
          prepares: [{ kind: 'prepare', view: 0, seq: 1, digest, replica: 2, signature: sig }],
        },
      ],
      replica: 2,
      signature: sig,
    });
    assert.deepEqual(sanitizeConsensusMessage(vc, 2, 4), vc);
    const dropped = ['ef'.repeat(32)];
    assert.deepEqual(sanitizeBlock(wire({ ...block, dropped })), { ...block, dropped });
  });

  it('drops anything malformed: unknown kinds, bad numbers, hashes, signatures, replicas, blocks', () => {
    const good = { kind: 'prepare', view: 0, seq: 1, digest, replica: 1, signature: sig };
    const bad: Record<string, unknown>[] = [
      { ...good, kind: 'nonsense' },
      { ...good, view: -1 },
      { ...good, seq: 1.5 },
      { ...good, view: '0' },
      { ...good, digest: 'zz' },
      { ...good, signature: 'ab' },
      { ...good, replica: 4 },
      {
        kind: 'pre-prepare',
        view: 0,
        seq: 1,
        digest,
        block: { header: {}, txs: [] },
        replica: 0,
        signature: sig,
      },
      {
        kind: 'pre-prepare',
        view: 0,
        seq: 1,
        digest,
        block: { ...block, txs: [{ body: 1 }] },
        replica: 0,
        signature: sig,
      },
      { kind: 'new-view', view: 1, viewChanges: 'x', prePrepares: [], replica: 1, signature: sig },
      {
        kind: 'view-change',
        newView: 1,
        checkpoint: { seq: 0, digest, proof: [{}] },
        prepared: [],
        replica: 2,
        signature: sig,
      },
    ];
    for (const message of bad) {
      assert.equal(sanitizeConsensusMessage(message, 1, 4), null, JSON.stringify(message).slice(0, 120));
    }
  });

  it('checks state-transfer answers: blocks and certificate shapes', () => {
    const certificate = {
      height: 1,
      view: 0,
      blockHash: digest,
      signatures: [{ validator: 0, signature: sig }],
    };
    const ok = sanitizeCertifiedBlocks(JSON.parse(JSON.stringify([{ block, certificate }])), 4);
    assert.equal(ok?.length, 1);
    assert.equal(
      sanitizeCertifiedBlocks([{ block, certificate: { ...certificate, blockHash: 'x' } }], 4),
      null,
    );
    assert.equal(
      sanitizeCertifiedBlocks(
        [{ block, certificate: { ...certificate, signatures: [{ validator: 9, signature: sig }] } }],
        4,
      ),
      null,
    );
    assert.equal(sanitizeCertifiedBlocks('nope', 4), null);
  });
});
