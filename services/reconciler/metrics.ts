/**
 * The reconciler's Prometheus metrics. Labels stay low-cardinality (side, state, outcome, result);
 * keys, runs and positions never become labels.
 */
import { lockLostGauge } from '../core/fence-watch.js';
import { counter, gauge, histogram, type Registry } from '../core/metrics.js';

/**
 * The repair outcomes (RepairOutcome in repair.ts, which imports this module, hence a list and not
 * the type), so each `parity_repairs_total` series exists at 0 before the first repair.
 */
const REPAIR_OUTCOMES = [
  'applied',
  'dry-run',
  'skipped-changed',
  'skipped-source-changed',
  'skipped-duplicate-key',
  'skipped-kill-switch',
  'stale-fence',
  'failed',
];

export function reconcilerMetrics(registry: Registry) {
  const m = {
    /** 1 while the repairs' fencing token is superseded (core/fence-watch.ts). */
    lockLost: lockLostGauge(registry),
    segments: gauge(registry, 'parity_verify_segments', 'Segments of the current verification run, by state (total, done).', ['state']),
    segmentsVerified: counter(registry, 'parity_verify_segments_verified_total', 'Segments verified by this process.'),
    segmentSeconds: histogram(
      registry,
      'parity_verify_segment_duration_seconds',
      'Time to verify one segment, both sides.',
      [0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300],
    ),
    rowsChecked: counter(registry, 'parity_verify_rows_checked_total', 'Rows covered by segment checksums, per side.', ['side']),
    rowsFetched: counter(registry, 'parity_verify_rows_fetched_total', 'Rows fetched for exact diffs (both sides).'),
    bisections: counter(registry, 'parity_verify_bisections_total', 'Ranges split further after their checksums differed.'),
    drift: gauge(registry, 'parity_verify_drift_rows', 'Differing rows of the last finished run, by state (confirmed, in_flight).', [
      'state',
    ]),
    streamEvents: counter(registry, 'parity_reconcile_events_total', 'Change events checked by stream verification, by result.', [
      'result',
    ]),
    streamMismatches: counter(registry, 'parity_reconcile_mismatches_total', 'Mismatches found by stream verification.'),
    streamCheckSeconds: histogram(
      registry,
      'parity_reconcile_check_duration_seconds',
      'Time from receiving a change to a verdict on it.',
      [0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 2.5, 5, 10, 30],
    ),
    streamPaused: gauge(
      registry,
      'parity_reconcile_paused',
      '1 while stream verification retries a chunk without committing (target, control database or Kafka unavailable).',
    ),
    streamLagMessages: gauge(
      registry,
      'parity_reconcile_consumer_lag_messages',
      "Messages between stream verification's processed position and the end of its partitions.",
      ['topic'],
    ),
    streamLagSeconds: gauge(
      registry,
      'parity_reconcile_consumer_lag_seconds',
      'Age of the oldest fetched change not checked yet (0 when none is held).',
      ['topic'],
    ),
    repairs: counter(registry, 'parity_repairs_total', 'Repairs by outcome (applied, skipped_changed, stale_fence, ...).', ['outcome']),
  };
  for (const outcome of REPAIR_OUTCOMES) m.repairs.inc({ outcome: outcome.replace(/-/g, '_') }, 0);
  return m;
}

export type ReconcilerMetrics = ReturnType<typeof reconcilerMetrics>;
