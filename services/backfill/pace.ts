/**
 * The pacer of one `backfill run` process (`backfill.throttle.pace`): the duty cycle its workers
 * keep (a sleep after every batch), the latency guard that moves it, and the guard's built-in probe.
 * The controller calls `evaluate` on every poll (the guard's judgement, and the `latency_guard`
 * signal while a baseline is measured); workers call `sleepAfter` after every batch.
 *
 * Why a duty cycle of short batches rather than long batches back to back: what an OLTP transaction
 * pays for a running backfill is mostly the backfill's write-ahead log. Every commit flushes the WAL
 * up to its own commit record, the backfill's records included, so a commit that lands during a
 * large batch waits for megabytes of someone else's WAL (measured on the 2-core stack: a 0.5 s batch
 * raises the OLTP p99 about 4x while a CPU-only load of the same shape changes nothing). Short
 * batches keep each burst small and the sleeps leave gaps for the foreground; the guard then finds
 * the duty cycle the foreground tolerates.
 */
import type { Logger } from '../core/log.js';
import type { Spec } from '../core/spec.js';
import { DutyCycle, niceRatio, type PaceLevel } from './duty-cycle.js';
import type { HealthDecision } from './health.js';
import { formatRate, OwnWalEstimator, WalBudget } from './wal-budget.js';
import { LatencyGuard, type GuardAction, type LatencyGuardState } from './latency-guard.js';
import type { BackfillMetrics } from './metrics.js';
import type { ThrottleSignals } from './throttle.js';

/** `backfill.throttle.pace` of the spec. */
export type PaceSettings = Spec['backfill']['throttle']['pace'];

/** The built-in probe queries. `commit` assigns a transaction id, so its commit record is flushed like an OLTP commit's. */
export const GUARD_PROBE_SQL: Record<PaceSettings['latencyGuard']['probe'], string> = {
  commit: 'SELECT txid_current()',
  read: 'SELECT 1',
};

export interface PaceStatus {
  /** What the sleeps keep: the process's WAL rate, or each worker's duty cycle. */
  mode: PaceSettings['mode'];
  /** wal-rate: the WAL budget, bytes/s (null in duty-cycle mode). */
  walBytesPerSecond: number | null;
  /** The budget (or duty cycle) was pinned by an operator (`ctl set wal-rate=N`). */
  pinned: boolean;
  /** Workers of this process in service (the health controller may take some out). */
  workersActive: number;
  /** duty-cycle: the duty cycle; wal-rate: the share of the last batch in batch + sleep. */
  dutyCycle: number;
  /** gh-ost's nice ratio for the duty cycle: seconds slept per second of batch. */
  niceRatio: number;
  /** Target batch duration while paced, seconds. */
  batchSeconds: number;
  lastBatchSeconds: number | null;
  /** WAL the last batch wrote, bytes (target: `batchWalBytes`). */
  lastBatchWalBytes: number | null;
  lastSleepMs: number | null;
  sleptSeconds: number;
  guard: (LatencyGuardState & { probe: 'commit' | 'read' | 'sql'; factor: number }) | null;
  /** The health controller's last decision, with its reasons (null before the first). */
  health: HealthDecision | null;
  /** Full-page images per WAL record over the last poll, and the server's wal_compression. */
  fpiPerRecord: number | null;
  walCompression: string | null;
}

/**
 * The level the guard moves, with the health controller's veto: while held, a clean window raises
 * nothing (the database says no more even though the probe is fine).
 */
class HeldLevel implements PaceLevel {
  held = false;
  constructor(readonly inner: PaceLevel) {}
  get current(): number {
    return this.inner.current;
  }
  get atMin(): boolean {
    return this.inner.atMin;
  }
  get atMax(): boolean {
    return this.held || this.inner.atMax;
  }
  sleepMsAfter(batchSeconds: number, walBytes?: number | null): number {
    return this.inner.sleepMsAfter(batchSeconds, walBytes);
  }
  decrease(): number {
    return this.inner.decrease();
  }
  increase(): number {
    return this.held ? this.inner.current : this.inner.increase();
  }
}

