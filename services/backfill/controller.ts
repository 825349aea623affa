/**
 * The per-process controller: every `pollMs` it reads the run's control row (operator commands from
 * `ctl` or HTTP, run state), gathers the throttle signals, decides whether workers may start their
 * next batch, and publishes progress (metrics, TTY bar, process heartbeat row). Workers only ask it
 * `gate()` before each batch, so a pause takes effect within one batch plus one poll.
 */
import { hostname } from 'node:os';
import type { Logger } from '../core/log.js';
import { toParityError, type ParityError } from '../core/errors.js';
import { controlTables, readRun, runProgress, writeHeartbeat, type RunRow } from './control-store.js';
import type { Session } from './databases.js';
import type { BackfillMetrics } from './metrics.js';
import { decideHealth, type HealthLimits } from './health.js';
import { describePace, type Pacer, type PaceStatus } from './pace.js';
import type { ProbeRunner } from './probe.js';
import { etaSeconds, RateWindow, type ProgressBar } from './progress.js';
import { describeFindings, evaluateThrottle, THROTTLE_REASONS, type ThrottleFinding, type ThrottleLimits } from './throttle.js';
import type { SignalReader } from './throttle-signals.js';

export interface ControllerOptions {
  schema: string;
  runId: number;
  processId: string;
  workers: number;
  limits: ThrottleLimits;
  controlSession: () => Promise<Session>;
  monitorSession: () => Promise<Session>;
  signals: SignalReader;
  probe?: ProbeRunner;
  /** The duty cycle and its latency guard (`backfill.throttle.pace`); absent when pacing is off. */
  pacer?: Pacer;
  /** The health controller's limits (with a pacer); `maxWorkers` is `workers`. */
  health?: Omit<HealthLimits, 'maxLagSeconds' | 'maxWorkers'>;
  /** Reads the coordinator's kill-backfill flag; never throws (last known value on Redis errors). */
  killSwitch?: () => Promise<boolean>;
  metrics: BackfillMetrics;
  logger: Logger;
  progressBar?: ProgressBar;
  /** Monotonic milliseconds. */
  now: () => number;
  pollMs?: number;
  /** Called when the operator pins (number) or unpins (null) the batch size. */
  onBatchSize: (size: number | null) => void;
  /** The batch size workers currently use, for status. */
  batchSize: () => number;
}

export type StopReason = { kind: 'run-state'; state: RunRow['state']; error: string | null } | { kind: 'error'; error: ParityError };

export interface ControllerStatus {
  processId: string;
  runId: number;
  state: 'running' | 'throttled' | 'stopping';
  throttle: ThrottleFinding[];
  batchSize: number;
  batchSizePinned: boolean;
  maxLagSeconds: number;
  rowsPlanned: number;
  rowsDone: number;
  rowsPerSecond: number;
  etaSeconds: number | null;
  ranges: { pending: number; running: number; done: number };
  controlUrl: string | null;
  /** The duty cycle, last sleep and latency guard; null when pacing is off. */
  pace: PaceStatus | null;
}

const FATAL_POLL_FAILURES = 40;

export class Controller {
  private control: Session | undefined;
  private monitor: Session | undefined;
  private findings: ThrottleFinding[] = [];
  private stop: StopReason | undefined;
  private timer: NodeJS.Timeout | undefined;
  private waiters: (() => void)[] = [];
  private polling: Promise<void> | undefined;
  private pollFailures = 0;
  private overAbortStreak = 0;
  private appliedSeq = -1;
  private pinned: number | null = null;
  private lastHeartbeatMs = -Infinity;
  private lastPollMs: number | undefined;
  private throttledSinceMs: number | undefined;
  private readonly rate = new RateWindow();
  private status: Omit<ControllerStatus, 'throttle' | 'state' | 'batchSize' | 'controlUrl' | 'pace'> | undefined;
  private lastReasons = '';
  private stopped = false;
  /** Workers of this process in service (index < this may claim ranges); the health controller and `set workers` move it. */
  private workersActive: number;
  private lastHealthActMs = -Infinity;
  /** The operator's `set workers=N` as of the last poll (null: not pinned). */
  private workersPinned: number | null = null;
  /** Active sessions over the last polls: one snapshot of pg_stat_activity is too noisy to act on. */
  private readonly activeSamples: number[] = [];
  controlUrl: string | null = null;

