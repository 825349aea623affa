/**
 * The backfill's Prometheus metrics. Counters are this process's; the progress gauges are the run's
 * (all processes, read from the checkpoints). The throttle reason is a label from a closed set of
 * a few values; the free-text detail goes to status and logs, never into labels.
 */
import type { Registry } from 'prom-client';
import { lockLostGauge } from '../core/fence-watch.js';
import { counter, gauge, histogram, LATENCY_BUCKETS_SECONDS } from '../core/metrics.js';
import { THROTTLE_REASONS } from './throttle.js';

/** Labels of `parity_backfill_latency_guard_moves_total`. */
export const GUARD_MOVES = ['decrease', 'decrease_shift', 'increase', 'baseline'] as const;

export function backfillMetrics(registry: Registry) {
  const m = {
    /** 1 while this process's fencing token is superseded (core/fence-watch.ts). */
    lockLost: lockLostGauge(registry),
    rows: counter(registry, 'parity_backfill_rows_total', 'Keys of the old representation walked by committed batches of this process'),
    rowsChanged: counter(
      registry,
      'parity_backfill_rows_changed_total',
      'Rows written by committed batches of this process (new value differed)',
    ),
    batches: counter(registry, 'parity_backfill_batches_total', 'Batches committed by this process'),
    batchRetries: counter(registry, 'parity_backfill_batch_retries_total', 'Batch attempts rolled back and retried, by cause', ['cause']),
    batchDuration: histogram(
      registry,
      'parity_backfill_batch_duration_seconds',
      'Duration of committed batches, checkpoint included',
      LATENCY_BUCKETS_SECONDS,
    ),
    batchSize: gauge(registry, 'parity_backfill_batch_size_rows', 'Keys the next batch asks for (adaptive, or pinned by an operator)'),
    plannedRows: gauge(registry, 'parity_backfill_planned_rows', 'Keys in the run, counted when it was planned (upper bound fixed then)'),
    doneRows: gauge(registry, 'parity_backfill_done_rows', 'Keys checkpointed by all processes of the run'),
    progress: gauge(registry, 'parity_backfill_progress_ratio', 'Share of planned keys checkpointed, 0 to 1'),
    ranges: gauge(registry, 'parity_backfill_ranges', 'Ranges of the run by state', ['state']),
    checkpointTime: gauge(
      registry,
      'parity_backfill_checkpoint_timestamp_seconds',
      'Unix time of the last checkpoint this process committed',
    ),
    eta: gauge(registry, 'parity_backfill_eta_seconds', 'Estimated seconds until the run completes at the recent rate (-1 when unknown)'),
    throttled: gauge(registry, 'parity_backfill_throttled', '1 while the backfill is paused for any reason'),
    throttleActive: gauge(registry, 'parity_backfill_throttle_active', '1 while this reason pauses the backfill', ['reason']),
    throttledSeconds: counter(registry, 'parity_backfill_throttled_seconds_total', 'Time the backfill was paused, by reason', ['reason']),
    replicationLag: gauge(
      registry,
      'parity_backfill_replication_lag_seconds',
      'Largest replica replay lag seen by the throttle (replay_lag, or bytes not replayed over the WAL rate)',
    ),
    slotLagBytes: gauge(
      registry,
      'parity_backfill_slot_lag_bytes',
      'WAL bytes between the current position and the CDC slot confirmed position',
    ),
    slotLagSeconds: gauge(
      registry,
      'parity_backfill_slot_lag_seconds',
      'CDC slot lag in seconds, estimated from bytes and the recent WAL rate',
    ),
    activeBackends: gauge(registry, 'parity_backfill_active_backends', 'Active client backends on the source, backfill sessions excluded'),
    probeP99: gauge(registry, 'parity_backfill_probe_p99_seconds', 'p99 of the throttle probe query over its window'),
    dutyCycle: gauge(
      registry,
      'parity_backfill_duty_cycle_ratio',
      'Share of wall time each worker spends in batches (1 when pacing is off)',
    ),
    paceSleep: gauge(
      registry,
      'parity_backfill_pace_last_sleep_seconds',
      'Sleep after the last batch, from its duration and the duty cycle',
    ),
    paceSleepTotal: counter(
      registry,
      'parity_backfill_pace_sleep_seconds_total',
      'Time workers slept between batches to keep the duty cycle',
    ),
    guardBaselineP99: gauge(
      registry,
      'parity_backfill_latency_guard_baseline_p99_seconds',
      'p99 of the latency guard probe measured with the backfill held (-1 before the first baseline)',
    ),
    guardP99: gauge(registry, 'parity_backfill_latency_guard_p99_seconds', 'p99 of the latency guard probe over its window'),
    guardLimit: gauge(
      registry,
      'parity_backfill_latency_guard_limit_seconds',
      'Probe p99 above which the guard cuts the duty cycle (-1 before the first baseline)',
    ),
    walBudget: gauge(
      registry,
      'parity_backfill_wal_budget_bytes_per_second',
      'WAL bytes per second this process may write (pace.mode wal-rate)',
    ),
    serverWal: gauge(
      registry,
      'parity_backfill_server_wal_bytes_per_second',
      'WAL bytes per second of the whole source server (pg_current_wal_insert_lsn)',
    ),
    fpiRatio: gauge(registry, 'parity_backfill_wal_fpi_ratio', 'Full-page images per WAL record over the last poll (pg_stat_wal)'),
    checkpointsRequested: counter(
      registry,
      'parity_backfill_checkpoints_requested_total',
      'Checkpoints requested on the source (WAL reached max_wal_size) while the backfill ran',
    ),
    replicaLagBytes: gauge(registry, 'parity_backfill_replica_lag_bytes', 'WAL bytes the most-behind physical replica has not replayed'),
    workersActive: gauge(
      registry,
      'parity_backfill_workers_active',
      'Workers of this process in service (the health controller or an operator may take some out)',
    ),
    healthDecisions: counter(registry, 'parity_backfill_health_decisions_total', 'Health controller decisions by pace move and reason', [
      'pace',
      'reason',
    ]),
    guardMoves: counter(
      registry,
      'parity_backfill_latency_guard_moves_total',
      'Duty cycle moves and baseline measurements of the latency guard',
      ['move'],
    ),
  };
  for (const move of GUARD_MOVES) m.guardMoves.inc({ move }, 0);
  m.guardBaselineP99.set(-1);
  m.guardLimit.set(-1);
  for (const reason of THROTTLE_REASONS) {
    m.throttleActive.set({ reason }, 0);
    m.throttledSeconds.inc({ reason }, 0);
  }
  for (const state of ['pending', 'running', 'done']) m.ranges.set({ state }, 0);
  return m;
}

export type BackfillMetrics = ReturnType<typeof backfillMetrics>;
