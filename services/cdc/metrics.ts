/**
 * CDC metrics, registered on an injected prom-client registry. Labels stay low-cardinality: table
 * (the captured tables of one spec), op (c/u/d/r/t), code (the closed set of error codes).
 */
import type { Registry } from 'prom-client';
import { LATENCY_BUCKETS_SECONDS, counter, gauge, histogram } from '../core/metrics.js';

export function cdcMetrics(registry: Registry) {
  return {
    events: counter(registry, 'parity_cdc_events_total', 'Change events acknowledged by Kafka, by table and op', ['table', 'op']),
    commitToAck: histogram(
      registry,
      'parity_cdc_commit_to_ack_seconds',
      'From the source transaction commit to the Kafka acknowledgement of its event',
      LATENCY_BUCKETS_SECONDS,
    ),
    slotLagBytes: gauge(
      registry,
      'parity_cdc_slot_lag_bytes',
      'WAL written since the slot confirmed position (pg_current_wal_lsn - confirmed_flush_lsn)',
    ),
    slotRetainedBytes: gauge(registry, 'parity_cdc_slot_retained_bytes', 'WAL pinned by the slot (pg_current_wal_lsn - restart_lsn)'),
    slotLagSeconds: gauge(registry, 'parity_cdc_slot_lag_seconds', 'Age of the oldest change not yet durable in Kafka (0 when caught up)'),
    inFlightEvents: gauge(registry, 'parity_cdc_events_in_flight', 'Events sent to Kafka and not yet acknowledged'),
    decoderQueue: gauge(
      registry,
      'parity_cdc_decoder_queue_messages',
      'Most replication messages received and not yet decoded since the previous refresh (bounded by flow control)',
    ),
    inFlightTransactions: gauge(registry, 'parity_cdc_transactions_in_flight', 'Transactions received and not yet durable'),
    durableLsn: gauge(registry, 'parity_cdc_durable_lsn_bytes', 'The durable position reported to the slot, as a byte offset'),
    heartbeats: counter(
      registry,
      'parity_cdc_heartbeats_total',
      'Heartbeat messages written (emitted) and seen back in the stream (received)',
      ['stage'],
    ),
    logicalMessages: counter(
      registry,
      'parity_cdc_logical_messages_total',
      'Logical decoding messages (pg_logical_emit_message) written to <prefix>.message (written) or left out by message.prefix.include/exclude.list (filtered)',
      ['outcome'],
    ),
    errors: counter(registry, 'parity_cdc_errors_total', 'Errors by parity error code', ['code']),
    sessions: counter(registry, 'parity_cdc_sessions_total', 'Replication sessions started (each restart replays from the slot)'),
    paused: gauge(registry, 'parity_cdc_paused', '1 while streaming is paused (registry rejection, Kafka or source unavailable)'),
    snapshotRows: counter(registry, 'parity_cdc_snapshot_rows_total', 'Snapshot rows acknowledged by Kafka, by table and kind', [
      'table',
      'kind',
    ]),
    kafkaBatchSeconds: histogram(
      registry,
      'parity_cdc_kafka_batch_seconds',
      'Duration of one produce request (acks=all)',
      LATENCY_BUCKETS_SECONDS,
    ),
    kafkaBatchMessages: histogram(
      registry,
      'parity_cdc_kafka_batch_messages',
      'Messages per produce request',
      [1, 10, 100, 500, 1000, 2000, 4000, 8000],
    ),
  };
}

export type CdcMetrics = ReturnType<typeof cdcMetrics>;
