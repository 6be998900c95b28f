import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { storeCompliance } from './compliance.ts';
import { MemoryStore } from './memory.ts';
import type { Store } from './store.ts';
import { scenarioChain, TestChain } from './testchain.ts';

storeCompliance('MemoryStore', {
  create: (genesis) => MemoryStore.create(genesis),
  reopen: (store: Store) => {
    assert.ok(store instanceof MemoryStore);
    store.close();
    return store.reopen();
  },
});

describe('MemoryStore', () => {
  it('keeps its own copy of what was appended: mutating the caller objects changes nothing', () => {
    const chain = new TestChain({ seed: 'copy' });
    const store = MemoryStore.create(chain.genesis);
    const [b1] = scenarioChain(chain);
    store.appendBlock(b1!);
    const stored = store.blockByHeight(1)!;
    (b1!.block.header as { timestampMs: number }).timestampMs = 0;
    assert.notEqual(store.blockByHeight(1)!.block.header.timestampMs, 0);
    assert.deepEqual(store.blockByHeight(1), stored);
  });

  it('verifyChain names the height that last wrote a damaged state entry', () => {
    const chain = new TestChain({ seed: 'mem-tamper' });
    const store = MemoryStore.create(chain.genesis);
    for (const input of scenarioChain(chain)) store.appendBlock(input);
    const row = store.allStateEntries().find((s) => s.key === 'target/cams')!;
    store.tamperStateRow({
      key: row.key,
      entry: JSON.stringify({ ...row.entry, version: 9 }),
      height: row.height,
    });
    const result = store.verifyChain();
    assert.equal(result.ok, false);
    assert.equal(result.height, 2);
  });
});
