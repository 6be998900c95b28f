import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { blockTxsMax } from '../constants.ts';
import { sha256Hex } from '../crypto/hash.ts';
import type { DeviceId, Hash32Hex, TargetName, ValidatorId, View } from '../encoding/brand.ts';
import { verifyStateProof } from '../merkle/sparse.ts';
import { applyBlock, buildBlock } from './apply.ts';
import { blockHash, genesisBlock, txRoot } from './block.ts';
import { LedgerError, type LedgerRule } from './errors.ts';
import { genesisHash } from './genesis.ts';
import { EMPTY_STATE_ROOT, LedgerState, stateRootFromScratch } from './state.ts';
import { createTestNetwork, seededKey } from './testing.ts';
import { attestTx, signAsAdmin, signAsDevice, signRelease, txId } from './tx.ts';
import type { Block, BlockHeader, ReleaseBody, Transaction } from './types.ts';

const { genesis, adminKeys } = createTestNetwork({ seed: 'apply-tests' });
const admins = adminKeys.slice(0, 2);
const params = (timestampMs: number) => ({ view: 0 as View, proposer: 1 as ValidatorId, timestampMs });
const g0 = genesisBlock(genesis);

function release(target: string, version: number): Transaction {
  const body: ReleaseBody = {
    type: 'release',
    chainId: genesis.chainId,
    target: target as TargetName,
    version,
    sha256: sha256Hex(`${target} v${version}`),
    size: 100 + version,
    mediaType: 'application/json',
  };
  return signRelease(body, admins);
}

function enroll(id: string): Transaction {
  return signAsAdmin(
    {
      type: 'device-enroll',
      chainId: genesis.chainId,
      deviceId: id as DeviceId,
      publicKey: deviceKeys(id).publicKeyHex,
      group: 'g',
      target: 'default' as TargetName,
    },
    adminKeys[0]!.id,
    adminKeys[0]!.privateKey,
  );
}

const keyMemo = new Map<string, ReturnType<typeof seededKey>>();
function deviceKeys(id: string): ReturnType<typeof seededKey> {
  let key = keyMemo.get(id);
  if (key === undefined) {
    key = seededKey(`apply-tests/device/${id}`);
    keyMemo.set(id, key);
  }
  return key;
}

function expectBlockError(
  fn: () => unknown,
  code: string,
  rule: LedgerRule,
  extra: object = {},
): LedgerError {
  let caught: unknown;
  assert.throws(fn, (error: unknown) => {
    caught = error;
    return true;
  });
  assert.ok(caught instanceof LedgerError, String(caught));
  assert.equal(caught.code, code, caught.message);
  assert.equal(caught.data.rule, rule, caught.message);
  for (const [k, v] of Object.entries(extra))
    assert.equal((caught.data as unknown as Record<string, unknown>)[k], v);
  return caught;
}

/** The block built from these txs on genesis, asserting none was rejected. */
function build(txs: readonly Transaction[], parent: BlockHeader = g0.header, state = LedgerState.empty()) {
  const built = buildBlock(genesis, parent, state, txs, params(parent.timestampMs + 10));
  assert.deepEqual(
    built.rejected.map((r) => r.reason),
    [],
  );
  return built;
}

function withHeader(block: Block, change: Partial<Record<keyof BlockHeader, unknown>>): Block {
  return { ...block, header: { ...block.header, ...change } as BlockHeader };
}

describe('genesisBlock', () => {
  it('anchors height 0 to the genesis hash with no transactions and the empty state', () => {
    assert.equal(g0.header.height, 0);
    assert.equal(g0.header.prevHash, genesisHash(genesis));
    assert.equal(g0.header.timestampMs, genesis.genesisTimeMs);
    assert.equal(g0.header.stateRoot, EMPTY_STATE_ROOT);
    assert.equal(g0.header.txRoot, sha256Hex(''));
    assert.equal(g0.header.txCount, 0);
    assert.equal(g0.header.view, 0);
    assert.equal(g0.header.proposer, 0);
    assert.deepEqual(g0.txs, []);
  });
});

