import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { BlockHash, Height, ValidatorId, View } from '../encoding/brand.ts';
import {
  checkSimBlock,
  checkSimRequest,
  isSimBlock,
  requestVerdict,
  SimApplication,
  type SimBlock,
} from './app.ts';

const block: SimBlock = {
  height: 1 as Height,
  parent: 'ab'.repeat(32) as BlockHash,
  view: 0 as View,
  proposer: 0 as ValidatorId,
  timeMs: 5,
  entries: [{ clientId: 'c', requestId: '1', payload: 'op-1', outcome: 'accepted' }],
};

describe('simulated application', () => {
  it('decides each request by its payload', () => {
    assert.equal(requestVerdict('op-7'), 'accepted');
    assert.equal(requestVerdict('refuse-7'), 'refused');
    assert.equal(requestVerdict('malformed-7'), 'malformed');
    assert.equal(checkSimRequest({ clientId: 'c', requestId: '1', payload: 'op-1' }), null);
    assert.match(
      checkSimRequest({ clientId: 'c', requestId: '1', payload: 'malformed-1' }) ?? '',
      /malformed/,
    );
  });

  it('builds blocks that record the verdicts and pass its own check', () => {
    const app = new SimApplication();
    const built = app.build({
      parent: block.parent,
      height: 2 as Height,
      view: 1 as View,
      proposer: 1 as ValidatorId,
      nowMs: 9,
      requests: [
        { clientId: 'c', requestId: '1', payload: 'op-1' },
        { clientId: 'c', requestId: '2', payload: 'refuse-2' },
      ],
    });
    assert.deepEqual(
      built.entries.map((e) => e.outcome),
      ['accepted', 'refused'],
    );
    assert.equal(checkSimBlock(built), null);
    assert.equal(app.height(built), 2);
    assert.equal(app.parent(built), block.parent);
  });

  it('recognizes well-formed blocks and refuses malformed ones from the network', () => {
    assert.equal(isSimBlock(block), true);
    for (const bad of [
      null,
      'block',
      { ...block, height: 0 },
      { ...block, parent: 'xyz' },
      { ...block, timeMs: Number.NaN },
      { ...block, entries: 'none' },
      { ...block, entries: [{ clientId: 'c', requestId: '1', payload: 'op-1', outcome: 'maybe' }] },
      { ...block, entries: [null] },
    ]) {
      assert.equal(isSimBlock(bad), false, JSON.stringify(bad));
    }
  });

  it('answers findCommitted from the replica index it was given', () => {
    const index = new Map([['c\u00001', 4 as Height]]);
    const app = new SimApplication((key) => index.get(`${key.clientId}\u0000${key.requestId}`) ?? null);
    assert.equal(app.findCommitted({ clientId: 'c', requestId: '1' }), 4);
    assert.equal(app.findCommitted({ clientId: 'c', requestId: '2' }), null);
    assert.equal(new SimApplication().findCommitted({ clientId: 'c', requestId: '1' }), null);
  });
});
