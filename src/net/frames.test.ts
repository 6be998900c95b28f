import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { frameBytesMax } from '../constants.ts';
import { encodeFrame, FrameDecoder, FrameError, frameHeaderBytes, keepaliveFrame } from './frames.ts';

/** Splits bytes at the given cut points (sorted, deduplicated, within range). */
function split(bytes: Buffer, cuts: number[]): Buffer[] {
  const points = [...new Set(cuts.map((c) => c % (bytes.length + 1)))].sort((a, b) => a - b);
  const parts: Buffer[] = [];
  let start = 0;
  for (const point of points) {
    parts.push(bytes.subarray(start, point));
    start = point;
  }
  parts.push(bytes.subarray(start));
  return parts;
}

describe('frames', () => {
  it('encodes a 4-byte big-endian length before the payload', () => {
    const frame = encodeFrame(Buffer.from('abc'));
    assert.deepEqual([...frame], [0, 0, 0, 3, 0x61, 0x62, 0x63]);
    assert.deepEqual([...keepaliveFrame], [0, 0, 0, 0]);
  });

  it('decodes any sequence of frames cut into any chunks, in order', () => {
    fc.assert(
      fc.property(
        fc.array(fc.uint8Array({ maxLength: 300 }), { maxLength: 20 }),
        fc.array(fc.nat(), { maxLength: 40 }),
        (payloads, cuts) => {
          const stream = Buffer.concat(payloads.map((p) => encodeFrame(p)));
          const decoder = new FrameDecoder(1000);
          const out: Buffer[] = [];
          for (const chunk of split(stream, cuts)) out.push(...decoder.push(chunk));
          assert.deepEqual(
            out.map((b) => [...b]),
            payloads.map((p) => [...p]),
          );
          assert.equal(decoder.bufferedBytes, 0);
        },
      ),
    );
  });

  it('yields zero-length frames (keepalives) as empty payloads', () => {
    const decoder = new FrameDecoder();
    const out = decoder.push(Buffer.concat([keepaliveFrame, encodeFrame(Buffer.from('x')), keepaliveFrame]));
    assert.deepEqual(
      out.map((b) => b.length),
      [0, 1, 0],
    );
  });

  it('holds back an incomplete frame until the rest arrives', () => {
    const decoder = new FrameDecoder();
    const frame = encodeFrame(Buffer.from('hello'));
    assert.deepEqual(decoder.push(frame.subarray(0, 2)), []);
    assert.deepEqual(decoder.push(frame.subarray(2, 6)), []);
    assert.equal(decoder.bufferedBytes, 2);
    assert.deepEqual(
      decoder.push(frame.subarray(6)).map((b) => b.toString()),
      ['hello'],
    );
  });

  it('accepts a frame of exactly the limit and refuses one byte more from its header alone', () => {
    const decoder = new FrameDecoder(10);
    assert.equal(decoder.push(encodeFrame(Buffer.alloc(10), 10))[0]?.length, 10);
    const header = Buffer.alloc(frameHeaderBytes);
    header.writeUInt32BE(11, 0);
    assert.throws(
      () => decoder.push(header),
      (error: unknown) => error instanceof FrameError && error.code === 'FRAME_TOO_LARGE',
    );
    assert.equal(decoder.bufferedBytes, 0);
    // A failed stream has lost sync: it refuses everything after.
    assert.throws(
      () => decoder.push(encodeFrame(Buffer.from('x'))),
      (error: unknown) => error instanceof FrameError && error.code === 'FRAME_DECODER_FAILED',
    );
  });

  it('refuses the largest possible announced length under the default limit', () => {
    const decoder = new FrameDecoder();
    const header = Buffer.from([0xff, 0xff, 0xff, 0xff]);
    assert.throws(() => decoder.push(header), FrameError);
    assert.ok(frameBytesMax < 0xffffffff);
  });

  it('refuses to encode a payload over the limit (a caller bug)', () => {
    assert.throws(() => encodeFrame(Buffer.alloc(11), 10), /exceeds/);
  });
});
