/**
 * The ordered acknowledgement tracker: the only place that decides how far the replication slot may
 * advance. Transactions are registered in commit order as they stream in; each counts its events sent
 * to Kafka and not yet acknowledged. A transaction becomes durable when it has committed (its Commit
 * message arrived), every one of its events is acknowledged by Kafka, and every earlier transaction is
 * durable. Only then may its commit end LSN be reported to PostgreSQL as flushed: a crash at any instant
 * replays from the slot, never skips (see DESIGN.md "Durability rules").
 *
 * Many sends can be in flight at once across many transactions; Kafka acknowledging them out of order is
 * fine, the durable position only ever moves over a fully acknowledged prefix.
 */
import type { Lsn } from '../../services/core/lsn.js';

export interface TrackedTransaction {
  readonly xid: number;
  /** Commit time, microseconds since the epoch (from Begin), for lag and latency metrics. */
  readonly commitTimeUs: bigint;
  /** Events handed to Kafka and not yet acknowledged. */
  pending: number;
  /** Events registered in total. */
  events: number;
  /** Set by `commit`; null while the transaction's messages are still arriving. */
  commitEndLsn: Lsn | null;
  /** Set when a send of this transaction failed: it can never become durable in this session. */
  failed: boolean;
  /** Called once when the transaction becomes durable (see `whenDurable`). */
  callbacks?: (() => void)[];
}

export interface AckTrackerOptions {
  /** Called, in order, each time the durable position advances. */
  onDurable?: (lsn: Lsn, tx: TrackedTransaction) => void;
}

export class AckTracker {
  private readonly queue: TrackedTransaction[] = [];
  private head = 0;
  private durable: Lsn;
  private pendingEvents = 0;
  private waiters: { below: number; resolve: () => void }[] = [];
  private readonly onDurable: AckTrackerOptions['onDurable'];

  /** `start` is the position already durable (the slot's confirmed flush LSN, or 0). */
  constructor(start: Lsn = 0n, options: AckTrackerOptions = {}) {
    this.durable = start;
    this.onDurable = options.onDurable;
  }

  /** The highest commit end LSN whose transaction and all earlier ones are fully acknowledged. */
  get durableLsn(): Lsn {
    return this.durable;
  }

  /** Events sent and not yet acknowledged, across all transactions. */
  get inFlightEvents(): number {
    return this.pendingEvents;
  }

  /** Transactions registered and not yet durable. */
  get inFlightTransactions(): number {
    return this.queue.length - this.head;
  }

  /** True when nothing is in flight: every registered transaction is durable. */
  get idle(): boolean {
    return this.inFlightTransactions === 0;
  }

  /** The oldest transaction not yet durable, if any. */
  oldest(): TrackedTransaction | undefined {
    return this.queue[this.head];
  }

  /** Registers a transaction at its Begin. Transactions must be begun in commit order (pgoutput's order). */
  begin(xid: number, commitTimeUs: bigint): TrackedTransaction {
    const tx: TrackedTransaction = { xid, commitTimeUs, pending: 0, events: 0, commitEndLsn: null, failed: false };
    this.queue.push(tx);
    return tx;
  }

  /** Counts one event of `tx` handed to Kafka; count it later in `acked` (or call `failed`) exactly once. */
  sent(tx: TrackedTransaction): void {
    tx.pending++;
    tx.events++;
    this.pendingEvents++;
  }

  /** Kafka acknowledged `count` (default one) events of `tx`. */
  acked(tx: TrackedTransaction, count = 1): void {
    if (tx.pending < count) throw new Error(`ack tracker: more acknowledgements than sends for xid ${tx.xid}`);
    tx.pending -= count;
    this.pendingEvents -= count;
    this.wake();
    this.advance();
  }

  /**
   * A send of `tx` failed. The transaction is poisoned: the durable position stops before it for the
   * rest of this session, so a restart replays it from the slot.
   */
  failed(tx: TrackedTransaction): void {
    tx.failed = true;
    tx.pending--;
    this.pendingEvents--;
    this.wake();
  }

  /** The transaction's Commit arrived with its end LSN. */
  commit(tx: TrackedTransaction, commitEndLsn: Lsn): void {
    tx.commitEndLsn = commitEndLsn;
    this.advance();
  }

  /** Runs `fn` once `tx` is durable (at once if it already is). */
  whenDurable(tx: TrackedTransaction, fn: () => void): void {
    const index = this.queue.indexOf(tx, this.head);
    if (index < 0) {
      fn();
      return;
    }
    (tx.callbacks ??= []).push(fn);
  }

  /** Resolves once fewer than `below` events are in flight (backpressure for the decoder). */
  whenBelow(below: number): Promise<void> {
    if (this.pendingEvents < below) return Promise.resolve();
    return new Promise((resolve) => this.waiters.push({ below, resolve }));
  }

  /** Releases every waiter (used when a session stops). */
  releaseWaiters(): void {
    const waiting = this.waiters;
    this.waiters = [];
    for (const w of waiting) w.resolve();
  }

  private wake(): void {
    if (this.waiters.length === 0) return;
    const still: typeof this.waiters = [];
    for (const w of this.waiters) {
      if (this.pendingEvents < w.below) w.resolve();
      else still.push(w);
    }
    this.waiters = still;
  }

  private advance(): void {
    while (this.head < this.queue.length) {
      const tx = this.queue[this.head]!;
      if (tx.failed || tx.commitEndLsn === null || tx.pending > 0) break;
      this.head++;
      // Commit end LSNs rise in commit order; never move backwards whatever a caller passes.
      if (tx.commitEndLsn > this.durable) this.durable = tx.commitEndLsn;
      this.onDurable?.(this.durable, tx);
      if (tx.callbacks) for (const fn of tx.callbacks.splice(0)) fn();
    }
    // Compact now and then so a long session does not keep every transaction it ever saw.
    if (this.head > 1024 && this.head * 2 > this.queue.length) {
      this.queue.splice(0, this.head);
      this.head = 0;
    }
  }
}
