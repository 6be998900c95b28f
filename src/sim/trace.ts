/**
 * A bounded trace of what happened in a run (the last N entries), kept so that a violation can be
 * explained: time, from -> to, message kind, view/seq/digest prefix, deliveries and faults.
 * Entries are stored as they come (no string building on the hot path) in a fixed-size ring and
 * only formatted when a report needs them.
 */
import { assert } from '../errors.ts';

export class TraceRing<T> {
  private readonly entries: (T | undefined)[];
  private next = 0;
  private count = 0;

  constructor(readonly capacity: number) {
    assert(Number.isSafeInteger(capacity) && capacity > 0, 'trace capacity must be positive');
    this.entries = new Array<T | undefined>(capacity);
  }

  add(entry: T): void {
    this.entries[this.next] = entry;
    this.next = (this.next + 1) % this.capacity;
    if (this.count < this.capacity) this.count++;
  }

  /** The retained entries, oldest first. */
  snapshot(): T[] {
    const out: T[] = [];
    const start = (this.next - this.count + this.capacity) % this.capacity;
    for (let i = 0; i < this.count; i++) out.push(this.entries[(start + i) % this.capacity] as T);
    return out;
  }
}

/** Virtual time as seconds with millisecond precision, right-aligned so columns line up. */
export function formatTime(timeMs: number): string {
  return `t=${(timeMs / 1000).toFixed(3).padStart(8)}s`;
}

/** The first 8 hex characters of a digest, enough to tell blocks apart in a trace. */
export function shortHash(hash: unknown): string {
  return typeof hash === 'string' ? hash.slice(0, 8) : '-';
}
