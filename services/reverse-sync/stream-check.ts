/**
 * The stream check in reverse (issue 23): every key reverse sync has applied is checked on the old
 * side once the apply committed, as the forward stream reconciler checks each change event on the
 * new side. The check itself is the reconciler's (injected by the CLI wiring, sides swapped and the
 * reverse mapping, services/cli/reverse-verify.ts): reverse sync does not import the reconciler.
 *
 * It runs beside the apply, never in its transaction: applied keys wait in a queue (one entry per
 * key, the latest wins) and are checked in chunks. A key whose new row is still what was applied
 * and whose old row stays different for `reconcile.retryWindowMs` is confirmed drift; a key whose
 * new row moved on is superseded (its own change follows and is checked in turn). Counters live in
 * `reverse_stream` (the old side's control schema), so `reverse-sync check`, the status page and the
 * window's evidence read them from any process.
 */
import type pg from 'pg';
import type { Logger } from '../core/log.js';
import type { ReverseMetrics } from './metrics.js';
import { addStreamCounts, isUnrepresentable } from './window-store.js';

export type { StreamCounts } from './window-store.js';

type Queryable = Pick<pg.ClientBase, 'query'>;

/** One applied key: its values as text in key order, and whether its last change was a delete. */
export interface AppliedKey {
  values: string[];
  deleted: boolean;
}

export type StreamVerdict = 'match' | 'mismatch' | 'superseded' | 'skipped';

export interface StreamCheckResult {
  key: string[];
  verdict: StreamVerdict;
  reason?: string;
}

/** The check of a chunk of applied keys (the reconciler's stream check with the sides swapped). */
export interface ReverseStreamChecker {
  check(keys: AppliedKey[]): Promise<StreamCheckResult[]>;
  close(): Promise<void>;
}

/** Opens a checker (its own sessions on both sides). */
export type OpenReverseStreamChecker = () => Promise<ReverseStreamChecker>;

export interface StreamCheckOptions {
  open: OpenReverseStreamChecker;
  /** The old representation's database (window tables). */
  db: Queryable;
  schema: string;
  migration: string;
  logger: Logger;
  metrics: ReverseMetrics;
  /** Keys per check (default 500). */
  chunkKeys?: number;
  /** Keys waiting above which `enqueue` waits for the checker (default 50,000; bounds memory). */
  maxPending?: number;
  /** Wait after a failed check before retrying it (default 1 s). */
  retryMs?: number;
}

/** The queue of applied keys and the loop that checks them. */
export class ReverseStreamCheck {
  private readonly pending = new Map<string, AppliedKey>();
  private checking = 0;
  private checker: ReverseStreamChecker | null = null;
  private loop: Promise<void> | null = null;
  private wake: (() => void) | null = null;
  private drained: (() => void)[] = [];
  private stopped = false;
  private failures = 0;
  /** Counted in this process (the stored counters add every process's). */
  readonly counts = { checked: 0, matched: 0, superseded: 0, skipped: 0, confirmedDrift: 0 };
  lastError: string | null = null;

  constructor(private readonly options: StreamCheckOptions) {}

  /** Keys applied and not decided yet. */
  get inFlight(): number {
    return this.pending.size + this.checking;
  }

  /** Hands over the keys of a committed apply; waits only while the queue is full. */
  async enqueue(keys: Iterable<readonly [string, AppliedKey]>): Promise<void> {
    if (this.stopped) return;
    let replaced = 0;
    for (const [k, v] of keys) {
      // A key queued again before its check: one check of its latest state covers both.
      if (this.pending.delete(k)) replaced++;
      this.pending.set(k, v);
    }
    if (replaced > 0) {
      this.counts.superseded += replaced;
      this.options.metrics.streamChecks.inc({ result: 'superseded' }, replaced);
    }
    this.options.metrics.streamInFlight.set(this.inFlight);
    this.loop ??= this.run();
    this.wake?.();
    const max = this.options.maxPending ?? 50_000;
    while (this.pending.size > max && !this.stopped) await new Promise<void>((resolve) => this.drained.push(resolve));
  }

  /** Stops after the chunk in hand; keys still queued are left unchecked (their state is verified by segment verification). */
  async stop(): Promise<void> {
    this.stopped = true;
    this.wake?.();
    for (const d of this.drained.splice(0)) d();
    await this.loop?.catch(() => undefined);
    await this.checker?.close().catch(() => undefined);
    this.checker = null;
  }

  private async run(): Promise<void> {
    const chunkKeys = this.options.chunkKeys ?? 500;
    while (!this.stopped) {
      if (this.pending.size === 0) {
        for (const d of this.drained.splice(0)) d();
        await new Promise<void>((resolve) => (this.wake = resolve));
        this.wake = null;
        continue;
      }
      const chunk: [string, AppliedKey][] = [];
      for (const entry of this.pending) {
        chunk.push(entry);
        if (chunk.length >= chunkKeys) break;
      }
      for (const [k] of chunk) this.pending.delete(k);
      this.checking = chunk.length;
      try {
        this.checker ??= await this.options.open();
        const results = await this.checker.check(chunk.map(([, v]) => v));
        await this.tally(results);
        this.failures = 0;
        this.lastError = null;
      } catch (err) {
        // Never dropped silently: the keys go back (unless a newer state of theirs is queued) and the check is retried.
        for (const [k, v] of chunk) if (!this.pending.has(k)) this.pending.set(k, v);
        this.failures++;
        this.lastError = err instanceof Error ? err.message : String(err);
        this.options.metrics.streamCheckErrors.inc();
        this.options.logger.warn({ err: this.lastError, keys: chunk.length }, 'reverse stream check failed; retrying');
        await this.checker?.close().catch(() => undefined);
        this.checker = null;
        await new Promise((r) => setTimeout(r, Math.min(30_000, (this.options.retryMs ?? 1_000) * this.failures)));
      } finally {
        this.checking = 0;
        this.options.metrics.streamInFlight.set(this.inFlight);
      }
      if (this.pending.size <= (this.options.maxPending ?? 50_000)) for (const d of this.drained.splice(0)) d();
    }
  }

  private async tally(results: StreamCheckResult[]): Promise<void> {
    const { db, schema, migration, metrics, logger } = this.options;
    const add = { checked: 0, matched: 0, superseded: 0, skipped: 0, confirmedDrift: 0 };
    for (const r of results) {
      let verdict = r.verdict;
      // A row the old shape cannot hold is never written back (it is recorded and keeps the window
      // unclean on its own): its difference is not drift.
      if (verdict === 'mismatch' && (await isUnrepresentable(db, schema, migration, r.key))) verdict = 'skipped';
      add.checked++;
      if (verdict === 'match') add.matched++;
      else if (verdict === 'superseded') add.superseded++;
      else if (verdict === 'skipped') add.skipped++;
      else {
        add.confirmedDrift++;
        logger.warn({ key: r.key, reason: r.reason }, 'reverse stream check: the old side differs from reverse(new) (confirmed drift)');
      }
      metrics.streamChecks.inc({ result: verdict });
    }
    for (const k of Object.keys(add) as (keyof typeof add)[]) this.counts[k] += add[k];
    await addStreamCounts(db, schema, migration, add, this.pending.size);
  }
}