export class Pacer {
  private readonly duty: HeldLevel;
  private readonly budget: WalBudget | undefined;
  private readonly guard: LatencyGuard | undefined;
  private activeWorkers: number;
  private health: HealthDecision | null = null;
  private fpiPerRecord: number | null = null;
  private walCompression: string | null = null;
  /** Moving share of sleep in batch + sleep; near zero means the workers cannot spend the budget. */
  private sleepShare = 1;
  private readonly ownWal = new OwnWalEstimator();
  private lastBatchSeconds: number | null = null;
  private lastBatchWalBytes: number | null = null;
  private lastSleepMs: number | null = null;
  private sleptSeconds = 0;
  private readonly wakers = new Set<() => void>();

  constructor(
    private readonly settings: PaceSettings,
    private readonly metrics: BackfillMetrics,
    private readonly logger: Logger,
    private readonly now: () => number,
    workers = 1,
  ) {
    this.activeWorkers = workers;
    if (settings.mode === 'wal-rate') {
      this.budget = new WalBudget({
        initial: settings.walBytesPerSecond,
        min: settings.minWalBytesPerSecond,
        max: settings.maxWalBytesPerSecond,
        increaseStep: settings.walIncreaseBytesPerSecond,
        workers: () => this.activeWorkers,
        fallbackBatchBytes: settings.batchWalBytes,
      });
      this.duty = new HeldLevel(this.budget);
      metrics.walBudget.set(this.budget.current);
    } else {
      this.duty = new HeldLevel(
        new DutyCycle({
          initial: settings.dutyCycle,
          min: settings.minDutyCycle,
          max: settings.maxDutyCycle,
          increaseStep: settings.increaseStep,
        }),
      );
      metrics.dutyCycle.set(this.duty.current);
    }
    if (settings.latencyGuard.enabled) this.guard = new LatencyGuard(settings.latencyGuard, this.duty, now());
  }

  /** Workers of this process in service (they share a WAL budget). */
  setWorkers(n: number): void {
    this.activeWorkers = Math.max(1, n);
  }

  /** True when the workers' recent sleeps are near zero: more workers could spend more of the budget. */
  get saturated(): boolean {
    return this.sleepShare < 0.05;
  }

  /** The operator's pin of the WAL budget (bytes/s), or null to unpin. Duty-cycle mode has nothing to pin. */
  pinWalRate(rate: number | null): void {
    this.budget?.pin(rate ?? undefined);
    if (this.budget) this.metrics.walBudget.set(this.budget.current);
  }

  /** Applies the health controller's decision: a step down now, and no step up while it is not `allow`. */
  applyHealth(d: HealthDecision, wal: { fpiPerRecord?: number; walCompression: string }): void {
    const was = this.health?.pace;
    this.health = d;
    this.fpiPerRecord = wal.fpiPerRecord ?? this.fpiPerRecord;
    this.walCompression = wal.walCompression;
    this.duty.held = d.pace !== 'allow';
    if (d.pace === 'decrease' && !this.duty.atMin) {
      const level = this.duty.decrease();
      this.logger.info({ level, reasons: d.reasons }, 'health controller: pace cut');
    } else if (d.pace !== was) this.logger.info({ pace: d.pace, reasons: d.reasons }, `health controller: pace ${d.pace}`);
    if (this.budget) this.metrics.walBudget.set(this.budget.current);
    else this.metrics.dutyCycle.set(this.duty.current);
  }

  /** The query the guard's probe runs, or undefined without a guard. */
  get probeSql(): string | undefined {
    return this.guard ? (this.settings.latencyGuard.sql ?? GUARD_PROBE_SQL[this.settings.latencyGuard.probe]) : undefined;
  }

  /** One probe duration for the guard. */
  addSample(ms: number): void {
    this.guard?.add(ms);
  }

