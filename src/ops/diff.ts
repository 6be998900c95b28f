/**
 * A line diff (Myers, "An O(ND) Difference Algorithm and Its Variations", 1986) and its unified
 * format with context lines, for `configchain diff`. Common leading and trailing lines are cut
 * first, so configurations that differ in a few places cost little; the search keeps one band of
 * its frontier per edit step, so its memory grows with the square of the number of changed lines,
 * and it gives up (DiffTooLarge) beyond opsDiffEditsMax of them.
 */
import { opsDiffEditsMax, opsDiffLinesMax } from '../constants.ts';
import { assert } from '../errors.ts';

export type EditKind = 'equal' | 'delete' | 'insert';

export interface Edit {
  readonly kind: EditKind;
  /** Index of the line in the old text (for equal and delete), else -1. */
  readonly oldIndex: number;
  /** Index of the line in the new text (for equal and insert), else -1. */
  readonly newIndex: number;
}

export class DiffTooLarge extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'DiffTooLarge';
  }
}

/** A shortest edit script turning `a` into `b`: every line of both, in order. */
export function diffLines(a: readonly string[], b: readonly string[], editsMax = opsDiffEditsMax): Edit[] {
  let prefix = 0;
  while (prefix < a.length && prefix < b.length && a[prefix] === b[prefix]) prefix++;
  let suffix = 0;
  while (
    suffix < a.length - prefix &&
    suffix < b.length - prefix &&
    a[a.length - 1 - suffix] === b[b.length - 1 - suffix]
  ) {
    suffix++;
  }
  const edits: Edit[] = [];
  for (let i = 0; i < prefix; i++) edits.push({ kind: 'equal', oldIndex: i, newIndex: i });
  const middle = myers(a, b, prefix, a.length - suffix, prefix, b.length - suffix, editsMax);
  for (const edit of middle) edits.push(edit);
  for (let i = suffix; i > 0; i--) {
    edits.push({ kind: 'equal', oldIndex: a.length - i, newIndex: b.length - i });
  }
  return edits;
}

/** Myers' greedy forward search over a[aStart, aEnd) and b[bStart, bEnd), then the backtrack. */
function myers(
  a: readonly string[],
  b: readonly string[],
  aStart: number,
  aEnd: number,
  bStart: number,
  bEnd: number,
  editsMax: number,
): Edit[] {
  const n = aEnd - aStart;
  const m = bEnd - bStart;
  const dMax = Math.min(n + m, editsMax);
  const offset = dMax + 1;
  const v = new Int32Array(2 * dMax + 3);
  const trace: Int32Array[] = [];
  let found = -1;
  for (let d = 0; d <= dMax && found < 0; d++) {
    for (let k = -d; k <= d; k += 2) {
      const down = k === -d || (k !== d && (v[offset + k - 1] ?? 0) < (v[offset + k + 1] ?? 0));
      let x = down ? (v[offset + k + 1] ?? 0) : (v[offset + k - 1] ?? 0) + 1;
      let y = x - k;
      while (x < n && y < m && a[aStart + x] === b[bStart + y]) {
        x++;
        y++;
      }
      v[offset + k] = x;
      if (x >= n && y >= m) {
        found = d;
        break;
      }
    }
    trace.push(v.slice(offset - d, offset + d + 1));
  }
  if (found < 0) {
    throw new DiffTooLarge(
      `the two versions differ in more than ${editsMax} lines; too many changes to show as a diff here`,
    );
  }
  const reversed: Edit[] = [];
  let x = n;
  let y = m;
  for (let d = found; d > 0; d--) {
    const prev = trace[d - 1];
    assert(prev !== undefined, 'the trace holds every step');
    const at = (k: number) => prev[k + d - 1] ?? 0;
    const k = x - y;
    const down = k === -d || (k !== d && at(k - 1) < at(k + 1));
    const prevK = down ? k + 1 : k - 1;
    const prevX = at(prevK);
    const prevY = prevX - prevK;
    while (x > prevX && y > prevY) {
      x--;
      y--;
      reversed.push({ kind: 'equal', oldIndex: aStart + x, newIndex: bStart + y });
    }
    if (down) {
      y--;
      reversed.push({ kind: 'insert', oldIndex: -1, newIndex: bStart + y });
    } else {
      x--;
      reversed.push({ kind: 'delete', oldIndex: aStart + x, newIndex: -1 });
    }
    assert(x === prevX && y === prevY, 'the backtrack follows the forward search');
  }
  while (x > 0 && y > 0) {
    x--;
    y--;
    reversed.push({ kind: 'equal', oldIndex: aStart + x, newIndex: bStart + y });
  }
  assert(x === 0 && y === 0, 'the backtrack ends at the start of both texts');
  return reversed.reverse();
}

