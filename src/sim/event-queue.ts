/**
 * The virtual clock's agenda: a binary min-heap ordered by (time, insertion number). Two events
 * at the same virtual time always come out in the order they were scheduled, so a run depends
 * only on its seed, never on heap internals.
 */
import { assert } from '../errors.ts';

interface Entry<T> {
  readonly timeMs: number;
  readonly order: number;
  readonly item: T;
}

export class EventQueue<T> {
  private readonly heap: Entry<T>[] = [];
  private nextOrder = 0;
  private nowMs = 0;
  private readonly capacity: number;

  constructor(capacity: number) {
    assert(Number.isSafeInteger(capacity) && capacity > 0, 'event queue capacity must be positive');
    this.capacity = capacity;
  }

  /** The virtual time of the last event taken (the clock never goes backwards). */
  get now(): number {
    return this.nowMs;
  }

  get size(): number {
    return this.heap.length;
  }

  /**
   * Schedules an item at an absolute virtual time, not earlier than now. Returns false when the
   * queue is full: the caller decides what a full queue means (the network drops the message).
   */
  push(timeMs: number, item: T): boolean {
    assert(Number.isFinite(timeMs), `event time must be finite, got ${timeMs}`);
    assert(timeMs >= this.nowMs, `event scheduled in the past: ${timeMs} < ${this.nowMs}`);
    if (this.heap.length >= this.capacity) return false;
    this.heap.push({ timeMs, order: this.nextOrder++, item });
    this.siftUp(this.heap.length - 1);
    return true;
  }

  /** Time of the next event, or undefined when the queue is empty. */
  peekTime(): number | undefined {
    return this.heap[0]?.timeMs;
  }

  /** Takes the earliest event and advances the clock to its time. */
  pop(): { timeMs: number; item: T } | undefined {
    const top = this.heap[0];
    if (top === undefined) return undefined;
    const last = this.heap.pop() as Entry<T>;
    if (this.heap.length > 0) {
      this.heap[0] = last;
      this.siftDown(0);
    }
    assert(top.timeMs >= this.nowMs, 'the virtual clock must never go backwards');
    this.nowMs = top.timeMs;
    return { timeMs: top.timeMs, item: top.item };
  }

  /** Moves the clock forward with no event (used when a phase ends at a fixed time). */
  advanceTo(timeMs: number): void {
    assert(timeMs >= this.nowMs, 'the virtual clock must never go backwards');
    const next = this.peekTime();
    assert(next === undefined || next >= timeMs, 'cannot skip past a scheduled event');
    this.nowMs = timeMs;
  }

  private less(a: Entry<T>, b: Entry<T>): boolean {
    return a.timeMs < b.timeMs || (a.timeMs === b.timeMs && a.order < b.order);
  }

  private siftUp(index: number): void {
    const heap = this.heap;
    let i = index;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      const a = heap[i] as Entry<T>;
      const p = heap[parent] as Entry<T>;
      if (!this.less(a, p)) break;
      heap[i] = p;
      heap[parent] = a;
      i = parent;
    }
  }

  private siftDown(index: number): void {
    const heap = this.heap;
    const length = heap.length;
    let i = index;
    for (;;) {
      const left = 2 * i + 1;
      const right = left + 1;
      let smallest = i;
      if (left < length && this.less(heap[left] as Entry<T>, heap[smallest] as Entry<T>)) smallest = left;
      if (right < length && this.less(heap[right] as Entry<T>, heap[smallest] as Entry<T>)) smallest = right;
      if (smallest === i) return;
      const tmp = heap[i] as Entry<T>;
      heap[i] = heap[smallest] as Entry<T>;
      heap[smallest] = tmp;
      i = smallest;
    }
  }
}
