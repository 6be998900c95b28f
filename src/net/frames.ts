/**
 * Length-prefixed frames on a byte stream: a 4-byte unsigned big-endian payload length, then the
 * payload. The decoder accepts the stream in arbitrary chunks (a frame split over many chunks,
 * many frames in one chunk) and yields whole payloads in order.
 *
 * Zero-length rule: a frame with length 0 is legal and carries no message. Peer links use it as
 * the keepalive, so the decoder yields it (as an empty payload) and the transport consumes it.
 *
 * A frame announcing more than frameBytesMax bytes is refused as soon as its header arrives,
 * before any of its payload is buffered, with a FrameError; the caller closes the connection.
 * After an error the decoder stays failed: a stream that lost frame sync cannot be trusted again.
 */
import { frameBytesMax } from '../constants.ts';
import { assert, ConfigChainError } from '../errors.ts';

export const frameHeaderBytes = 4;

export type FrameErrorCode = 'FRAME_TOO_LARGE' | 'FRAME_DECODER_FAILED';

export class FrameError extends ConfigChainError<
  FrameErrorCode,
  { lengthBytes: number; limitBytes: number }
> {}

/** One frame: header and payload in a single buffer, ready for one socket write. */
export function encodeFrame(payload: Uint8Array, limitBytes: number = frameBytesMax): Buffer {
  assert(
    payload.byteLength <= limitBytes,
    `a frame payload of ${payload.byteLength} bytes exceeds the ${limitBytes}-byte frame limit`,
  );
  const frame = Buffer.allocUnsafe(frameHeaderBytes + payload.byteLength);
  frame.writeUInt32BE(payload.byteLength, 0);
  frame.set(payload, frameHeaderBytes);
  return frame;
}

/** The zero-length frame; shared, since it never changes. */
export const keepaliveFrame: Buffer = encodeFrame(new Uint8Array(0));

export class FrameDecoder {
  readonly #limitBytes: number;
  /** Received chunks not yet consumed; their total is #bufferedBytes. */
  #chunks: Buffer[] = [];
  #bufferedBytes = 0;
  /** Payload length of the frame being assembled, or -1 while its header is incomplete. */
  #expectedBytes = -1;
  #failed = false;

  constructor(limitBytes: number = frameBytesMax) {
    assert(Number.isSafeInteger(limitBytes) && limitBytes >= 0, 'the frame limit is a byte count');
    assert(limitBytes <= 0xffffffff, 'the frame limit must fit the 4-byte length header');
    this.#limitBytes = limitBytes;
  }

  /** Bytes held while waiting for the rest of a frame (at most one frame's header and payload). */
  get bufferedBytes(): number {
    return this.#bufferedBytes;
  }

  /**
   * Feed one chunk; returns the payloads it completed, in order. Throws a FrameError when a frame
   * is too large (and on every call after that).
   */
  push(chunk: Uint8Array): Buffer[] {
    if (this.#failed) {
      throw new FrameError('FRAME_DECODER_FAILED', 'the frame stream already failed; close the connection', {
        lengthBytes: 0,
        limitBytes: this.#limitBytes,
      });
    }
    if (chunk.byteLength > 0) {
      this.#chunks.push(Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength));
      this.#bufferedBytes += chunk.byteLength;
    }
    const payloads: Buffer[] = [];
    for (;;) {
      if (this.#expectedBytes < 0) {
        if (this.#bufferedBytes < frameHeaderBytes) break;
        const length = this.#take(frameHeaderBytes).readUInt32BE(0);
        if (length > this.#limitBytes) {
          this.#failed = true;
          this.#chunks = [];
          this.#bufferedBytes = 0;
          throw new FrameError(
            'FRAME_TOO_LARGE',
            `a peer announced a ${length}-byte frame; the limit is ${this.#limitBytes} bytes (frameBytesMax)`,
            { lengthBytes: length, limitBytes: this.#limitBytes },
          );
        }
        this.#expectedBytes = length;
      }
      if (this.#bufferedBytes < this.#expectedBytes) break;
      payloads.push(this.#take(this.#expectedBytes));
      this.#expectedBytes = -1;
    }
    assert(this.#bufferedBytes <= frameHeaderBytes + this.#limitBytes, 'the decoder holds at most one frame');
    return payloads;
  }

  /** Removes and returns the first n buffered bytes, copying only when they span chunks. */
  #take(n: number): Buffer {
    assert(n <= this.#bufferedBytes, 'take within the buffered bytes');
    this.#bufferedBytes -= n;
    if (n === 0) return Buffer.alloc(0);
    const first = this.#chunks[0];
    assert(first !== undefined, 'buffered bytes live in chunks');
    if (first.byteLength === n) {
      this.#chunks.shift();
      return first;
    }
    if (first.byteLength > n) {
      this.#chunks[0] = first.subarray(n);
      return first.subarray(0, n);
    }
    const out = Buffer.allocUnsafe(n);
    let filled = 0;
    while (filled < n) {
      const chunk = this.#chunks[0];
      assert(chunk !== undefined, 'buffered bytes live in chunks');
      const wanted = n - filled;
      if (chunk.byteLength <= wanted) {
        out.set(chunk, filled);
        filled += chunk.byteLength;
        this.#chunks.shift();
      } else {
        out.set(chunk.subarray(0, wanted), filled);
        this.#chunks[0] = chunk.subarray(wanted);
        filled += wanted;
      }
    }
    return out;
  }
}