/** Marks a last line that has no newline, so it differs from the same text with one (as in diff(1)). */
const NO_EOL = '\u0000no-eol';

/** Lines of a text; a last line without a newline carries the NO_EOL marker. */
export function splitLines(text: string): string[] {
  if (text === '') return [];
  const lines = text.split('\n');
  if (lines[lines.length - 1] === '') lines.pop();
  else lines[lines.length - 1] += NO_EOL;
  if (lines.length > opsDiffLinesMax) {
    throw new DiffTooLarge(`a version has ${lines.length} lines; diff compares at most ${opsDiffLinesMax}`);
  }
  return lines;
}

export interface Hunk {
  /** 1-based first line in the old text (0 when the hunk holds none of its lines), as in diff -u. */
  readonly oldStart: number;
  readonly oldLines: number;
  readonly newStart: number;
  readonly newLines: number;
  /** Each line with its prefix: ' ' context, '-' removed, '+' added; "\ No newline at end of file" as diff prints it. */
  readonly lines: readonly string[];
}

/** Groups an edit script into hunks with `context` unchanged lines around each change. */
export function hunksOf(
  edits: readonly Edit[],
  a: readonly string[],
  b: readonly string[],
  context = 3,
): Hunk[] {
  const changes: number[] = [];
  edits.forEach((e, i) => {
    if (e.kind !== 'equal') changes.push(i);
  });
  const hunks: Hunk[] = [];
  let i = 0;
  while (i < changes.length) {
    const first = changes[i] ?? 0;
    let last = first;
    // Extend the hunk while the next change is close enough that the contexts would touch.
    while (i + 1 < changes.length && (changes[i + 1] ?? 0) - last <= 2 * context + 1) {
      i++;
      last = changes[i] ?? last;
    }
    i++;
    const start = Math.max(0, first - context);
    const end = Math.min(edits.length, last + context + 1);
    hunks.push(makeHunk(edits.slice(start, end), edits, start, a, b));
  }
  return hunks;
}

function makeHunk(
  slice: readonly Edit[],
  edits: readonly Edit[],
  start: number,
  a: readonly string[],
  b: readonly string[],
): Hunk {
  // The hunk starts after every old (new) line of the edits before it.
  let oldBefore = 0;
  let newBefore = 0;
  for (let j = 0; j < start; j++) {
    const e = edits[j];
    if (e === undefined) continue;
    if (e.kind !== 'insert') oldBefore++;
    if (e.kind !== 'delete') newBefore++;
  }
  const lines: string[] = [];
  let oldLines = 0;
  let newLines = 0;
  for (const e of slice) {
    const text = e.kind === 'insert' ? (b[e.newIndex] ?? '') : (a[e.oldIndex] ?? '');
    const prefix = e.kind === 'equal' ? ' ' : e.kind === 'delete' ? '-' : '+';
    if (e.kind !== 'insert') oldLines++;
    if (e.kind !== 'delete') newLines++;
    if (text.endsWith(NO_EOL)) {
      lines.push(prefix + text.slice(0, -NO_EOL.length), '\\ No newline at end of file');
    } else {
      lines.push(prefix + text);
    }
  }
  return {
    oldStart: oldLines === 0 ? oldBefore : oldBefore + 1,
    oldLines,
    newStart: newLines === 0 ? newBefore : newBefore + 1,
    newLines,
    lines,
  };
}

/** The unified diff text (with ---/+++ file lines) of two texts; empty when they are equal. */
export function unifiedDiff(oldText: string, newText: string, oldName: string, newName: string, context = 3) {
  const a = splitLines(oldText);
  const b = splitLines(newText);
  const hunks = hunksOf(diffLines(a, b), a, b, context);
  if (hunks.length === 0) return { hunks, text: '' };
  const out = [`--- ${oldName}`, `+++ ${newName}`];
  for (const h of hunks) {
    out.push(`@@ -${range(h.oldStart, h.oldLines)} +${range(h.newStart, h.newLines)} @@`, ...h.lines);
  }
  return { hunks, text: `${out.join('\n')}\n` };
}

function range(start: number, count: number): string {
  return count === 1 ? String(start) : `${start},${count}`;
}

/** Why a content cannot be shown as text lines (NUL bytes or invalid UTF-8), or null when it can. */
export function binaryReason(bytes: Uint8Array): string | null {
  if (bytes.includes(0)) return 'it contains NUL bytes';
  try {
    new TextDecoder('utf-8', { fatal: true }).decode(bytes);
    return null;
  } catch {
    return 'it is not valid UTF-8';
  }
}