describe('applyBlock', () => {
  it('accepts what buildBlock built and leaves the parent state usable', () => {
    const parentState = LedgerState.empty();
    const built = build([release('a', 1), release('b', 1)], g0.header, parentState);
    const applied = applyBlock(genesis, g0.header, parentState, built.block);
    assert.equal(applied.state.root, built.block.header.stateRoot);
    assert.equal(parentState.root, EMPTY_STATE_ROOT);
    assert.equal(parentState.size, 0);
    assert.equal(applied.state.size, 2);
    // A second child of the same parent state is independent of the first.
    const sibling = build([release('c', 1)], g0.header, parentState);
    assert.equal(sibling.state.size, 1);
    assert.equal(applied.state.target('c'), undefined);
  });

  it('applies transactions in order and lists each changed key once with its final entry', () => {
    const built = build([release('a', 1), release('a', 2), enroll('d1')]);
    assert.equal(built.changes.length, 2);
    assert.equal(built.changes[0]?.key, 'target/a');
    assert.equal((built.changes[0]?.entry as { version: number } | undefined)?.version, 2);
    assert.equal(built.changes[1]?.key, 'device/d1');
    const applied = applyBlock(genesis, g0.header, LedgerState.empty(), built.block);
    assert.deepEqual(applied.changes, built.changes);
  });

  it('refuses two releases of one target whose versions do not increase within the block', () => {
    const txs = [release('a', 2), release('a', 1)];
    const block: Block = { header: { ...g0.header, height: 1 } as BlockHeader, txs };
    const forged = withHeader(block, {
      prevHash: blockHash(g0.header),
      txCount: txs.length,
      txRoot: txRoot(txs),
      timestampMs: g0.header.timestampMs,
    });
    const error = expectBlockError(
      () => applyBlock(genesis, g0.header, LedgerState.empty(), forged),
      'TX_INVALID',
      'version-not-newer',
      {
        height: 1,
        txIndex: 1,
      },
    );
    assert.match(error.message, /block 1, transaction 1/);
  });

  it('refuses a transaction repeated in one block', () => {
    const tx = release('a', 1);
    const built = build([tx]);
    const doubled: Block = {
      header: { ...built.block.header, txCount: 2, txRoot: txRoot([tx, tx]) },
      txs: [tx, tx],
    };
    expectBlockError(
      () => applyBlock(genesis, g0.header, LedgerState.empty(), doubled),
      'TX_INVALID',
      'duplicate-tx',
      { txIndex: 1 },
    );
  });

  it('refuses a malformed transaction naming its index', () => {
    const built = build([release('a', 1)]);
    const txs = [{ ...built.block.txs[0], extra: true }] as unknown as Transaction[];
    expectBlockError(
      () => applyBlock(genesis, g0.header, LedgerState.empty(), { ...built.block, txs }),
      'TX_INVALID',
      'schema',
      {
        txIndex: 0,
      },
    );
  });

  it('refuses every wrong header field', () => {
    const { block } = build([release('a', 1)]);
    const empty = LedgerState.empty();
    const cases: [Partial<Record<keyof BlockHeader, unknown>>, LedgerRule][] = [
      [{ chainId: 'other' }, 'header'],
      [{ height: 2 }, 'header'],
      [{ prevHash: sha256Hex('x') }, 'header'],
      [{ timestampMs: g0.header.timestampMs - 1 }, 'header'],
      [{ validatorSetHash: sha256Hex('x') }, 'validator-set'],
      [{ txRoot: sha256Hex('x') }, 'tx-root'],
      [{ stateRoot: sha256Hex('x') }, 'state-root'],
      [{ proposer: 4 }, 'header'],
      // The count is part of what a transaction proof pins, so it must be exactly the block's.
      [{ txCount: 0 }, 'header'],
      [{ txCount: 2 }, 'header'],
      [{ txCount: -1 }, 'header'],
      [{ txCount: 1.5 }, 'header'],
      [{ txCount: '1' }, 'header'],
      [{ view: -1 }, 'header'],
      [{ stateRoot: 'ABC' }, 'header'],
    ];
    for (const [change, rule] of cases) {
      expectBlockError(
        () => applyBlock(genesis, g0.header, empty, withHeader(block, change)),
        'BLOCK_INVALID',
        rule,
        { height: 1 },
      );
    }
    const extra = { ...block, header: { ...block.header, gas: 1 } as BlockHeader };
    expectBlockError(() => applyBlock(genesis, g0.header, empty, extra), 'BLOCK_INVALID', 'header');
    // The untouched block is fine.
    assert.equal(applyBlock(genesis, g0.header, empty, block).state.root, block.header.stateRoot);
  });

  it('refuses a block with more transactions than blockTxsMax', () => {
    const txs = Array.from({ length: blockTxsMax + 1 }, () => release('a', 1));
    const block: Block = { header: g0.header, txs };
    expectBlockError(
      () =>
        applyBlock(
          genesis,
          g0.header,
          LedgerState.empty(),
          withHeader(block, { height: 1, prevHash: blockHash(g0.header) }),
        ),
      'BLOCK_INVALID',
      'block-limits',
    );
  });
});