  constructor(private readonly o: ControllerOptions) {
    this.workersActive = o.workers;
    o.metrics.workersActive.set(o.workers);
  }

  /** Workers of this process in service now. */
  get activeWorkers(): number {
    return this.workersActive;
  }

  /** First poll; throws when the control state cannot be read at all. */
  async start(): Promise<void> {
    await this.poll(true);
    this.schedule();
  }

  private schedule(): void {
    if (this.stopped) return;
    this.timer = setTimeout(() => {
      void this.pollNow().finally(() => this.schedule());
    }, this.o.pollMs ?? 250);
  }

  /**
   * Polls now (the HTTP endpoint calls this after a command so it applies at once). A poll already
   * in flight may have read the control row before the command, so this waits for one that starts
   * after the call.
   */
  async pollNow(): Promise<void> {
    if (this.polling) await this.polling.catch(() => undefined);
    if (!this.polling) {
      this.polling = this.poll(false).finally(() => {
        this.polling = undefined;
      });
    }
    return this.polling;
  }

  private async poll(first: boolean): Promise<void> {
    const now = this.o.now();
    try {
      if (!this.control) this.control = await this.o.controlSession();
      if (!this.monitor) this.monitor = await this.o.monitorSession();
      const run = await readRun(this.control.client, this.o.schema, this.o.runId);
      if (run.state !== 'running' && !this.stop) this.stop = { kind: 'run-state', state: run.state, error: run.error };
      if (run.batchSizeOverride !== this.pinned) {
        this.pinned = run.batchSizeOverride;
        this.o.onBatchSize(this.pinned);
        this.o.logger.info({ batchSize: this.pinned ?? 'auto' }, 'operator set the batch size');
      }
      const limits: ThrottleLimits = { ...this.o.limits, maxLagSeconds: run.maxLagSecondsOverride ?? this.o.limits.maxLagSeconds };
      const db = await this.o.signals.database(this.monitor.client);
      this.o.pacer?.pinWalRate(run.walRateOverride);
      const p99 = this.o.probe?.p99Ms();
      const http = this.o.signals.httpProbe();
      const flagFile = this.o.signals.flagFile();
      const killSwitch = this.o.killSwitch ? await this.o.killSwitch() : false;
      // Another reason holding the backfill (as of the last poll) makes the guard's samples meaningless.
      const latencyBaseline = this.o.pacer?.evaluate(this.findings.some((f) => f.reason !== 'latency_guard'));
      const decision = evaluateThrottle(
        {
          killSwitch,
          pausedBy: run.paused ? (run.pausedReason ?? 'paused by an operator') : null,
          replicationLagSeconds: db.replicationLagSeconds,
          ...(db.replicaLagBytes > 0 ? { replicaLagBytes: db.replicaLagBytes } : {}),
          ...(this.o.health?.maxServerWalBytesPerSecond !== undefined && db.serverWalBytesPerSecond !== undefined
            ? { serverWal: { bytesPerSecond: db.serverWalBytesPerSecond, max: this.o.health.maxServerWalBytesPerSecond } }
            : {}),
          ...(db.slotLag ? { slotLag: db.slotLag } : {}),
          activeBackends: db.activeBackends,
          ...(p99 !== undefined ? { probeP99Ms: p99, probeSamples: this.o.probe?.window.count ?? 0 } : {}),
          ...(http ? { http } : {}),
          ...(flagFile ? { flagFile } : {}),
          ...(latencyBaseline ? { latencyBaseline } : {}),
        },
        limits,
      );
      if (this.o.probe?.lastError)
        decision.findings.push({ reason: 'probe_p99', detail: `probe query failing: ${this.o.probe.lastError}` });
      this.overAbortStreak = decision.overAbortThreshold ? this.overAbortStreak + 1 : 0;
      // Two samples in a row above abortActive (one poll apart): a single spike does not abort a run.
      if (this.overAbortStreak >= 2 && !this.stop) await this.abortForLoad(db.activeBackends);
      this.account(decision.findings, now);
      this.findings = decision.findings;
      const m = this.o.metrics;
      this.steer(db, run.workersOverride, limits.maxLagSeconds, now);
      m.replicationLag.set(db.replicationLagSeconds);
      m.replicaLagBytes.set(db.replicaLagBytes);
      if (db.serverWalBytesPerSecond !== undefined) m.serverWal.set(db.serverWalBytesPerSecond);
      if (db.fpiPerRecord !== undefined) m.fpiRatio.set(db.fpiPerRecord);
      if (db.checkpointsRequested > 0) m.checkpointsRequested.inc(db.checkpointsRequested);
      m.activeBackends.set(db.activeBackends);
      if (db.slotLag) {
        m.slotLagBytes.set(db.slotLag.bytes);
        m.slotLagSeconds.set(db.slotLag.seconds);
      }
      if (p99 !== undefined) m.probeP99.set(p99 / 1000);
      const progress = await runProgress(this.control.client, this.o.schema, this.o.runId);
      this.rate.add({ atMs: now, rows: progress.rowsDone });
      const rps = this.rate.rowsPerSecond();
      const eta = etaSeconds(progress.rowsDone, run.rowsPlanned, this.findings.length > 0 ? 0 : rps);
      m.plannedRows.set(run.rowsPlanned);
      m.doneRows.set(progress.rowsDone);
      m.progress.set(run.rowsPlanned > 0 ? Math.min(1, progress.rowsDone / run.rowsPlanned) : 1);
      m.eta.set(eta ?? -1);
      for (const [state, n] of Object.entries(progress.ranges)) m.ranges.set({ state }, n);
      m.batchSize.set(this.o.batchSize());
      this.status = {
        processId: this.o.processId,
        runId: this.o.runId,
        batchSizePinned: this.pinned !== null,
        maxLagSeconds: limits.maxLagSeconds,
        rowsPlanned: run.rowsPlanned,
        rowsDone: progress.rowsDone,
        rowsPerSecond: rps,
        etaSeconds: eta ?? null,
        ranges: progress.ranges,
      };
      this.o.progressBar?.update({
        done: progress.rowsDone,
        planned: run.rowsPlanned,
        rowsPerSecond: rps,
        eta,
        ...(this.findings.length ? { throttle: describeFindings(this.findings) } : {}),
      });
      const seqChanged = run.commandSeq !== this.appliedSeq;
      this.appliedSeq = run.commandSeq;
      if (this.reasonsChanged(now) || first || seqChanged || now - this.lastHeartbeatMs >= 1_000) {
        this.lastHeartbeatMs = now;
        await this.heartbeat(this.stop ? 'stopping' : this.findings.length ? 'throttled' : 'running');
      }
      this.pollFailures = 0;
    } catch (err) {
      if (first) throw err;
      this.pollFailures++;
      this.o.logger.warn(
        { err: (err as Error).message, failures: this.pollFailures },
        'backfill controller could not poll; workers keep their last instructions',
      );
      this.control?.release(true);
      this.control = undefined;
      this.monitor?.release(true);
      this.monitor = undefined;
      if (this.pollFailures >= FATAL_POLL_FAILURES && !this.stop) {
        this.stop = { kind: 'error', error: toParityError(err, 'PARITY_CONNECTION') };
      }
    } finally {
      this.lastPollMs = now;
      for (const w of this.waiters.splice(0)) w();
    }
  }

