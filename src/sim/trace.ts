/**
 * A bounded trace of what happened in a run (the last N lines), kept so that a violation can be
 * explained: time, from -> to, message kind, view/seq/digest prefix, deliveries and faults.
 * Lines are built lazily only when tracing is on, and the buffer is a fixed-size ring.
 */
import { assert } from '../errors.ts';

export class TraceRing {
  private readonly lines: string[];
  private next = 0;
  private count = 0;

  constructor(readonly capacity: number) {
    assert(Number.isSafeInteger(capacity) && capacity > 0, 'trace capacity must be positive');
    this.lines = new Array<string>(capacity);
  }

  add(timeMs: number, text: string): void {
    this.lines[this.next] = `${formatTime(timeMs)}  ${text}`;
    this.next = (this.next + 1) % this.capacity;
    if (this.count < this.capacity) this.count++;
  }

  /** The retained lines, oldest first. */
  snapshot(): string[] {
    const out: string[] = [];
    const start = (this.next - this.count + this.capacity) % this.capacity;
    for (let i = 0; i < this.count; i++) out.push(this.lines[(start + i) % this.capacity] as string);
    return out;
  }
}

/** Virtual time as seconds with millisecond precision, right-aligned so columns line up. */
export function formatTime(timeMs: number): string {
  return `t=${(timeMs / 1000).toFixed(3).padStart(9)}s`;
}

/** The first 8 hex characters of a digest, enough to tell blocks apart in a trace. */
export function shortHash(hash: string | undefined): string {
  return hash === undefined ? '-' : hash.slice(0, 8);
}