describe('buildBlock', () => {
  it('skips invalid candidates with reasons, defers what does not fit, and keeps time monotonic', () => {
    const bad = release('a', 1);
    const forged = { ...bad, signatures: [bad.signatures[0]!] };
    const built = buildBlock(
      genesis,
      g0.header,
      LedgerState.empty(),
      [release('a', 1), forged, release('a', 1), { nonsense: true }, release('a', 2)],
      params(g0.header.timestampMs - 5_000),
    );
    assert.equal(built.block.txs.length, 2);
    assert.deepEqual(
      built.rejected.map((r) => r.error.data.rule),
      ['threshold-not-met', 'duplicate-tx', 'schema'],
    );
    assert.deepEqual(
      built.rejected.map((r) => r.txId),
      [txId(forged), txId(built.block.txs[0]!), null],
    );
    assert.equal(built.block.header.timestampMs, g0.header.timestampMs);
    assert.equal(built.block.header.proposer, 1);
    assert.equal(built.state.target('a')?.version, 2);
  });

  it('stops at blockTxsMax and defers the rest', () => {
    const candidates = Array.from({ length: blockTxsMax + 5 }, (_, i) => enroll(`dev-${i}`));
    // The signatures are real; skipping their verification keeps this test fast and is what the node does.
    const built = buildBlock(genesis, g0.header, LedgerState.empty(), candidates, params(1), {
      signatureChecked: () => true,
    });
    assert.equal(built.block.txs.length, blockTxsMax);
    assert.equal(built.deferred.length, 5);
    assert.equal(built.state.size, blockTxsMax);
  });
});

// Random transaction sequences for the property tests. Each command may be valid or not; the
// primary's buildBlock drops the invalid ones, as it would in production.
const TARGETS = ['default', 'group:cams', 'fw', 'x'];
const DEVICES = ['d0', 'd1', 'd2', 'd3', 'd4'];
const command = fc.oneof(
  fc.record({
    kind: fc.constant('release' as const),
    target: fc.constantFrom(...TARGETS),
    version: fc.integer({ min: 1, max: 12 }),
  }),
  fc.record({
    kind: fc.constant('attest' as const),
    target: fc.constantFrom(...TARGETS),
    version: fc.integer({ min: 1, max: 12 }),
  }),
  fc.record({ kind: fc.constant('enroll' as const), device: fc.constantFrom(...DEVICES) }),
  fc.record({ kind: fc.constant('revoke' as const), device: fc.constantFrom(...DEVICES) }),
  fc.record({
    kind: fc.constant('report' as const),
    device: fc.constantFrom(...DEVICES),
    seq: fc.integer({ min: 1, max: 8 }),
  }),
);
type Command = typeof command extends fc.Arbitrary<infer T> ? T : never;

