/**
 * When a validator submits a heartbeat transaction (issue 5: freshness of certified headers).
 *
 * A device refuses headers older than policy.headerAgeMsMax, so an idle chain must still commit
 * blocks. When no block has committed for policy.heartbeatIntervalMs, the primary submits a
 * heartbeat transaction; a backup waits twice as long, so that a primary that stays silent cannot
 * freeze the headers: the backup's heartbeat is a request like any other, and if the primary does
 * not order it, the backups' request timers start a view change.
 *
 * This class only decides; the node signs and submits. Time comes in as arguments (no clock of
 * its own), so the rules are tested without waiting. At most one heartbeat of this node is pending
 * at a time: one that has not committed after twice the interval is handed to consensus again (it
 * may have been lost in a view change), never replaced by another, so a node that cannot reach a
 * quorum does not pile up heartbeats. A new one follows only when it committed or was refused.
 */
import { assert } from '../errors.ts';

export class HeartbeatSchedule {
  readonly intervalMs: number;
  #lastBlockMs: number;
  #pending: { readonly id: string; readonly sinceMs: number } | null = null;

  /** `startMs`: when the node started (it counts as its last block until one commits). */
  constructor(intervalMs: number, startMs: number) {
    assert(
      Number.isSafeInteger(intervalMs) && intervalMs >= 0,
      'the heartbeat interval is a whole number of ms',
    );
    this.intervalMs = intervalMs;
    this.#lastBlockMs = startMs;
  }

  /** The heartbeat this node submitted and waits for, if any. */
  get pending(): string | null {
    return this.#pending?.id ?? null;
  }

  /**
   * What to do now: 'new' to sign and submit a heartbeat (the primary after one idle interval, a
   * backup after two), 'again' to hand the pending one to consensus again, or null.
   */
  next(nowMs: number, isPrimary: boolean): 'new' | 'again' | null {
    if (this.intervalMs === 0) return null;
    if (this.#pending !== null) {
      if (nowMs - this.#pending.sinceMs < 2 * this.intervalMs) return null;
      this.#pending = { id: this.#pending.id, sinceMs: nowMs };
      return 'again';
    }
    const idleMs = nowMs - this.#lastBlockMs;
    return idleMs >= (isPrimary ? this.intervalMs : 2 * this.intervalMs) ? 'new' : null;
  }

  submitted(id: string, nowMs: number): void {
    assert(this.#pending === null, 'one heartbeat of a node is pending at a time');
    this.#pending = { id, sinceMs: nowMs };
  }

  /**
   * A block committed (any block resets the idle time; `blockMs` is its header's timestamp, whose
   * age is what devices check); it may carry our heartbeat.
   */
  committed(blockMs: number, txIds: readonly string[]): void {
    this.#lastBlockMs = Math.max(this.#lastBlockMs, blockMs);
    if (this.#pending !== null && txIds.includes(this.#pending.id)) this.#pending = null;
  }

  /** Consensus refused the transaction: if it was our heartbeat, the next one may go. */
  refused(id: string): void {
    if (this.#pending?.id === id) this.#pending = null;
  }
}