  /**
   * The health controller: from the database's signals, moves the pace (a cut now, or no step up)
   * and the workers in service. A cut or a change of workers happens at most every 5 s, so one
   * lasting condition does not collapse the pace in a few polls. An operator's `set workers=N` pins
   * the workers in service (up to --workers).
   */
  private steer(db: Awaited<ReturnType<SignalReader['database']>>, workersPinned: number | null, maxLagSeconds: number, now: number): void {
    const pacer = this.o.pacer;
    const m = this.o.metrics;
    if (workersPinned !== null) {
      this.setWorkers(Math.min(workersPinned, this.o.workers), 'operator');
    } else if (this.workersPinned !== null) {
      // `set workers=auto`: back to every worker; the health controller takes some out again if it must.
      this.setWorkers(this.o.workers, 'operator: auto');
    }
    this.workersPinned = workersPinned;
    if (!pacer || !this.o.health) return;
    const held = this.findings.length > 0;
    this.activeSamples.push(db.activeBackends);
    if (this.activeSamples.length > 20) this.activeSamples.shift();
    const activeMean = this.activeSamples.reduce((a, b) => a + b, 0) / this.activeSamples.length;
    const d = decideHealth(
      {
        ...(db.serverWalBytesPerSecond !== undefined ? { serverWalBytesPerSecond: db.serverWalBytesPerSecond } : {}),
        checkpointsRequested: db.checkpointsRequested,
        replicaLagSeconds: db.replicationLagSeconds,
        activeBackends: Math.round(activeMean * 10) / 10,
        workersActive: this.workersActive,
        saturated: !held && pacer.saturated,
      },
      { ...this.o.health, maxLagSeconds, maxWorkers: this.o.workers, scaleWorkers: this.o.health.scaleWorkers && workersPinned === null },
    );
    const cooled = now - this.lastHealthActMs >= 5_000;
    // Between actions the decision still vetoes steps up; the cut itself waits for the cool-down.
    const acted = cooled && (d.pace === 'decrease' || d.workers !== this.workersActive);
    const applied = acted ? d : { ...d, pace: d.pace === 'decrease' ? ('hold' as const) : d.pace, workers: this.workersActive };
    pacer.applyHealth(applied, {
      ...(db.fpiPerRecord !== undefined ? { fpiPerRecord: db.fpiPerRecord } : {}),
      walCompression: db.walCompression,
    });
    if (acted) {
      this.lastHealthActMs = now;
      for (const r of d.reasons) m.healthDecisions.inc({ pace: d.pace, reason: r.reason });
      this.setWorkers(d.workers, d.reasons.map((r) => r.reason).join(','));
    }
  }

