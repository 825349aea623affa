/**
 * The health controller, pure: from one snapshot of the database's signals it decides whether the
 * pace may rise, must hold or must come down, and how many of this process's workers stay in
 * service. The latency guard keeps the foreground ratio (probe p99 vs its baseline); this adds the
 * other signals a database gives, each decision with its reason:
 *
 * - WAL rate of the whole server (pg_current_wal_insert_lsn over the last polls) against
 *   `pace.maxServerWalBytesPerSecond` (off by default): over it pauses (`wal_rate`, in throttle.ts)
 *   and cuts the pace.
 * - Checkpoint pressure: a checkpoint *requested* since the last poll (pg_stat_checkpointer
 *   num_requested, pg_stat_bgwriter checkpoints_req before PostgreSQL 17) means WAL reached
 *   max_wal_size; every page touched after it is logged whole (full-page images), so the pace comes
 *   down one step.
 * - Replica replay lag over half of `maxLagSeconds`: the pace holds (over the limit the backfill
 *   pauses, reason `replica_lag`).
 * - Active sessions against the server's CPUs: above the CPUs one worker leaves service and the pace
 *   holds; above twice the CPUs the pace comes down too.
 * - With none of these and the WAL budget out of reach (the workers' sleeps are near zero), a worker
 *   comes back into service, up to `--workers`.
 */

export type HealthReason = 'wal_rate' | 'checkpoint_pressure' | 'replica_lag' | 'cpu_saturation' | 'budget_unreached' | 'healthy';

/** Every reason, for metrics labels (a closed set). */
export const HEALTH_REASONS: HealthReason[] = [
  'wal_rate',
  'checkpoint_pressure',
  'replica_lag',
  'cpu_saturation',
  'budget_unreached',
  'healthy',
];

export interface HealthSignals {
  /** WAL bytes/s of the whole server over the last polls; undefined before two readings. */
  serverWalBytesPerSecond?: number;
  /** Checkpoints requested (not timed) since the last poll. */
  checkpointsRequested: number;
  /** Largest replay lag of a physical replica, seconds (0 without replicas). */
  replicaLagSeconds: number;
  /** Active client backends, the backfill's own excluded. */
  activeBackends: number;
  /** Backfill workers of this process in service and running batches. */
  workersActive: number;
  /** The workers' recent sleeps are near zero: the pace cannot spend its budget with this many workers. */
  saturated: boolean;
}

export interface HealthLimits {
  cpus: number;
  maxLagSeconds: number;
  maxServerWalBytesPerSecond?: number;
  /** `--workers`: the most workers this process may have in service. */
  maxWorkers: number;
  /** `pace.scaleWorkers`; an operator pin (`ctl set workers=N`) also turns scaling off. */
  scaleWorkers: boolean;
}

export interface HealthDecision {
  /** `decrease`: cut the pace one step now; `hold`: no step up; `allow`: the guard may raise it. */
  pace: 'decrease' | 'hold' | 'allow';
  workers: number;
  reasons: { reason: HealthReason; detail: string }[];
}

const fmtRate = (b: number): string => (b >= 1024 * 1024 ? `${(b / 1024 / 1024).toFixed(1)} MiB/s` : `${Math.round(b / 1024)} KiB/s`);

export function decideHealth(s: HealthSignals, l: HealthLimits): HealthDecision {
  const reasons: HealthDecision['reasons'] = [];
  let pace: HealthDecision['pace'] = 'allow';
  let workers = Math.min(Math.max(1, s.workersActive), l.maxWorkers);
  const worse = (p: HealthDecision['pace']) => {
    if (p === 'decrease' || (p === 'hold' && pace === 'allow')) pace = p;
  };
  if (
    l.maxServerWalBytesPerSecond !== undefined &&
    s.serverWalBytesPerSecond !== undefined &&
    s.serverWalBytesPerSecond > l.maxServerWalBytesPerSecond
  ) {
    worse('decrease');
    reasons.push({
      reason: 'wal_rate',
      detail: `server WAL ${fmtRate(s.serverWalBytesPerSecond)} > max ${fmtRate(l.maxServerWalBytesPerSecond)}`,
    });
  }
  if (s.checkpointsRequested > 0) {
    worse('decrease');
    reasons.push({
      reason: 'checkpoint_pressure',
      detail: `${s.checkpointsRequested} checkpoint(s) requested (WAL reached max_wal_size): full-page images follow`,
    });
  }
  if (s.replicaLagSeconds > l.maxLagSeconds / 2) {
    worse('hold');
    reasons.push({
      reason: 'replica_lag',
      detail: `replica replay lag ${s.replicaLagSeconds.toFixed(2)}s > half of max ${l.maxLagSeconds}s`,
    });
  }
  if (s.activeBackends > l.cpus) {
    worse(s.activeBackends > 2 * l.cpus ? 'decrease' : 'hold');
    if (l.scaleWorkers && workers > 1) workers--;
    reasons.push({ reason: 'cpu_saturation', detail: `${s.activeBackends} active sessions (mean of the last polls) > ${l.cpus} CPUs` });
  }
  if (reasons.length === 0) {
    if (l.scaleWorkers && s.saturated && workers < l.maxWorkers) {
      workers++;
      reasons.push({
        reason: 'budget_unreached',
        detail: `the workers cannot reach the pace's budget; ${workers} of ${l.maxWorkers} in service`,
      });
    } else reasons.push({ reason: 'healthy', detail: 'no health signal over its limit' });
  }
  return { pace, workers, reasons };
}

/** One line for status: the decision and its reasons. */
export function describeHealth(d: HealthDecision): string {
  return `${d.pace}, ${d.workers} worker(s) in service: ${d.reasons.map((r) => `${r.reason} (${r.detail})`).join('; ')}`;
}
