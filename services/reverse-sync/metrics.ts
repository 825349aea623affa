/** Reverse sync's Prometheus metrics (base units, `_total` counters, no per-key labels). */
import { type Registry, LATENCY_BUCKETS_SECONDS, counter, gauge, histogram } from '../core/metrics.js';

export function reverseMetrics(registry: Registry) {
  return {
    lag: histogram(
      registry,
      'parity_reverse_lag_seconds',
      'time from a change committed on the new representation to its reverse write committed on the old one',
      LATENCY_BUCKETS_SECONDS,
    ),
    transactions: counter(registry, 'parity_reverse_transactions_total', 'transactions of the new representation handled, by outcome', [
      'outcome',
    ]),
    keys: counter(registry, 'parity_reverse_keys_total', 'keys brought over to the old representation (one per key per batch)'),
    rowsWritten: counter(
      registry,
      'parity_reverse_rows_written_total',
      'old-side rows written or deleted (rows already equal are not counted)',
    ),
    echoes: counter(
      registry,
      'parity_reverse_echoes_dropped_total',
      'changes dropped because reverse sync wrote them (its replication origin)',
    ),
    unrepresentable: gauge(
      registry,
      'parity_reverse_unrepresentable_rows',
      'rows of the new representation the old shape cannot hold, pending',
    ),
    slotLagBytes: gauge(registry, 'parity_reverse_slot_lag_bytes', "WAL written since the reverse slot's confirmed position"),
    windowClean: gauge(registry, 'parity_reverse_window_clean', '1 when the latest window check found the old side current, else 0'),
    cleanSince: gauge(
      registry,
      'parity_reverse_window_clean_since_timestamp_seconds',
      'since when the window has been clean (unix time, from the latest window check); 0 while it is not',
    ),
    driftRows: gauge(
      registry,
      'parity_reverse_drift_rows',
      'old-side rows that differ from reverse(new), by check (segment: the latest reverse verification; stream: confirmed since the previous window check) and state',
      ['check', 'state'],
    ),
    streamChecks: counter(
      registry,
      'parity_reverse_stream_checks_total',
      'applied keys checked on the old side by the reverse stream check, by result (mismatch: confirmed drift)',
      ['result'],
    ),
    streamInFlight: gauge(registry, 'parity_reverse_stream_in_flight_keys', 'applied keys the reverse stream check has not decided yet'),
    streamCheckErrors: counter(
      registry,
      'parity_reverse_stream_check_errors_total',
      'reverse stream checks that failed (database errors) and were retried',
    ),
  };
}

export type ReverseMetrics = ReturnType<typeof reverseMetrics>;
