/**
 * A line diff for the side-by-side view: the longest common subsequence of two texts' lines,
 * turned into rows of (left line, right line). Bounded: the table is lines x lines, so texts
 * longer than diffLinesMax lines are refused with a message instead of freezing the page.
 */

export const diffLinesMax = 3000;

export type DiffRow =
  | {
      readonly kind: 'same';
      readonly left: string;
      readonly right: string;
      readonly l: number;
      readonly r: number;
    }
  | { readonly kind: 'removed'; readonly left: string; readonly l: number }
  | { readonly kind: 'added'; readonly right: string; readonly r: number }
  | {
      readonly kind: 'changed';
      readonly left: string;
      readonly right: string;
      readonly l: number;
      readonly r: number;
    };

export function splitLines(text: string): string[] {
  const lines = text.split('\n');
  if (lines.length > 1 && lines[lines.length - 1] === '') lines.pop();
  return lines;
}

/** Rows of a side-by-side diff, or a reason when the texts are too long to compare here. */
export function sideBySide(leftText: string, rightText: string): DiffRow[] | string {
  const a = splitLines(leftText);
  const b = splitLines(rightText);
  if (a.length > diffLinesMax || b.length > diffLinesMax) {
    return `the versions have ${a.length} and ${b.length} lines; the browser compares at most ${diffLinesMax}. Use configchain diff on the command line.`;
  }
  // lcs[i][j] = length of the LCS of a[i..] and b[j..], in one flat array.
  const w = b.length + 1;
  const lcs = new Uint32Array((a.length + 1) * w);
  for (let i = a.length - 1; i >= 0; i--) {
    for (let j = b.length - 1; j >= 0; j--) {
      lcs[i * w + j] =
        a[i] === b[j]
          ? (lcs[(i + 1) * w + j + 1] ?? 0) + 1
          : Math.max(lcs[(i + 1) * w + j] ?? 0, lcs[i * w + j + 1] ?? 0);
    }
  }
  const raw: DiffRow[] = [];
  let i = 0;
  let j = 0;
  while (i < a.length || j < b.length) {
    const left = a[i];
    const right = b[j];
    if (left !== undefined && right !== undefined && left === right) {
      raw.push({ kind: 'same', left, right, l: i + 1, r: j + 1 });
      i++;
      j++;
    } else if (
      left !== undefined &&
      (right === undefined || (lcs[(i + 1) * w + j] ?? 0) >= (lcs[i * w + j + 1] ?? 0))
    ) {
      raw.push({ kind: 'removed', left, l: i + 1 });
      i++;
    } else if (right !== undefined) {
      raw.push({ kind: 'added', right, r: j + 1 });
      j++;
    }
  }
  return pairChanges(raw);
}

/** A run of removals followed by a run of additions is shown as changed lines side by side. */
function pairChanges(rows: DiffRow[]): DiffRow[] {
  const out: DiffRow[] = [];
  let k = 0;
  while (k < rows.length) {
    const row = rows[k];
    if (row === undefined) break;
    if (row.kind !== 'removed') {
      out.push(row);
      k++;
      continue;
    }
    const removed: Extract<DiffRow, { kind: 'removed' }>[] = [];
    while (rows[k]?.kind === 'removed') removed.push(rows[k++] as Extract<DiffRow, { kind: 'removed' }>);
    const added: Extract<DiffRow, { kind: 'added' }>[] = [];
    while (rows[k]?.kind === 'added') added.push(rows[k++] as Extract<DiffRow, { kind: 'added' }>);
    const n = Math.max(removed.length, added.length);
    for (let m = 0; m < n; m++) {
      const del = removed[m];
      const add = added[m];
      if (del !== undefined && add !== undefined) {
        out.push({ kind: 'changed', left: del.left, right: add.right, l: del.l, r: add.r });
      } else if (del !== undefined) out.push(del);
      else if (add !== undefined) out.push(add);
    }
  }
  return out;
}
