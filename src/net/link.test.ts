import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import type { ValidatorId } from '../encoding/brand.ts';
import { encodeFrame } from './frames.ts';
import { backoffDelayMs, LinkReader, SendQueue } from './link.ts';
import { emptyCounters } from './transport.ts';

describe('SendQueue', () => {
  it('keeps the newest frames in order within both bounds', () => {
    fc.assert(
      fc.property(
        fc.array(fc.integer({ min: 1, max: 50 }), { maxLength: 200 }),
        fc.integer({ min: 1, max: 20 }),
        fc.integer({ min: 50, max: 300 }),
        (sizes, framesMax, bytesMax) => {
          const queue = new SendQueue(framesMax, bytesMax);
          let dropped = 0;
          const frames = sizes.map((size, index) => Buffer.alloc(size, index % 256));
          for (const frame of frames) dropped += queue.push(frame);
          assert.ok(queue.length <= framesMax && queue.bytes <= bytesMax);
          const kept: Buffer[] = [];
          for (let f = queue.shift(); f !== undefined; f = queue.shift()) kept.push(f);
          assert.equal(kept.length + dropped, frames.length);
          // What is kept is exactly the newest suffix of what was pushed.
          assert.deepEqual(kept, frames.slice(frames.length - kept.length));
          assert.equal(queue.bytes, 0);
        },
      ),
    );
  });

  it('drops oldest-first under the default bounds, past the compaction point', () => {
    const queue = new SendQueue(3000, 1 << 20);
    let dropped = 0;
    for (let i = 0; i < 5000; i++) {
      const frame = Buffer.alloc(4);
      frame.writeUInt32BE(i, 0);
      dropped += queue.push(frame);
      if (i % 3 === 0) queue.shift();
    }
    assert.ok(dropped > 0);
    let previous = -1;
    for (let f = queue.shift(); f !== undefined; f = queue.shift()) {
      const value = f.readUInt32BE(0);
      assert.ok(value > previous, 'frames come out in push order');
      previous = value;
    }
    assert.equal(previous, 4999);
  });
});

describe('LinkReader', () => {
  it('never throws on arbitrary bytes and delivers only JSON objects', () => {
    // Raw bytes, well-framed random bytes, and well-framed JSON of any shape, mixed.
    const piece = fc.oneof(
      fc.uint8Array({ maxLength: 64 }),
      fc.uint8Array({ maxLength: 90 }).map((b) => encodeFrame(b)),
      fc.jsonValue().map((v) => encodeFrame(Buffer.from(JSON.stringify(v) ?? 'null'))),
    );
    fc.assert(
      fc.property(fc.array(piece, { maxLength: 20 }), (chunks) => {
        const counters = emptyCounters();
        const delivered: unknown[] = [];
        const reader = new LinkReader(1 as ValidatorId, 100, counters, (_from, message) =>
          delivered.push(message),
        );
        for (const chunk of chunks) {
          const result = reader.push(chunk);
          if (typeof result !== 'number') break;
        }
        for (const message of delivered) {
          assert.ok(typeof message === 'object' && message !== null && !Array.isArray(message));
        }
      }),
    );
  });

  it('delivers the objects of a valid stream, with the sender id, and counts frames and bytes', () => {
    fc.assert(
      fc.property(fc.array(fc.dictionary(fc.string(), fc.jsonValue()), { maxLength: 10 }), (messages) => {
        const counters = emptyCounters();
        const delivered: [ValidatorId, unknown][] = [];
        const reader = new LinkReader(3 as ValidatorId, 1 << 20, counters, (from, message) =>
          delivered.push([from, message]),
        );
        const frames = messages.map((m) => encodeFrame(Buffer.from(JSON.stringify(m))));
        assert.equal(reader.push(Buffer.concat(frames)), frames.length);
        assert.deepEqual(
          delivered.map(([, m]) => m),
          messages.map((m) => JSON.parse(JSON.stringify(m))),
        );
        assert.ok(delivered.every(([from]) => from === 3));
        assert.equal(counters.framesIn, frames.length);
        assert.equal(
          counters.bytesIn,
          frames.reduce((sum, f) => sum + f.length, 0),
        );
      }),
    );
  });

  it('rejects the link on the first non-object frame and delivers nothing after it', () => {
    const counters = emptyCounters();
    const delivered: unknown[] = [];
    const reader = new LinkReader(0 as ValidatorId, 1000, counters, (_f, m) => delivered.push(m));
    const stream = Buffer.concat([
      encodeFrame(Buffer.from('{"a":1}')),
      encodeFrame(Buffer.from('"just a string"')),
      encodeFrame(Buffer.from('{"b":2}')),
    ]);
    const result = reader.push(stream);
    assert.equal(typeof result, 'object');
    assert.deepEqual(delivered, [{ a: 1 }]);
    assert.equal(counters.messagesRejectedInvalid, 1);
    assert.equal(typeof reader.push(encodeFrame(Buffer.from('{"c":3}'))), 'object');
    assert.deepEqual(delivered, [{ a: 1 }]);
  });
});

describe('backoffDelayMs', () => {
  it('doubles from the minimum up to the maximum, with jitter in the upper half', () => {
    for (let attempt = 0; attempt < 40; attempt++) {
      const ceiling = Math.min(5000, 50 * 2 ** attempt);
      assert.equal(
        backoffDelayMs(attempt, 50, 5000, () => 0),
        Math.round(ceiling / 2),
      );
      assert.equal(
        backoffDelayMs(attempt, 50, 5000, () => 1),
        ceiling,
      );
    }
  });
});