  /**
   * The guard's judgement for this poll; `paused` says another reason holds the backfill. Returns
   * the `latency_guard` signal while a baseline is being measured (the backfill is held then).
   */
  evaluate(paused: boolean): ThrottleSignals['latencyBaseline'] {
    if (!this.guard) return undefined;
    const now = this.now();
    this.act(this.guard.evaluate(now, paused));
    const s = this.guard.state(now);
    if (this.budget) this.metrics.walBudget.set(this.budget.current);
    else this.metrics.dutyCycle.set(this.duty.current);
    if (s.p99Ms !== null) this.metrics.guardP99.set(s.p99Ms / 1000);
    if (s.baselineP99Ms !== null) this.metrics.guardBaselineP99.set(s.baselineP99Ms / 1000);
    if (s.thresholdMs !== null) this.metrics.guardLimit.set(s.thresholdMs / 1000);
    if (s.phase !== 'baseline') return undefined;
    return {
      reason: s.baselineReason,
      elapsedSeconds: s.baselineElapsedSeconds ?? 0,
      seconds: this.settings.latencyGuard.baselineSeconds,
      samples: s.samples,
      ...(s.triggerP99Ms !== undefined ? { p99Ms: s.triggerP99Ms } : {}),
      ...(s.thresholdMs !== null ? { limitMs: s.thresholdMs } : {}),
    };
  }

  private act(a: GuardAction): void {
    const r = (ms: number) => Math.round(ms * 1000) / 1000;
    switch (a.kind) {
      case 'none':
        return;
      case 'baseline-done':
        this.metrics.guardMoves.inc({ move: 'baseline' });
        this.logger.info(
          { baselineP99Ms: r(a.baselineP99Ms), limitMs: r(a.thresholdMs), samples: a.samples, dutyCycle: this.duty.current },
          'latency guard: baseline measured; backfill continues',
        );
        return;
      case 'rebaseline':
        this.logger.info(
          { reason: a.reason, ...(a.p99Ms !== undefined ? { p99Ms: r(a.p99Ms) } : {}), dutyCycle: this.duty.current },
          'latency guard: holding the backfill to measure a new baseline',
        );
        return;
      case 'decrease':
        this.metrics.guardMoves.inc({ move: a.cause === 'p99' ? 'decrease' : 'decrease_shift' });
        this.logger.info(
          {
            dutyCycle: a.dutyCycle,
            p99Ms: r(a.p99Ms),
            over: a.over,
            samples: a.samples,
            ...(a.cause === 'shift' ? { overBaselineP90: a.overP90, overBaselineP99: a.overP99 } : {}),
          },
          a.cause === 'p99'
            ? 'latency guard: probe p99 over the limit; duty cycle cut'
            : 'latency guard: probe tail shifted above its baseline; duty cycle cut',
        );
        return;
      case 'increase':
        this.metrics.guardMoves.inc({ move: 'increase' });
        this.logger.debug({ dutyCycle: a.dutyCycle, p99Ms: r(a.p99Ms) }, 'latency guard: probe p99 within the limit; duty cycle raised');
        return;
    }
  }

  /**
   * Sleeps after a batch of `batchSeconds` (that wrote `walBytes`, when measured) for as long as the
   * duty cycle asks. `wake` (a stop) ends the sleep early; so does `signal`.
   */
  async sleepAfter(batchSeconds: number, walBytes: number | null, signal?: AbortSignal, changed?: number): Promise<void> {
    // The budget is charged the batch's own WAL (the measurement is cluster-wide: see OwnWalEstimator).
    const charged = changed === undefined ? walBytes : this.ownWal.charge(walBytes, changed);
    const ms = this.duty.sleepMsAfter(batchSeconds, charged);
    const share = batchSeconds > 0 || ms > 0 ? ms / (ms + batchSeconds * 1000) : 1;
    this.sleepShare = this.sleepShare * 0.8 + share * 0.2;
    if (this.budget) this.metrics.dutyCycle.set(batchSeconds > 0 ? (batchSeconds * 1000) / (batchSeconds * 1000 + ms) : 1);
    this.lastBatchSeconds = batchSeconds;
    this.lastBatchWalBytes = walBytes;
    this.lastSleepMs = ms;
    this.metrics.paceSleep.set(ms / 1000);
    if (ms <= 0 || signal?.aborted) return;
    const started = this.now();
    await new Promise<void>((resolve) => {
      const done = () => {
        clearTimeout(timer);
        signal?.removeEventListener('abort', done);
        this.wakers.delete(done);
        resolve();
      };
      const timer = setTimeout(done, ms);
      signal?.addEventListener('abort', done, { once: true });
      this.wakers.add(done);
    });
    const slept = (this.now() - started) / 1000;
    this.sleptSeconds += slept;
    this.metrics.paceSleepTotal.inc(slept);
  }

