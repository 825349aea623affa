/**
 * Dark reads in the style of GitHub's Scientist: for keys routed `dark`, run the old and the new
 * read, return the old one's outcome (value or error) as if nothing else happened, and compare the
 * two in the background. Mismatches and timings go to metrics, and mismatches also to the
 * mismatch topic `<cdc.topicPrefix>.parity.mismatches` through a producer the application passes
 * in (one from the Kafka client factory, services/core/clients.ts). Each path runs at most once per call, whatever fails: a comparator that throws, a
 * publish that fails or a candidate that rejects is counted, never retried.
 */
import type { KafkaProducer } from '../core/clients.js';
import { isDeepStrictEqual } from 'node:util';
import { silentLogger, type Logger } from '../core/log.js';
import { LATENCY_BUCKETS_SECONDS, counter, histogram, type Registry } from '../core/metrics.js';
import type { ReadPath } from '../coordinator/flag-model.js';
import { keyText, type RoutingKey } from './routing.js';

/** The mismatch topic for a spec's cdc.topicPrefix (named in services/core/topics.ts). */
export { mismatchTopic } from '../core/topics.js';

export interface DarkReaderOptions<T> {
  migration: string;
  cohort?: string;
  /** The path for a key (a FlagsReader's `route`); without it, every read is dark. */
  route?: (key: RoutingKey) => ReadPath;
  /** A producer and the topic; without them mismatches go to metrics and logs only. */
  producer?: KafkaProducer;
  topic?: string;
  /** Equality of the two results (default: deep strict equality). */
  compare?: (oldValue: T, newValue: T) => boolean;
  /** What is published for a value, e.g. without personal data (default: the value itself). */
  clean?: (value: T) => unknown;
  random?: () => number;
  logger?: Logger;
  metrics?: Registry;
  /** Wall clock for the published timestamp. */
  now?: () => Date;
}

export interface ReadPaths<T> {
  old: () => Promise<T>;
  new: () => Promise<T>;
}

export interface DarkReader<T> {
  /** Reads `key` along its routed path; for `dark`, returns the old outcome and compares later. */
  read(key: RoutingKey, paths: ReadPaths<T>): Promise<T>;
  /** Waits for every pending comparison and publish (tests, graceful shutdown). */
  flush(): Promise<void>;
}

/** The message published for one mismatch (JSON, Kafka key = the key). */
export interface MismatchMessage {
  source: 'dark-read';
  migration: string;
  cohort: string | null;
  key: string;
  old: unknown;
  new: unknown;
  oldSeconds: number;
  newSeconds: number;
  at: string;
}

type Outcome<T> = { ok: true; value: T; seconds: number } | { ok: false; error: unknown; seconds: number };

/** Calls `fn` once, capturing its outcome and duration (a synchronous throw counts as a rejection). */
function timed<T>(fn: () => Promise<T>): Promise<Outcome<T>> {
  const started = performance.now();
  const seconds = (): number => (performance.now() - started) / 1000;
  try {
    return fn().then(
      (value) => ({ ok: true as const, value, seconds: seconds() }),
      (error: unknown) => ({ ok: false as const, error, seconds: seconds() }),
    );
  } catch (error) {
    return Promise.resolve({ ok: false as const, error, seconds: seconds() });
  }
}