  private setWorkers(n: number, why: string): void {
    const next = Math.max(1, Math.min(n, this.o.workers));
    if (next === this.workersActive) return;
    this.o.logger.info({ from: this.workersActive, to: next, why }, 'workers in service changed');
    this.workersActive = next;
    this.o.pacer?.setWorkers(next);
    this.o.metrics.workersActive.set(next);
  }

  /** Logs when the set of throttle reasons changes (not when only their numbers move). */
  private reasonsChanged(now: number): boolean {
    const key = this.findings.map((f) => f.reason).join(',');
    if (key === this.lastReasons) return false;
    const was = this.lastReasons;
    this.lastReasons = key;
    if (key) {
      if (!was) this.throttledSinceMs = now;
      this.o.logger.info({ reasons: this.findings.map((f) => f.reason), detail: describeFindings(this.findings) }, 'backfill throttled');
    } else if (was) {
      const pausedSeconds = this.throttledSinceMs === undefined ? undefined : Math.round((now - this.throttledSinceMs) / 100) / 10;
      this.throttledSinceMs = undefined;
      this.o.logger.info({ pausedSeconds }, 'backfill resumed: no throttle reason left');
    }
    return true;
  }

  /** Adds the time since the last poll to every active reason, and sets the state gauges. */
  private account(findings: ThrottleFinding[], now: number): void {
    const m = this.o.metrics;
    const elapsed = this.lastPollMs === undefined ? 0 : (now - this.lastPollMs) / 1000;
    const active = new Set(findings.map((f) => f.reason));
    for (const reason of THROTTLE_REASONS) {
      const on = active.has(reason);
      m.throttleActive.set({ reason }, on ? 1 : 0);
      if (on && this.findings.some((f) => f.reason === reason)) m.throttledSeconds.inc({ reason }, elapsed);
    }
    m.throttled.set(active.size > 0 ? 1 : 0);
  }

  private async abortForLoad(active: number): Promise<void> {
    const detail = `load: ${active} active backends > abortActive ${this.o.limits.abortActive} on two checks in a row`;
    this.o.logger.error({ active, abortActive: this.o.limits.abortActive }, `backfill aborted: ${detail}`);
    await this.control?.client.query(
      `UPDATE ${controlTables(this.o.schema).runs} SET state = 'aborted', error = $2, finished_at = clock_timestamp() WHERE run_id = $1 AND state = 'running'`,
      [this.o.runId, `aborted by ${detail}`],
    );
    this.stop = { kind: 'run-state', state: 'aborted', error: `aborted by ${detail}` };
  }

