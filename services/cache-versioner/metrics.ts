/**
 * Prometheus metrics of the cache versioner, its reader and its inspector, registered on an injected
 * registry. Labels: `version` (v1, v2, ...) and the consumer lag's `topic` (one per process).
 */
import {
  LATENCY_BUCKETS_SECONDS,
  counter,
  gauge,
  histogram,
  type Counter,
  type Gauge,
  type Histogram,
  type Registry,
} from '../core/metrics.js';

export interface VersionerMetrics {
  events: Counter<string>;
  applied: Counter<string>;
  staleSkips: Counter<string>;
  tombstones: Counter<string>;
  invalidations: Counter<string>;
  barriers: Counter<string>;
  deadLetters: Counter<string>;
  redisErrors: Counter<string>;
  paused: Gauge<string>;
  lagMessages: Gauge<string>;
  lagSeconds: Gauge<string>;
  commitToCache: Histogram<string>;
  kafkaToCache: Histogram<string>;
}

export function versionerMetrics(registry: Registry): VersionerMetrics {
  return {
    events: counter(registry, 'parity_cache_events_total', 'Change events consumed by the cache versioner'),
    applied: counter(
      registry,
      'parity_cache_updates_applied_total',
      'Cache entries written (value or tombstone) because the change was newer',
      ['version'],
    ),
    staleSkips: counter(
      registry,
      'parity_cache_stale_skips_total',
      'Cache writes skipped because the entry already held an equal or newer position',
      ['version'],
    ),
    tombstones: counter(registry, 'parity_cache_tombstones_total', 'Tombstones written for deleted rows', ['version']),
    invalidations: counter(
      registry,
      'parity_cache_invalidations_total',
      'Entries marked invalid because an unchanged TOAST column had no cached value to keep',
      ['version'],
    ),
    barriers: counter(
      registry,
      'parity_cache_truncate_barriers_total',
      'TRUNCATEs that raised the barrier below which entries are ignored',
    ),
    deadLetters: counter(
      registry,
      'parity_cache_dead_letters_total',
      'Events sent to the dead-letter topic because they could not be applied',
    ),
    redisErrors: counter(
      registry,
      'parity_cache_redis_errors_total',
      'Failed Redis writes (the batch is retried; offsets are not committed)',
    ),
    paused: gauge(registry, 'parity_cache_paused', '1 while consumption is paused because Redis is unavailable'),
    lagMessages: gauge(
      registry,
      'parity_cache_consumer_lag_messages',
      "Messages between this member's processed position and the end of its partitions",
      ['topic'],
    ),
    lagSeconds: gauge(
      registry,
      'parity_cache_consumer_lag_seconds',
      'Age of the oldest fetched message not processed yet (0 when none is held)',
      ['topic'],
    ),
    commitToCache: histogram(registry, 'parity_cache_commit_to_cache_seconds', 'Source commit to Redis write', LATENCY_BUCKETS_SECONDS),
    kafkaToCache: histogram(
      registry,
      'parity_cache_kafka_to_cache_seconds',
      'Kafka message timestamp to Redis write',
      LATENCY_BUCKETS_SECONDS,
    ),
  };
}

export interface ReaderMetrics {
  hits: Counter<string>;
  misses: Counter<string>;
  fills: Counter<string>;
  leaseWaits: Counter<string>;
  leaseTimeouts: Counter<string>;
  errors: Counter<string>;
}

export function readerMetrics(registry: Registry): ReaderMetrics {
  return {
    hits: counter(registry, 'parity_cache_reader_hits_total', 'Reads answered from the cache, by the version that answered', ['version']),
    misses: counter(registry, 'parity_cache_reader_misses_total', 'Reads that found no usable entry in any readable version'),
    fills: counter(registry, 'parity_cache_reader_fills_total', 'Database reads made to fill a missing entry'),
    leaseWaits: counter(
      registry,
      'parity_cache_reader_lease_waits_total',
      'Times a reader waited because another caller held the fill lease',
    ),
    leaseTimeouts: counter(
      registry,
      'parity_cache_reader_lease_timeouts_total',
      'Reads that gave up waiting for a lease holder and read the database themselves',
    ),
    errors: counter(registry, 'parity_cache_reader_redis_errors_total', 'Reads that could not use Redis and went to the database'),
  };
}

export interface InspectorMetrics {
  sampled: Counter<string>;
  mismatches: Counter<string>;
}

export function inspectorMetrics(registry: Registry): InspectorMetrics {
  return {
    sampled: counter(registry, 'parity_cache_inspect_sampled_total', 'Cache entries compared with the database by the inspector', [
      'version',
    ]),
    mismatches: counter(registry, 'parity_cache_inspect_mismatches_total', 'Stale cache entries found by the inspector', ['version']),
  };
}
