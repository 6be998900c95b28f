import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import { describe, it } from 'node:test';
import { progressCallback, startProgress } from './progress.ts';

/** A stream that records what is written; with tty it also has the cursor calls a bar makes. */
function sink(tty: boolean): Writable & { text: () => string; isTTY?: boolean } {
  const chunks: string[] = [];
  const stream = new Writable({
    write(chunk, _enc, done) {
      chunks.push(String(chunk));
      done();
    },
  }) as Writable & { text: () => string; isTTY?: boolean } & Record<string, unknown>;
  stream.text = () => chunks.join('');
  if (tty) {
    stream.isTTY = true;
    stream.columns = 100;
    for (const m of ['cursorTo', 'moveCursor', 'clearLine', 'clearScreenDown']) {
      stream[m] = (...args: unknown[]) => {
        const cb = args.find((a) => typeof a === 'function') as (() => void) | undefined;
        cb?.();
        return true;
      };
    }
  }
  return stream;
}

describe('startProgress', () => {
  it('prints at most one plain line per tenth when the stream is not a terminal', () => {
    const lines: string[] = [];
    const stream = sink(false);
    const p = startProgress({ label: 'upload', total: 1000, stream, line: (l) => lines.push(l) });
    for (let done = 0; done <= 1000; done += 7) p.update(done);
    p.update(1000);
    p.stop();
    assert.equal(stream.text(), '', 'nothing drawn on a non-terminal');
    assert.equal(lines.length, 11);
    assert.equal(lines[0], 'upload: 0% (0 of 1000 bytes)');
    assert.equal(lines[10], 'upload: 100% (1000 of 1000 bytes)');
    const percents = lines.map((l) => Number(/: (\d+)%/.exec(l)?.[1]));
    assert.deepEqual(
      percents,
      percents.toSorted((a, b) => a - b),
    );
  });

  it('draws a bar with the label on a terminal and no plain lines', () => {
    const lines: string[] = [];
    const stream = sink(true);
    const p = startProgress({
      label: 'download',
      total: 4 * 1024 * 1024,
      stream,
      line: (l) => lines.push(l),
    });
    p.update(2 * 1024 * 1024);
    p.update(4 * 1024 * 1024);
    p.stop();
    assert.deepEqual(lines, []);
    assert.match(stream.text(), /download \[.*\] 100% \| 4\.0\/4\.0 MiB/);
  });
});

describe('progressCallback', () => {
  it('starts on the first call, prints a resumed download from where it is, and stops at the total', () => {
    const lines: string[] = [];
    const onProgress = progressCallback('download', sink(false), (l) => lines.push(l));
    onProgress(500, 1000);
    onProgress(1000, 1000);
    assert.deepEqual(lines, ['download: 50% (500 of 1000 bytes)', 'download: 100% (1000 of 1000 bytes)']);
  });
});