  private async heartbeat(state: string): Promise<void> {
    if (!this.control) return;
    const pace = this.o.pacer?.status() ?? null;
    await writeHeartbeat(this.control.client, this.o.schema, {
      processId: this.o.processId,
      runId: this.o.runId,
      host: hostname(),
      pid: process.pid,
      controlUrl: this.controlUrl,
      workers: this.o.workers,
      state,
      reason: this.findings.length ? describeFindings(this.findings) : null,
      appliedSeq: Math.max(0, this.appliedSeq),
      batchSize: this.o.batchSize(),
      rowsPerSecond: this.status?.rowsPerSecond ?? 0,
      etaSeconds: this.status?.etaSeconds ?? null,
      dutyCycle: pace?.dutyCycle ?? null,
      pace: describePace(pace),
    });
  }

  /** Why workers must stop, if they must. */
  get stopReason(): StopReason | undefined {
    return this.stop;
  }

  /** Marks the process as stopping for a reason of its own (a worker's fatal error, a signal). */
  requestStop(reason: StopReason): void {
    if (!this.stop) this.stop = reason;
    for (const w of this.waiters.splice(0)) w();
    this.o.pacer?.wake();
  }

  /** Keeps the pace: sleeps after a batch of `batchSeconds` that changed `changed` rows (no-op when pacing is off). */
  async pace(batchSeconds: number, walBytes: number | null, signal?: AbortSignal, changed?: number): Promise<void> {
    if (!this.o.pacer || this.stop || this.stopped) return;
    await this.o.pacer.sleepAfter(batchSeconds, walBytes, signal, changed);
  }

  /**
   * Resolves 'go' when a worker may start its next batch, or 'stop' when it must stop. While any
   * throttle reason holds, waits poll by poll. With `workerIndex` (asked before claiming a range),
   * a worker out of service (index >= workers in service) also waits.
   */
  async gate(signal?: AbortSignal, workerIndex?: number): Promise<'go' | 'stop'> {
    for (;;) {
      if (this.stop || signal?.aborted || this.stopped) return 'stop';
      if (this.findings.length === 0 && (workerIndex === undefined || workerIndex < this.workersActive)) return 'go';
      await new Promise<void>((resolve) => {
        const done = () => {
          signal?.removeEventListener('abort', done);
          resolve();
        };
        this.waiters.push(done);
        signal?.addEventListener('abort', done, { once: true });
      });
    }
  }

  snapshot(): ControllerStatus {
    const s = this.status;
    return {
      processId: this.o.processId,
      runId: this.o.runId,
      state: this.stop ? 'stopping' : this.findings.length ? 'throttled' : 'running',
      throttle: this.findings,
      batchSize: this.o.batchSize(),
      batchSizePinned: this.pinned !== null,
      maxLagSeconds: s?.maxLagSeconds ?? this.o.limits.maxLagSeconds,
      rowsPlanned: s?.rowsPlanned ?? 0,
      rowsDone: s?.rowsDone ?? 0,
      rowsPerSecond: s?.rowsPerSecond ?? 0,
      etaSeconds: s?.etaSeconds ?? null,
      ranges: s?.ranges ?? { pending: 0, running: 0, done: 0 },
      controlUrl: this.controlUrl,
      pace: this.o.pacer?.status() ?? null,
    };
  }

  /** Stops polling and writes the final heartbeat; releases the sessions. */
  async close(finalState = 'exited'): Promise<void> {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    this.o.pacer?.wake();
    await this.polling?.catch(() => undefined);
    for (const w of this.waiters.splice(0)) w();
    try {
      await this.heartbeat(finalState);
    } catch {
      // The process is leaving; a missing last heartbeat only ages out of `status`.
    }
    this.control?.release();
    this.monitor?.release();
    this.control = undefined;
    this.monitor = undefined;
  }
}
