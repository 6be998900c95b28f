/**
 * The one compliance suite every Store passes (js-libp2p's interface-compliance-tests pattern):
 * storeCompliance(name, factory) registers describe/it blocks; sqlite.test.ts and memory.test.ts
 * call it with their factories. A behaviour tested here holds for both stores by construction.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { storeQueryRowsMax } from '../constants.ts';
import { sha256Hex } from '../crypto/hash.ts';
import type { SignatureHex } from '../encoding/brand.ts';
import {
  blockHash,
  genesisBlock,
  LedgerState,
  txId,
  txInclusionProof,
  verifyTxInclusion,
} from '../ledger/index.ts';
import type { Genesis, StateChange, StateKey, Transaction } from '../ledger/types.ts';
import type { AppendInput, Store } from './store.ts';
import { StorageError } from './store.ts';
import { randomTx, scenarioChain, TestChain } from './testchain.ts';

export interface StoreFactory {
  /** A new, empty store for this genesis. */
  create(genesis: Genesis): Store;
  /** Closes the store and opens it again from wherever it keeps its data. */
  reopen(store: Store): Store;
}

function filled(
  factory: StoreFactory,
  seed = 'compliance',
): { chain: TestChain; store: Store; appends: AppendInput[] } {
  const chain = new TestChain({ seed });
  const store = factory.create(chain.genesis);
  const appends = scenarioChain(chain);
  for (const input of appends) store.appendBlock(input);
  return { chain, store, appends };
}

function throwsStorage(fn: () => unknown, code: string): void {
  assert.throws(fn, (error: unknown) => error instanceof StorageError && error.code === code);
}