export function createDarkReader<T>(options: DarkReaderOptions<T>): DarkReader<T> {
  const logger = options.logger ?? silentLogger();
  const random = options.random ?? Math.random;
  const compare = options.compare ?? ((a: T, b: T) => isDeepStrictEqual(a, b));
  const clean = options.clean ?? ((v: T) => v);
  const now = options.now ?? (() => new Date());
  const pending = new Set<Promise<void>>();
  const m = options.metrics
    ? {
        reads: counter(options.metrics, 'parity_client_reads_total', 'Reads by routed path (old, dark, new)', ['path']),
        dark: counter(
          options.metrics,
          'parity_client_dark_reads_total',
          'Dark reads by result (match, mismatch, candidate_error, control_error, compare_error)',
          ['result'],
        ),
        duration: histogram(
          options.metrics,
          'parity_client_read_duration_seconds',
          'Read duration by path (old, new)',
          LATENCY_BUCKETS_SECONDS,
          ['path'],
        ),
        publishErrors: counter(
          options.metrics,
          'parity_client_mismatch_publish_errors_total',
          'Mismatches that could not be published to Kafka',
        ),
      }
    : undefined;

  async function publish(
    key: RoutingKey,
    oldOutcome: { value: T; seconds: number },
    newOutcome: { value: T; seconds: number },
  ): Promise<void> {
    if (!options.producer || !options.topic) return;
    const message: MismatchMessage = {
      source: 'dark-read',
      migration: options.migration,
      cohort: options.cohort ?? null,
      key: keyText(key),
      old: clean(oldOutcome.value),
      new: clean(newOutcome.value),
      oldSeconds: oldOutcome.seconds,
      newSeconds: newOutcome.seconds,
      at: now().toISOString(),
    };
    try {
      await options.producer.send({
        messages: [
          {
            topic: options.topic,
            key: message.key,
            value: JSON.stringify(message, (_k, v: unknown) => (typeof v === 'bigint' ? v.toString() : v)),
            headers: { 'parity.source': 'dark-read' },
          },
        ],
      });
    } catch (err) {
      m?.publishErrors.inc();
      logger.warn({ err: (err as Error).message }, 'could not publish a dark-read mismatch');
    }
  }

  async function judge(key: RoutingKey, control: Promise<Outcome<T>>, candidate: Promise<Outcome<T>>): Promise<void> {
    const [o, n] = await Promise.all([control, candidate]);
    m?.duration.observe({ path: 'new' }, n.seconds);
    if (!o.ok) {
      m?.dark.inc({ result: 'control_error' });
      return;
    }
    if (!n.ok) {
      m?.dark.inc({ result: 'candidate_error' });
      logger.warn({ key: keyText(key), err: (n.error as Error)?.message }, 'dark read: the new path failed');
      return;
    }
    let equal: boolean;
    try {
      equal = compare(o.value, n.value);
    } catch (err) {
      m?.dark.inc({ result: 'compare_error' });
      logger.warn({ err: (err as Error).message }, 'dark read: the comparator threw');
      return;
    }
    if (equal) {
      m?.dark.inc({ result: 'match' });
      return;
    }
    m?.dark.inc({ result: 'mismatch' });
    await publish(key, o, n);
  }

  async function single(path: 'old' | 'new', fn: () => Promise<T>): Promise<T> {
    const outcome = await timed(fn);
    m?.duration.observe({ path }, outcome.seconds);
    if (!outcome.ok) throw outcome.error;
    return outcome.value;
  }

  return {
    async read(key, paths) {
      const path = options.route ? options.route(key) : 'dark';
      m?.reads.inc({ path });
      if (path === 'old') return single('old', paths.old);
      if (path === 'new') return single('new', paths.new);
      // Both start now, in random order (Scientist randomises it to expose order dependence).
      let control: Promise<Outcome<T>>;
      let candidate: Promise<Outcome<T>>;
      if (random() < 0.5) {
        control = timed(paths.old);
        candidate = timed(paths.new);
      } else {
        candidate = timed(paths.new);
        control = timed(paths.old);
      }
      const judged = judge(key, control, candidate).catch((err: unknown) =>
        logger.error({ err: (err as Error).message }, 'dark read comparison failed'),
      );
      pending.add(judged);
      void judged.finally(() => pending.delete(judged));
      const o = await control;
      m?.duration.observe({ path: 'old' }, o.seconds);
      if (!o.ok) throw o.error;
      return o.value;
    },
    async flush() {
      while (pending.size > 0) await Promise.all([...pending]);
    },
  };
}