function toTx(c: Command): Transaction {
  switch (c.kind) {
    case 'release':
      return release(c.target, c.version);
    case 'attest':
      return attestTx(
        genesis.chainId,
        c.target as TargetName,
        sha256Hex(`attest ${c.target} ${c.version}`) as Hash32Hex,
        { version: c.version, size: 7 },
      );
    case 'enroll':
      return enroll(c.device);
    case 'revoke':
      return signAsAdmin(
        { type: 'device-revoke', chainId: genesis.chainId, deviceId: c.device as DeviceId, reason: 'test' },
        adminKeys[1]!.id,
        adminKeys[1]!.privateKey,
      );
    case 'report':
      return signAsDevice(
        {
          type: 'device-report',
          chainId: genesis.chainId,
          deviceId: c.device as DeviceId,
          seq: c.seq,
          target: 'default' as TargetName,
          version: 1,
          sha256: sha256Hex('x') as Hash32Hex,
          status: 'applied',
          detail: '',
        },
        deviceKeys(c.device).privateKey,
      );
  }
}

/** Builds a chain from batches of commands; returns the blocks and every intermediate state. */
function buildChain(batches: readonly (readonly Command[])[]): { blocks: Block[]; states: LedgerState[] } {
  let parent = g0.header;
  let state = LedgerState.empty();
  const blocks: Block[] = [];
  const states: LedgerState[] = [];
  batches.forEach((batch, i) => {
    const built = buildBlock(genesis, parent, state, batch.map(toTx), params(parent.timestampMs + i * 7));
    blocks.push(built.block);
    states.push(built.state);
    parent = built.block.header;
    state = built.state;
  });
  return { blocks, states };
}

function replay(blocks: readonly Block[]): LedgerState {
  let parent = g0.header;
  let state = LedgerState.empty();
  for (const block of blocks) {
    state = applyBlock(genesis, parent, state, block).state;
    parent = block.header;
  }
  return state;
}

/** A deep copy whose objects list their keys in a seed-dependent order. */
function shuffleKeys(value: unknown, seed: number): unknown {
  if (Array.isArray(value)) return value.map((v, i) => shuffleKeys(v, seed + i));
  if (typeof value !== 'object' || value === null) return value;
  const entries = Object.entries(value);
  entries.sort((a, b) => hashOrder(a[0], seed) - hashOrder(b[0], seed));
  return Object.fromEntries(entries.map(([k, v]) => [k, shuffleKeys(v, seed * 31 + k.length)]));
}

function hashOrder(key: string, seed: number): number {
  return Number.parseInt(sha256Hex(`${seed}/${key}`).slice(0, 8), 16);
}

const batches = fc.array(fc.array(command, { minLength: 0, maxLength: 6 }), { minLength: 1, maxLength: 6 });