export function storeCompliance(name: string, factory: StoreFactory): void {
  describe(`Store compliance: ${name}`, () => {
    describe('a new store', () => {
      it('holds exactly the genesis block at height 0, without a certificate', () => {
        const chain = new TestChain({ seed: 'new' });
        const store = factory.create(chain.genesis);
        const genesis = genesisBlock(chain.genesis);
        assert.deepEqual(store.tip(), { height: 0, hash: blockHash(genesis.header) });
        assert.deepEqual(store.blockByHeight(0)?.block, genesis);
        assert.equal(store.certificate(0), null);
        assert.equal(store.blockByHeight(1), null);
        assert.deepEqual(store.allStateEntries(), []);
        assert.deepEqual(store.verifyChain(), { ok: true, height: 0 });
        store.close();
      });
    });

    describe('appendBlock and the block queries', () => {
      it('stores each block with its hash and certificate, and moves the tip', () => {
        const { store, appends } = filled(factory);
        const last = appends.at(-1)!;
        assert.deepEqual(store.tip(), { height: 5, hash: blockHash(last.block.header) });
        for (const input of appends) {
          const h = input.block.header.height;
          const byHeight = store.blockByHeight(h);
          assert.ok(byHeight !== null);
          assert.deepEqual(byHeight.block, input.block);
          assert.equal(byHeight.hash, blockHash(input.block.header));
          assert.deepEqual(byHeight.certificate, input.certificate);
          assert.deepEqual(store.blockByHash(byHeight.hash), byHeight);
          assert.deepEqual(store.certificate(h), input.certificate);
        }
        assert.equal(store.blockByHash('00'.repeat(32)), null);
        assert.equal(store.certificate(99), null);
        store.close();
      });

      it('returns block ranges in order and bounded by the limit', () => {
        const { store } = filled(factory);
        assert.deepEqual(
          store.blocks(2, 2).map((b) => b.height),
          [2, 3],
        );
        assert.deepEqual(
          store.blocks(0, 100).map((b) => b.height),
          [0, 1, 2, 3, 4, 5],
        );
        assert.deepEqual(store.blocks(6, 10), []);
        assert.deepEqual(store.blocks(3, 0), []);
        assert.ok(store.blocks(0, storeQueryRowsMax * 10).length <= storeQueryRowsMax);
        store.close();
      });

      it('finds every transaction by id, with its height and index, and its inclusion-proof data', () => {
        const { store, appends } = filled(factory);
        for (const input of appends) {
          input.block.txs.forEach((tx, index) => {
            const id = txId(tx);
            const found = store.txById(id);
            assert.deepEqual(found, { txId: id, tx, height: input.block.header.height, index });
            const proof = store.txProofData(id);
            assert.ok(proof !== null);
            assert.equal(proof.height, input.block.header.height);
            assert.deepEqual(proof.header, input.block.header);
            assert.deepEqual(proof.certificate, input.certificate);
            const path = txInclusionProof(proof.txs, proof.index);
            assert.ok(verifyTxInclusion(tx, proof.index, proof.txs.length, path, proof.header.txRoot));
          });
        }
        assert.equal(store.txById('ab'.repeat(32)), null);
        assert.equal(store.txProofData('ab'.repeat(32)), null);
        store.close();
      });
    });

    describe('target, state, device and report queries', () => {
      it('gives the history of a target: every release and attest in order, with signers', () => {
        const { store, chain } = filled(factory);
        const history = store.targetHistory('default');
        assert.deepEqual(
          history.map((h) => [h.type, h.version, h.height, h.index]),
          [
            ['release', 1, 1, 0],
            ['attest', 2, 2, 0],
            ['release', 3, 4, 0],
          ],
        );
        const admins = chain.network.adminKeys.slice(0, chain.genesis.releaseThreshold).map((k) => k.id);
        assert.deepEqual(history[0]?.signers, admins);
        assert.deepEqual(history[1]?.signers, [], 'an attest carries no signature');
        assert.equal(history[2]?.sha256, sha256Hex('3'));
        assert.equal(history[0]?.timestampMs, store.blockByHeight(1)?.block.header.timestampMs);
        assert.equal(history[1]?.txId, txId(store.blockByHeight(2)!.block.txs[0]!));
        assert.deepEqual(
          store.targetHistory('default', { fromHeight: 2, limit: 1 }).map((h) => h.version),
          [2],
        );
        assert.deepEqual(
          store.targetHistory('cams').map((h) => h.version),
          [1],
        );
        assert.deepEqual(store.targetHistory('nothing'), []);
        store.close();
      });

      it('holds the current state entry of every key, with the height that wrote it', () => {
        const { store, chain } = filled(factory);
        const expected = [...chain.state.entries()].sort(([a], [b]) => (a < b ? -1 : 1));
        const stored = store.allStateEntries();
        assert.deepEqual(
          stored.map((s) => [s.key, s.entry]),
          expected,
        );
        const heights = Object.fromEntries(stored.map((s) => [s.key, s.height]));
        assert.deepEqual(heights, {
          'device/dev-1': 5,
          'device/dev-2': 5,
          'target/cams': 2,
          'target/default': 4,
        });
        assert.deepEqual(
          store.stateEntry('target/default' as StateKey),
          chain.state.get('target/default' as StateKey),
        );
        assert.equal(store.stateEntry('target/none' as StateKey), null);
        store.close();
      });

      it('lists the device registry sorted by id, with a cursor', () => {
        const { store } = filled(factory);
        const devices = store.devices();
        assert.deepEqual(
          devices.map((d) => [d.deviceId, d.status, d.lastSeq]),
          [
            ['dev-1', 'enrolled', 3],
            ['dev-2', 'revoked', 0],
          ],
        );
        assert.deepEqual(
          store.devices({ afterDeviceId: 'dev-1' }).map((d) => d.deviceId),
          ['dev-2'],
        );
        assert.deepEqual(
          store.devices({ limit: 1 }).map((d) => d.deviceId),
          ['dev-1'],
        );
        store.close();
      });

      it('lists device reports newest first, per device, per target and in all', () => {
        const { store } = filled(factory);
        const reports = store.deviceReports('dev-1');
        assert.deepEqual(
          reports.map((r) => [r.seq, r.version, r.height, r.status]),
          [
            [3, 3, 5, 'applied'],
            [2, 3, 4, 'applied'],
            [1, 1, 3, 'applied'],
          ],
        );
        assert.equal(reports[2]?.timestampMs, store.blockByHeight(3)?.block.header.timestampMs);
        assert.deepEqual(
          store.deviceReports(null, { limit: 2 }).map((r) => r.seq),
          [3, 2],
        );
        assert.deepEqual(store.deviceReports('dev-2'), []);
        assert.deepEqual(
          store.reportsForTarget('default').map((r) => r.seq),
          [3, 2, 1],
        );
        assert.deepEqual(store.reportsForTarget('cams'), []);
        store.close();
      });
    });

    describe('refusals', () => {
      it('refuses a block that is not tip+1, and leaves the store as it was', () => {
        const chain = new TestChain({ seed: 'order' });
        const store = factory.create(chain.genesis);
        const [b1, b2] = scenarioChain(chain);
        throwsStorage(() => store.appendBlock(b2!), 'APPEND_OUT_OF_ORDER');
        store.appendBlock(b1!);
        throwsStorage(() => store.appendBlock(b1!), 'APPEND_OUT_OF_ORDER');
        assert.equal(store.tip().height, 1);
        store.appendBlock(b2!);
        assert.equal(store.tip().height, 2);
        store.close();
      });

      it('refuses a block whose prevHash is not the tip hash (a fork)', () => {
        const chain = new TestChain({ seed: 'fork' });
        const fork = new TestChain({ seed: 'fork' });
        const store = factory.create(chain.genesis);
        store.appendBlock(chain.next([chain.release('default')]));
        fork.next([fork.release('other')]);
        const forked = fork.next([fork.release('other')]);
        throwsStorage(() => store.appendBlock(forked), 'APPEND_OUT_OF_ORDER');
        assert.equal(store.tip().height, 1);
        assert.equal(store.blockByHeight(2), null);
        store.close();
      });

      it('refuses a missing certificate, a certificate for another block, and a block of another chain', () => {
        const chain = new TestChain({ seed: 'cert' });
        const store = factory.create(chain.genesis);
        const good = chain.next([chain.release('default')]);
        throwsStorage(() => store.appendBlock({ ...good, certificate: null }), 'BAD_APPEND');
        const wrong = { ...good.certificate!, blockHash: blockHash(genesisBlock(chain.genesis).header) };
        throwsStorage(() => store.appendBlock({ ...good, certificate: wrong }), 'BAD_APPEND');
        const other = new TestChain({ seed: 'cert', chainId: 'another-chain' });
        const foreign = other.next([other.release('default')]);
        throwsStorage(
          () =>
            store.appendBlock({
              ...foreign,
              block: { ...foreign.block, header: { ...foreign.block.header, prevHash: store.tip().hash } },
            }),
          'BAD_APPEND',
        );
        assert.equal(store.tip().height, 0);
        store.appendBlock(good);
        assert.equal(store.tip().height, 1);
        store.close();
      });
    });

    describe('atomicity', () => {
      it('a failing append leaves no block, transaction, certificate or state behind', () => {
        const chain = new TestChain({ seed: 'atomic' });
        const store = factory.create(chain.genesis);
        const [b1, b2] = scenarioChain(chain);
        store.appendBlock(b1!);
        const before = store.allStateEntries();
        // The second state change cannot be written: its entry holds a value JSON cannot represent.
        const first = b2!.changes[0]!;
        const poisoned: StateChange = {
          key: b2!.changes[1]!.key,
          entry: { ...b2!.changes[1]!.entry, version: Number.NaN } as StateChange['entry'],
        };
        assert.throws(() => store.appendBlock({ ...b2!, changes: [first, poisoned] }));
        assert.equal(store.tip().height, 1);
        assert.equal(store.blockByHeight(2), null);
        assert.equal(store.certificate(2), null);
        for (const tx of b2!.block.txs) assert.equal(store.txById(txId(tx)), null);
        assert.deepEqual(store.allStateEntries(), before);
        assert.deepEqual(store.targetHistory('cams'), []);
        store.appendBlock(b2!);
        assert.equal(store.tip().height, 2);
        assert.deepEqual(store.verifyChain(), { ok: true, height: 2 });
        store.close();
      });
    });

    describe('reopen', () => {
      it('finds every block, state entry, content copy and consensus record again', () => {
        const { store, appends } = filled(factory, 'reopen');
        const content = Buffer.from('released content');
        store.putContent(sha256Hex(content), content);
        store.appendConsensusRecords([{ seq: 6, kind: 'prepare', data: { view: 1, digest: 'ab' } }]);
        const state = store.allStateEntries();
        const reopened = factory.reopen(store);
        assert.deepEqual(reopened.tip(), { height: 5, hash: blockHash(appends.at(-1)!.block.header) });
        assert.deepEqual(reopened.allStateEntries(), state);
        assert.deepEqual(reopened.blockByHeight(3)?.block, appends[2]!.block);
        assert.deepEqual(Buffer.from(reopened.getContent(sha256Hex(content))!), content);
        assert.deepEqual(reopened.loadConsensusRecords(), [
          { seq: 6, kind: 'prepare', data: { view: 1, digest: 'ab' } },
        ]);
        assert.deepEqual(reopened.verifyChain(), { ok: true, height: 5 });
        reopened.close();
      });
    });

    describe('content copies', () => {
      it('stores content under its SHA-256 and refuses bytes that do not match, or are too large', () => {
        const chain = new TestChain({ seed: 'content' });
        const store = factory.create(chain.genesis);
        const bytes = Buffer.from('key=value\n');
        const hash = sha256Hex(bytes);
        assert.equal(store.getContent(hash), null);
        store.putContent(hash, bytes);
        store.putContent(hash, bytes);
        assert.deepEqual(Buffer.from(store.getContent(hash)!), bytes);
        throwsStorage(() => store.putContent(sha256Hex('other'), bytes), 'CONTENT_HASH_MISMATCH');
        const big = Buffer.alloc(chain.genesis.policy.contentCopyBytesMax + 1);
        throwsStorage(() => store.putContent(sha256Hex(big), big), 'CONTENT_TOO_LARGE');
        assert.equal(store.getContent(sha256Hex(big)), null);
        store.close();
      });
    });

    describe('the consensus log', () => {
      it('appends records in order, loads them all, and prunes below a sequence number', () => {
        const chain = new TestChain({ seed: 'log' });
        const store = factory.create(chain.genesis);
        assert.deepEqual(store.loadConsensusRecords(), []);
        const records = [
          { seq: 1, kind: 'pre-prepare', data: { block: { header: { height: 1 } } } },
          { seq: 1, kind: 'prepare', data: { digest: 'aa' } },
          { seq: 2, kind: 'commit', data: { digest: 'bb', list: [1, 2, 3] } },
          { seq: 0, kind: 'view', data: { view: 3, status: 'normal' } },
        ];
        store.appendConsensusRecords(records.slice(0, 2));
        store.appendConsensusRecords(records.slice(2));
        store.appendConsensusRecords([]);
        assert.deepEqual(store.loadConsensusRecords(), records);
        assert.equal(store.pruneConsensusRecords(2), 3);
        assert.deepEqual(store.loadConsensusRecords(), [records[2]]);
        assert.equal(store.pruneConsensusRecords(2), 0);
        store.close();
      });

      it('refuses records that would not read back as written, all or nothing', () => {
        const chain = new TestChain({ seed: 'log-bad' });
        const store = factory.create(chain.genesis);
        const good = { seq: 1, kind: 'prepare', data: {} };
        throwsStorage(
          () => store.appendConsensusRecords([good, { seq: 2, kind: 'commit', data: { x: Number.NaN } }]),
          'BAD_CONSENSUS_RECORD',
        );
        throwsStorage(
          () => store.appendConsensusRecords([{ seq: -1, kind: 'view', data: {} }]),
          'BAD_CONSENSUS_RECORD',
        );
        throwsStorage(
          () => store.appendConsensusRecords([{ seq: 1, kind: '', data: {} }]),
          'BAD_CONSENSUS_RECORD',
        );
        throwsStorage(
          () => store.appendConsensusRecords([{ seq: 3, kind: 'commit', data: { list: [1, undefined] } }]),
          'BAD_CONSENSUS_RECORD',
        );
        throwsStorage(
          () =>
            store.appendConsensusRecords([{ seq: 3, kind: 'commit', data: { n: Number.POSITIVE_INFINITY } }]),
          'BAD_CONSENSUS_RECORD',
        );
        assert.deepEqual(store.loadConsensusRecords(), []);
        store.close();
      });
    });

    describe('verifyChain', () => {
      it('accepts an untouched chain up to its tip', () => {
        const { store } = filled(factory, 'verify');
        assert.deepEqual(store.verifyChain(), { ok: true, height: 5 });
        store.close();
      });

      it('names the height of a block whose certificate signatures do not verify', () => {
        const chain = new TestChain({ seed: 'forged' });
        const store = factory.create(chain.genesis);
        const appends = scenarioChain(chain);
        appends.forEach((input, i) => {
          if (i !== 2) {
            store.appendBlock(input);
            return;
          }
          const cert = input.certificate!;
          const forged = {
            ...cert,
            signatures: cert.signatures.map((s) => ({ ...s, signature: 'ab'.repeat(64) as SignatureHex })),
          };
          store.appendBlock({ ...input, certificate: forged });
        });
        const result = store.verifyChain();
        assert.equal(result.ok, false);
        assert.equal(result.height, 3);
        assert.match(!result.ok ? result.reason : '', /certificate/);
        assert.deepEqual(store.verifyChain({ verifyCertificateSignatures: false }), { ok: true, height: 5 });
        store.close();
      });
    });

    describe('verifyChain and transaction signatures', () => {
      it('names the height of a certified block holding a transaction with a forged signature', () => {
        const chain = new TestChain({ seed: 'forged-tx' });
        const store = factory.create(chain.genesis);
        store.appendBlock(chain.next([chain.release('default')]));
        const honest = chain.enroll('dev-forged');
        const signer = honest.signatures[0]?.signer ?? assert.fail('an enrollment is signed');
        const forged = { ...honest, signatures: [{ signer, signature: 'cd'.repeat(64) as SignatureHex }] };
        store.appendBlock(chain.next([forged], 0, { skipSignatureChecks: true }));
        store.appendBlock(chain.next([chain.release('default')]));
        const result = store.verifyChain();
        assert.equal(result.ok, false);
        assert.equal(result.height, 2);
        assert.match(!result.ok ? result.reason : '', /signature/);
        assert.deepEqual(store.verifyChain({ verifyTxSignatures: false }), { ok: true, height: 3 });
        store.close();
      });
    });

    describe('close', () => {
      it('a closed store refuses reads and writes with CLOSED, and closing twice is harmless', () => {
        const chain = new TestChain({ seed: 'closed' });
        const store = factory.create(chain.genesis);
        const input = chain.next([chain.release('default')]);
        store.close();
        store.close();
        throwsStorage(() => store.tip(), 'CLOSED');
        throwsStorage(() => store.appendBlock(input), 'CLOSED');
        throwsStorage(() => store.blockByHeight(0), 'CLOSED');
        throwsStorage(() => store.appendConsensusRecords([{ seq: 1, kind: 'view', data: {} }]), 'CLOSED');
        throwsStorage(() => store.verifyChain(), 'CLOSED');
      });
    });

    describe('determinism', () => {
      it('random valid chains give the state root of their last header when rebuilt from the store', () => {
        fc.assert(
          fc.property(
            fc.array(fc.array(fc.integer({ min: 0, max: 5 }), { minLength: 0, maxLength: 4 }), {
              minLength: 1,
              maxLength: 4,
            }),
            (plan) => {
              const chain = new TestChain({ seed: 'determinism' });
              const store = factory.create(chain.genesis);
              const enrolled: string[] = [];
              for (const kinds of plan) {
                const txs: Transaction[] = [];
                for (const kind of kinds) txs.push(randomTx(chain, kind, enrolled));
                const input = chain.next(txs);
                store.appendBlock(input);
              }
              const rebuilt = LedgerState.fromEntries(store.allStateEntries().map((s) => s.entry));
              const tip = store.blockByHeight(store.tip().height)!;
              assert.equal(rebuilt.root, tip.block.header.stateRoot);
              assert.equal(rebuilt.root, chain.state.root);
              assert.deepEqual(store.verifyChain(), { ok: true, height: plan.length });
              store.close();
            },
          ),
          { numRuns: 15 },
        );
      });
    });
  });
}