  /** Ends every sleep in progress (the process is stopping). */
  wake(): void {
    for (const w of [...this.wakers]) w();
  }

  status(): PaceStatus {
    const d = this.budget
      ? this.lastBatchSeconds !== null && this.lastSleepMs !== null && this.lastBatchSeconds > 0
        ? (this.lastBatchSeconds * 1000) / (this.lastBatchSeconds * 1000 + this.lastSleepMs)
        : 1
      : this.duty.current;
    return {
      mode: this.settings.mode,
      walBytesPerSecond: this.budget ? this.budget.current : null,
      pinned: this.budget?.isPinned ?? false,
      workersActive: this.activeWorkers,
      health: this.health,
      fpiPerRecord: this.fpiPerRecord,
      walCompression: this.walCompression,
      dutyCycle: d,
      niceRatio: niceRatio(d),
      batchSeconds: this.settings.batchSeconds,
      lastBatchSeconds: this.lastBatchSeconds,
      lastBatchWalBytes: this.lastBatchWalBytes,
      lastSleepMs: this.lastSleepMs,
      sleptSeconds: this.sleptSeconds,
      guard: this.guard
        ? {
            ...this.guard.state(this.now()),
            probe: this.settings.latencyGuard.sql ? 'sql' : this.settings.latencyGuard.probe,
            factor: this.settings.latencyGuard.factor,
          }
        : null,
    };
  }
}

const fmtMs = (v: number): string => (v >= 100 ? v.toFixed(0) : v >= 10 ? v.toFixed(1) : v.toFixed(2));

/** One line for status and logs: the duty cycle, the last sleep, and the guard's view. */
export function describePace(p: PaceStatus | null): string {
  if (!p) return 'off (batches back to back)';
  const duty = `duty cycle ${(p.dutyCycle * 100).toFixed(p.dutyCycle < 0.1 ? 1 : 0)}% (nice ratio ${p.niceRatio.toFixed(1)})`;
  const parts =
    p.walBytesPerSecond !== null
      ? [
          `WAL budget ${formatRate(p.walBytesPerSecond)}${p.pinned ? ' (pinned by an operator)' : ''}, ${p.workersActive} worker(s) in service, ${duty}`,
        ]
      : [duty];
  if (p.lastBatchSeconds !== null && p.lastSleepMs !== null) {
    const wal = p.lastBatchWalBytes !== null ? ` writing ${Math.round(p.lastBatchWalBytes / 1024)} KiB of WAL` : '';
    parts.push(`sleeping ${fmtMs(p.lastSleepMs)} ms after a ${fmtMs(p.lastBatchSeconds * 1000)} ms batch${wal}`);
  }
  const g = p.guard;
  if (!g) parts.push('latency guard off');
  else if (g.phase === 'baseline') parts.push(`latency guard measuring its baseline (${g.probe} probe, ${g.samples} samples)`);
  else if (g.baselineP99Ms !== null && g.thresholdMs !== null) {
    parts.push(
      `latency guard: ${g.probe} probe p99 ${g.p99Ms === null ? '?' : fmtMs(g.p99Ms)} ms, limit ${fmtMs(g.thresholdMs)} ms (baseline p99 ${fmtMs(g.baselineP99Ms)} ms x ${g.factor})`,
    );
  }
  if (p.health) parts.push(`health: ${p.health.pace} (${p.health.reasons.map((r) => r.reason).join(', ')})`);
  if (p.fpiPerRecord !== null && p.fpiPerRecord > 0) {
    parts.push(
      `full-page images ${(p.fpiPerRecord * 100).toFixed(0)}% of WAL records${p.walCompression === 'off' ? ' (wal_compression is off: consider wal_compression = lz4 or pglz)' : ''}`,
    );
  }
  return parts.join('; ');
}