describe('properties', () => {
  it('apply is deterministic: replaying the blocks, also with shuffled key order, gives the same roots', () => {
    fc.assert(
      fc.property(batches, fc.nat(), (list, seed) => {
        const { blocks, states } = buildChain(list);
        const final = states.at(-1)!;
        assert.equal(replay(blocks).root, final.root);
        assert.equal(replay(blocks).root, final.root);
        const shuffled = blocks.map((b, i) => shuffleKeys(b, seed + i) as Block);
        assert.equal(replay(shuffled).root, final.root);
        assert.deepEqual(
          shuffled.map((b) => blockHash(b.header)),
          blocks.map((b) => blockHash(b.header)),
        );
      }),
      { numRuns: 25 },
    );
  });

  it('the incremental state root equals the from-scratch root after every block', () => {
    fc.assert(
      fc.property(batches, (list) => {
        const { blocks, states } = buildChain(list);
        states.forEach((state, i) => {
          const entries = [...state.entries()].map(([, entry]) => entry);
          assert.equal(stateRootFromScratch(entries), state.root);
          assert.equal(LedgerState.fromEntries(entries).root, state.root);
          assert.equal(blocks[i]!.header.stateRoot, state.root);
        });
      }),
      { numRuns: 40 },
    );
  });

  it('every state entry has a proof against the header state root, and a mutated entry fails', () => {
    fc.assert(
      fc.property(batches, (list) => {
        const { blocks, states } = buildChain(list);
        const state = states.at(-1)!;
        const root = blocks.at(-1)!.header.stateRoot;
        for (const [key, entry] of state.entries()) {
          const proof = state.proof(key);
          assert.ok(verifyStateProof(root, key, entry, proof));
          const json = JSON.parse(JSON.stringify(proof));
          assert.ok(verifyStateProof(root, key, entry, json), 'the proof survives JSON');
          // One field changed, whatever the kind: the proof must no longer verify.
          const mutated = { ...entry, kind: `${entry.kind}-changed` };
          assert.ok(!verifyStateProof(root, key, mutated, proof));
        }
        for (const name of ['never-released', 'nope']) {
          const key = `target/${name}`;
          assert.ok(verifyStateProof(root, key, null, state.proof(key as never)));
        }
      }),
      { numRuns: 25 },
    );
  });

  it('matches a simple model of versions, devices and report sequence numbers', () => {
    fc.assert(
      fc.property(batches, (list) => {
        const { states } = buildChain(list);
        const versions = new Map<string, number>();
        const devices = new Map<string, { status: string; seq: number }>();
        for (const c of list.flat()) {
          if (c.kind === 'release' || c.kind === 'attest') {
            if (c.version > (versions.get(c.target) ?? 0)) versions.set(c.target, c.version);
          } else if (c.kind === 'enroll') {
            if (!devices.has(c.device)) devices.set(c.device, { status: 'enrolled', seq: 0 });
          } else {
            const d = devices.get(c.device);
            if (d === undefined || d.status === 'revoked') continue;
            if (c.kind === 'revoke') d.status = 'revoked';
            else if (c.seq > d.seq) d.seq = c.seq;
          }
        }
        const state = states.at(-1)!;
        for (const t of TARGETS) assert.equal(state.target(t)?.version, versions.get(t));
        for (const id of DEVICES) {
          const d = state.device(id);
          const m = devices.get(id);
          assert.equal(d?.status, m?.status);
          assert.equal(d?.lastSeq, m?.seq);
        }
      }),
      { numRuns: 40 },
    );
  });
});

describe('hostile blocks', () => {
  it('property: applyBlock refuses any malformed block or header with a LedgerError, never another error', () => {
    const { block } = build([release('a', 1)]);
    const blocks = fc.oneof(
      fc.jsonValue(),
      fc.record({ header: fc.jsonValue(), txs: fc.constant(block.txs) }),
      fc.record({ header: fc.constant(block.header), txs: fc.array(fc.jsonValue(), { maxLength: 3 }) }),
      fc
        .constantFrom(...Object.keys(block.header))
        .chain((key) =>
          fc.jsonValue().map((v) => ({ header: { ...block.header, [key]: v }, txs: block.txs })),
        ),
    );
    fc.assert(
      fc.property(blocks, (candidate) => {
        try {
          applyBlock(genesis, g0.header, LedgerState.empty(), candidate as Block);
        } catch (error) {
          assert.ok(error instanceof LedgerError, String(error));
          return;
        }
        assert.equal(
          JSON.stringify(candidate),
          JSON.stringify(block),
          'only the valid block itself may apply',
        );
      }),
      { numRuns: 300 },
    );
  });
});
