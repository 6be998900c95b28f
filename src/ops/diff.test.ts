import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { binaryReason, DiffTooLarge, diffLines, type Hunk, splitLines, unifiedDiff } from './diff.ts';

/** Length of a longest common subsequence, by the textbook table (the reference Myers must match). */
function lcsLength(a: readonly string[], b: readonly string[]): number {
  const row = new Array<number>(b.length + 1).fill(0);
  for (let i = 1; i <= a.length; i++) {
    let diagonal = 0;
    for (let j = 1; j <= b.length; j++) {
      const above = row[j] ?? 0;
      row[j] = a[i - 1] === b[j - 1] ? diagonal + 1 : Math.max(above, row[j - 1] ?? 0);
      diagonal = above;
    }
  }
  return row[b.length] ?? 0;
}

/** How splitLines marks a last line without a newline. */
const NO_EOL = '\u0000no-eol';

/** Applies unified-diff hunks to the old lines, as patch(1) would, checking every context and removed line. */
function applyHunks(oldLines: readonly string[], hunks: readonly Hunk[]): string[] {
  const out: string[] = [];
  let at = 0;
  let previous = '';
  for (const hunk of hunks) {
    const start = hunk.oldLines === 0 ? hunk.oldStart : hunk.oldStart - 1;
    while (at < start) out.push(oldLines[at++] ?? '');
    for (const line of hunk.lines) {
      if (line.startsWith('\\')) {
        // "\ No newline at end of file" belongs to the line before it; a removed line is gone already.
        if (previous !== '-')
          out[out.length - 1] = `${(out[out.length - 1] ?? '').replace(NO_EOL, '')}${NO_EOL}`;
        continue;
      }
      previous = line[0] ?? '';
      const text = line.slice(1);
      if (line[0] === '+') out.push(text);
      else {
        assert.equal(
          oldLines[at]?.replace('\u0000no-eol', ''),
          text,
          'context and removed lines match the old text',
        );
        if (line[0] === ' ') out.push(oldLines[at] ?? '');
        at++;
      }
    }
  }
  while (at < oldLines.length) out.push(oldLines[at++] ?? '');
  return out;
}

const smallText = fc
  .array(fc.constantFrom('a', 'b', 'c', 'd', ''), { maxLength: 30 })
  .chain((lines) => fc.boolean().map((eol) => lines.join('\n') + (eol && lines.length > 0 ? '\n' : '')));

describe('diffLines (Myers)', () => {
  it('gives a shortest edit script that turns a into b (checked against an LCS table)', () => {
    fc.assert(
      fc.property(
        fc.array(fc.constantFrom('x', 'y', 'z', 'w'), { maxLength: 40 }),
        fc.array(fc.constantFrom('x', 'y', 'z', 'w'), { maxLength: 40 }),
        (a, b) => {
          const edits = diffLines(a, b);
          const oldSide = edits.filter((e) => e.kind !== 'insert').map((e) => a[e.oldIndex]);
          const newSide = edits.filter((e) => e.kind !== 'delete').map((e) => b[e.newIndex]);
          assert.deepEqual(oldSide, a);
          assert.deepEqual(newSide, b);
          for (const e of edits) if (e.kind === 'equal') assert.equal(a[e.oldIndex], b[e.newIndex]);
          const changes = edits.filter((e) => e.kind !== 'equal').length;
          assert.equal(changes, a.length + b.length - 2 * lcsLength(a, b));
        },
      ),
      { numRuns: 300 },
    );
  });

  it('gives up with DiffTooLarge beyond the edit limit instead of using unbounded memory', () => {
    const a = Array.from({ length: 50 }, (_, i) => `old ${i}`);
    const b = Array.from({ length: 50 }, (_, i) => `new ${i}`);
    assert.throws(() => diffLines(a, b, 99), DiffTooLarge);
    assert.equal(diffLines(a, b, 100).length, 100);
  });
});

describe('unifiedDiff', () => {
  it('prints hunks with three lines of context, merging changes whose contexts touch', () => {
    const old = `${Array.from({ length: 20 }, (_, i) => `line ${i + 1}`).join('\n')}\n`;
    const changed = old
      .replace('line 2\n', 'line two\n')
      .replace('line 8\n', 'line eight\n')
      .replace('line 18\n', '');
    const { text, hunks } = unifiedDiff(old, changed, 'a', 'b');
    assert.equal(
      hunks.length,
      2,
      'lines 2 and 8 share a hunk (5 unchanged lines between), line 18 has its own',
    );
    assert.equal(
      text,
      [
        '--- a',
        '+++ b',
        '@@ -1,11 +1,11 @@',
        ' line 1',
        '-line 2',
        '+line two',
        ' line 3',
        ' line 4',
        ' line 5',
        ' line 6',
        ' line 7',
        '-line 8',
        '+line eight',
        ' line 9',
        ' line 10',
        ' line 11',
        '@@ -15,6 +15,5 @@',
        ' line 15',
        ' line 16',
        ' line 17',
        '-line 18',
        ' line 19',
        ' line 20',
        '',
      ].join('\n'),
    );
  });

  it('marks a last line without a newline as diff(1) does, and numbers empty sides from 0', () => {
    assert.equal(
      unifiedDiff('a\nb', 'a\nb\n', 'x', 'y').text,
      '--- x\n+++ y\n@@ -1,2 +1,2 @@\n a\n-b\n\\ No newline at end of file\n+b\n',
    );
    assert.equal(unifiedDiff('', 'new\n', 'x', 'y').text, '--- x\n+++ y\n@@ -0,0 +1 @@\n+new\n');
    assert.equal(unifiedDiff('same\n', 'same\n', 'x', 'y').text, '');
  });

  it('gives hunks that patch the old text into the new one', () => {
    fc.assert(
      fc.property(smallText, smallText, fc.integer({ min: 0, max: 4 }), (a, b, context) => {
        const { hunks } = unifiedDiff(a, b, 'a', 'b', context);
        assert.deepEqual(applyHunks(splitLines(a), hunks), splitLines(b));
      }),
      { numRuns: 300 },
    );
  });
});

describe('binaryReason', () => {
  it('calls content with NUL bytes or invalid UTF-8 binary, and UTF-8 text not', () => {
    assert.equal(binaryReason(Buffer.from('grüße\n', 'utf8')), null);
    assert.match(binaryReason(Buffer.from([0x41, 0x00, 0x42])) ?? '', /NUL/);
    assert.match(binaryReason(Buffer.from([0x41, 0xc3, 0x28])) ?? '', /UTF-8/);
  });
});
