import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { Domain } from '../crypto/domains.ts';
import { sign } from '../crypto/ed25519.ts';
import type { ValidatorId, View } from '../encoding/brand.ts';
import { applyBlock, buildBlock } from './apply.ts';
import { genesisBlock } from './block.ts';
import type { LedgerRule } from './errors.ts';
import { LedgerState } from './state.ts';
import { createTestNetwork } from './testing.ts';
import { checkTransaction, parseTransaction, signHeartbeat, txId } from './tx.ts';
import type { BlockHeader, HeartbeatBody, Transaction } from './types.ts';

const { genesis, validatorKeys } = createTestNetwork({ seed: 'heartbeat-tests' });
const key = (id: number) => {
  const k = validatorKeys[id];
  assert.ok(k !== undefined);
  return k.privateKey;
};
const T0 = genesis.genesisTimeMs + 10_000;

/** Commits one block of these transactions, checking that applyBlock agrees with buildBlock. */
function commit(parent: BlockHeader, state: LedgerState, txs: readonly Transaction[]) {
  const built = buildBlock(genesis, parent, state, txs, {
    view: 0 as View,
    proposer: 0 as ValidatorId,
    timestampMs: parent.timestampMs + 1000,
  });
  const applied = applyBlock(genesis, parent, state, built.block);
  assert.equal(applied.state.root, built.state.root);
  return built;
}

function expectRejected(state: LedgerState, tx: unknown, rule: LedgerRule): void {
  const result = checkTransaction(genesis, state, tx);
  assert.equal(result.ok, false, 'the heartbeat should be rejected');
  if (!result.ok) assert.equal(result.error.data.rule, rule, result.error.message);
}

describe('heartbeat transactions', () => {
  it('commit a block whose only change is the submitter heartbeat entry', () => {
    const g0 = genesisBlock(genesis);
    const tx = signHeartbeat(genesis, 2 as ValidatorId, key(2), T0);
    assert.deepEqual(tx.body, {
      type: 'heartbeat',
      chainId: genesis.chainId,
      submitter: 2 as ValidatorId,
      timestampMs: T0,
    } satisfies HeartbeatBody);
    assert.deepEqual(
      tx.signatures.map((s) => s.signer),
      ['2'],
    );
    const built = commit(g0.header, LedgerState.empty(), [tx]);
    assert.equal(built.block.header.txCount, 1);
    assert.deepEqual(built.rejected, []);
    assert.deepEqual(built.changes, [
      {
        key: 'heartbeat/2',
        entry: { kind: 'heartbeat', submitter: 2, timestampMs: T0, height: 1, txId: txId(tx) },
      },
    ]);
    assert.equal(built.state.size, 1);
    assert.equal(built.state.heartbeat(2 as ValidatorId)?.timestampMs, T0);
    assert.equal(built.state.target('default'), undefined);
  });

  it('refuse a replay and a clock that went back, per validator only', () => {
    const g0 = genesisBlock(genesis);
    const first = signHeartbeat(genesis, 0 as ValidatorId, key(0), T0);
    const b1 = commit(g0.header, LedgerState.empty(), [first]);
    expectRejected(b1.state, first, 'heartbeat-not-newer');
    expectRejected(b1.state, signHeartbeat(genesis, 0 as ValidatorId, key(0), T0 - 1), 'heartbeat-not-newer');
    // Another validator's heartbeats are independent: one clock far ahead cannot stall the others.
    assert.ok(checkTransaction(genesis, b1.state, signHeartbeat(genesis, 1 as ValidatorId, key(1), 5)).ok);
    assert.ok(
      checkTransaction(genesis, b1.state, signHeartbeat(genesis, 0 as ValidatorId, key(0), T0 + 1)).ok,
    );
    // Within one block the second of two equal-time heartbeats is refused, the primary drops it.
    const again = signHeartbeat(genesis, 3 as ValidatorId, key(3), T0);
    const older = signHeartbeat(genesis, 3 as ValidatorId, key(3), T0 - 5);
    const b2 = buildBlock(genesis, b1.block.header, b1.state, [again, older], {
      view: 0 as View,
      proposer: 0 as ValidatorId,
      timestampMs: T0,
    });
    assert.equal(b2.block.txs.length, 1);
    assert.deepEqual(
      b2.rejected.map((r) => r.error.data.rule),
      ['heartbeat-not-newer'],
    );
  });

  it('refuse signers other than the submitter, bad signatures and unknown submitters', () => {
    const empty = LedgerState.empty();
    const body: HeartbeatBody = {
      type: 'heartbeat',
      chainId: genesis.chainId,
      submitter: 1 as ValidatorId,
      timestampMs: T0,
    };
    const byOther = {
      body,
      signatures: [{ signer: '0', signature: sign(Domain.transaction, body, key(0)) }],
    };
    expectRejected(empty, byOther, 'unknown-signer');
    const wrongKey = {
      body,
      signatures: [{ signer: '1', signature: sign(Domain.transaction, body, key(0)) }],
    };
    expectRejected(empty, wrongKey, 'bad-signature');
    const wrongDomain = {
      body,
      signatures: [{ signer: '1', signature: sign(Domain.releaseApproval, body, key(1)) }],
    };
    expectRejected(empty, wrongDomain, 'bad-signature');
    const outsider = { ...body, submitter: 4 as ValidatorId };
    expectRejected(
      empty,
      {
        body: outsider,
        signatures: [{ signer: '4', signature: sign(Domain.transaction, outsider, key(0)) }],
      },
      'unknown-signer',
    );
    const otherChain = { ...body, chainId: 'elsewhere' };
    expectRejected(
      empty,
      {
        body: otherChain,
        signatures: [{ signer: '1', signature: sign(Domain.transaction, otherChain, key(1)) }],
      },
      'chain-id',
    );
  });

  it('parse strictly: exact fields, integer timestamps', () => {
    const tx = signHeartbeat(genesis, 1 as ValidatorId, key(1), T0);
    assert.deepEqual(parseTransaction(JSON.parse(JSON.stringify(tx))), tx);
    const empty = LedgerState.empty();
    for (const change of [{ timestampMs: -1 }, { timestampMs: 1.5 }, { timestampMs: '1' }, { extra: 1 }]) {
      expectRejected(empty, { ...tx, body: { ...tx.body, ...change } }, 'schema');
    }
    const { timestampMs: _, ...missing } = tx.body as HeartbeatBody;
    expectRejected(empty, { ...tx, body: missing }, 'schema');
  });

  it('property: a validator heartbeat sequence applies exactly when the timestamps strictly increase', () => {
    fc.assert(
      fc.property(fc.array(fc.integer({ min: 0, max: 20 }), { minLength: 1, maxLength: 8 }), (times) => {
        let state = LedgerState.empty();
        let last = -1;
        for (const t of times) {
          const result = checkTransaction(
            genesis,
            state,
            signHeartbeat(genesis, 0 as ValidatorId, key(0), t),
          );
          assert.equal(result.ok, t > last, `timestamp ${t} after ${last}`);
          if (result.ok) {
            state = state.with([result.change]);
            last = t;
          }
        }
      }),
      { numRuns: 60 },
    );
  });
});
