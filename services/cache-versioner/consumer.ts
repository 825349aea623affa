/**
 * `parity cache run`: a Kafka consumer group that keeps versioned Redis entries fresh from the change
 * events of the new representation.
 *
 * Offsets are committed by hand, only up to the last chunk Redis confirmed every write of, coalesced
 * into at most one commit per `commitIntervalMs` (offset-committer.ts). When
 * Redis (or the registry, or the dead-letter producer) fails, the chunk is retried with backoff while
 * the consumer keeps heartbeating: consumption pauses, nothing is skipped, and it resumes where it
 * stopped. Replays after a crash or rebalance are harmless because every write is "set if newer".
 */
import type { Consumer, EachBatchPayload, Kafka, KafkaMessage, Producer } from 'kafkajs';
import type { Redis } from 'ioredis';
import type { ChangeDecoder, DecodedChange } from '../../connectors/kafka-sink/serde.js';
import { ParityError, toParityError } from '../core/errors.js';
import type { HealthReport } from '../core/http.js';
import { silentLogger, type Logger } from '../core/log.js';
import type { Registry } from '../core/metrics.js';
import { backoffDelay, sleep as defaultSleep } from '../core/retry.js';
import { APPLIED, INVALIDATED, SKIPPED, applyWrites } from './applier.js';
import { cacheKeys, type CacheKeys } from './keys.js';
import { versionerMetrics, type VersionerMetrics } from './metrics.js';
import { createOffsetCommitter } from './offset-committer.js';
import { withScripts, type ScriptedRedis } from './scripts.js';
import type { CacheSettings } from './settings.js';
import { ensureConfig, readConfig, type VersionConfig } from './version-config.js';
import { collapseWrites, planChange, type EntryWrite } from './writes.js';

/** Latencies of one applied chunk, for benchmarks (the histograms are too coarse for a p99). */
export interface AppliedChunk {
  topic: string;
  partition: number;
  /** Offsets of the chunk's first and last message: everything between is applied, then committed. */
  firstOffset: string;
  lastOffset: string;
  events: number;
  writes: number;
  kafkaToCacheMs: number[];
  commitToCacheMs: number[];
}

export interface CacheVersionerOptions {
  kafka: Kafka;
  redis: Redis;
  decoder: ChangeDecoder;
  settings: CacheSettings;
  registry: Registry;
  logger?: Logger;
  /** Consumer group; default `parity-cache-<migration>`. */
  groupId?: string;
  /** Where a new group starts; default true (the topic's whole retained history). */
  fromBeginning?: boolean;
  /** Partitions processed in parallel; default 3. */
  partitionsConsumedConcurrently?: number;
  /** Messages per Redis pipeline; default 1000. */
  chunkSize?: number;
  /**
   * Shortest time between two offset commits; default 250 ms. Only offsets Redis confirmed are
   * committed; a longer interval only means more events replayed (harmlessly) after a crash.
   */
  commitIntervalMs?: number;
  /** How often the live version config is re-read from Redis; default 1000 ms. */
  configRefreshMs?: number;
  /** Dead-letter topic for events that cannot be applied; created if missing. */
  deadLetterTopic: string;
  /** Producer for dead letters; default one made from `kafka`. */
  producer?: Producer;
  /**
   * How long a fetch may wait for data; default 20 ms. The latency floor of the whole path: with
   * kafkajs's 100 ms default, a change waits up to a fetch cycle (p99 ~130 ms measured locally).
   */
  fetchMaxWaitMs?: number;
  /** Longest backoff while paused; default 2000 ms. */
  maxBackoffMs?: number;
  now?: () => number;
  random?: () => number;
  sleep?: (ms: number) => Promise<void>;
  onApplied?: (chunk: AppliedChunk) => void;
}

export interface CacheVersionerStatus {
  state: 'starting' | 'consuming' | 'paused' | 'stopped' | 'failed';
  reason?: string;
  events: number;
  deadLetters: number;
  config: VersionConfig | null;
}

export interface CacheVersioner {
  start(): Promise<void>;
  stop(): Promise<void>;
  status(): CacheVersionerStatus;
  health(): HealthReport;
  /** Settles when the versioner stops: resolves after stop(), rejects on a fatal error. */
  readonly done: Promise<void>;
}

interface BatchContext {
  heartbeat(): Promise<void>;
  isRunning(): boolean;
  isStale(): boolean;
}

/** Thrown inside a batch to abandon it (rebalance, stop): nothing of it is committed. */
class Abandoned extends Error {}

export function createCacheVersioner(options: CacheVersionerOptions): CacheVersioner {
  const { settings, kafka } = options;
  const logger = options.logger ?? silentLogger();
  const now = options.now ?? Date.now;
  const random = options.random ?? Math.random;
  const sleep = options.sleep ?? defaultSleep;
  const chunkSize = options.chunkSize ?? 1000;
  const refreshMs = options.configRefreshMs ?? 1000;
  const maxBackoffMs = options.maxBackoffMs ?? 2000;
  const groupId = options.groupId ?? `parity-cache-${settings.migration}`;
  const redis: ScriptedRedis = withScripts(options.redis);
  const keys: CacheKeys = cacheKeys(settings.migration);
  const metrics: VersionerMetrics = versionerMetrics(options.registry);
  const producer = options.producer ?? kafka.producer({ idempotent: true, maxInFlightRequests: 1 });
  const ownProducer = options.producer === undefined;

  let consumer: Consumer | null = null;
  /** consumer.run() was called (pause() throws before). */
  let consuming = false;
  let config: VersionConfig | null = null;
  let configReadAt = -Infinity;
  const state: CacheVersionerStatus = { state: 'starting', events: 0, deadLetters: 0, config: null };
  let settle: { resolve: () => void; reject: (err: unknown) => void } | null = null;
  const done = new Promise<void>((resolve, reject) => {
    settle = { resolve, reject };
  });
  // A caller that never awaits `done` must not see an unhandled rejection.
  done.catch(() => undefined);

  function setPaused(reason: string): void {
    if (state.state !== 'paused') logger.warn({ reason }, 'cache versioner paused: retrying without committing offsets');
    state.state = 'paused';
    state.reason = reason;
    metrics.paused.set(1);
  }

  function setConsuming(): void {
    if (state.state === 'paused') logger.info('cache versioner resumed');
    state.state = 'consuming';
    delete state.reason;
    metrics.paused.set(0);
  }

  /** Runs `work` until it succeeds, pausing on retriable errors; abandons the batch on rebalance/stop. */
  async function untilDone<T>(what: string, ctx: BatchContext, work: () => Promise<T>): Promise<T> {
    for (let attempt = 0; ; attempt++) {
      if (!ctx.isRunning() || ctx.isStale()) throw new Abandoned(what);
      try {
        const result = await work();
        if (state.state === 'paused') setConsuming();
        return result;
      } catch (err) {
        const error = toParityError(err);
        if (!error.retriable) throw error;
        if (error.code === 'PARITY_REDIS') metrics.redisErrors.inc();
        setPaused(`${what}: ${error.message}`);
        await ctx.heartbeat();
        await sleep(Math.max(50, backoffDelay(Math.min(attempt, 10), 100, maxBackoffMs, random)));
      }
    }
  }

  async function currentConfig(): Promise<VersionConfig> {
    if (config && now() - configReadAt < refreshMs) return config;
    let fresh: VersionConfig;
    try {
      const stored = await readConfig(redis, keys);
      if (stored) fresh = stored;
      else {
        // Redis lost its data (a restart without persistence) or this is the first run: the spec seeds it.
        fresh = (await ensureConfig(redis, keys, settings, now())).config;
        if (config) logger.warn({ read: fresh.read, populate: fresh.populate }, 'the cache version config was missing in Redis and was recreated from the spec; re-run any cutover made since');
      }
    } catch (err) {
      if (err instanceof ParityError) throw err;
      throw new ParityError('PARITY_REDIS', `cannot read the cache version config from Redis: ${(err as Error).message}`, { retriable: true, cause: err });
    }
    if (config && (config.generation !== fresh.generation || config.populate.join() !== fresh.populate.join())) {
      logger.info({ read: fresh.read, populate: fresh.populate, generation: fresh.generation }, 'cache version config changed');
    }
    config = fresh;
    state.config = fresh;
    configReadAt = now();
    return fresh;
  }

  async function deadLetter(message: KafkaMessage, topic: string, partition: number, reason: string): Promise<void> {
    const headers: Record<string, string | Buffer> = {};
    for (const [name, value] of Object.entries(message.headers ?? {})) {
      if (value !== undefined) headers[name] = Array.isArray(value) ? String(value[0]) : (value as string | Buffer);
    }
    headers['parity.dlq.reason'] = reason.slice(0, 2000);
    headers['parity.dlq.origin'] = `${topic}/${partition}/${message.offset}`;
    headers['parity.dlq.service'] = 'cache-versioner';
    try {
      await producer.send({ topic: options.deadLetterTopic, acks: -1, messages: [{ key: message.key, value: message.value, headers }] });
    } catch (err) {
      throw new ParityError('PARITY_KAFKA', `cannot write to the dead-letter topic ${options.deadLetterTopic}: ${(err as Error).message}`, { cause: err, retriable: true });
    }
  }

  async function processChunk(messages: KafkaMessage[], topic: string, partition: number, ctx: BatchContext): Promise<void> {
    const decoded: DecodedChange[] = [];
    const rejects: Array<{ message: KafkaMessage; reason: string }> = [];
    await untilDone('decode', ctx, async () => {
      decoded.length = 0;
      rejects.length = 0;
      for (const message of messages) {
        try {
          decoded.push(await options.decoder.decode(topic, message, partition));
        } catch (err) {
          const error = toParityError(err);
          if (error.retriable) throw error;
          rejects.push({ message, reason: `${error.code}: ${error.message}` });
        }
      }
    });
    const cfg = await untilDone('read version config', ctx, currentConfig);
    const writes: EntryWrite[] = [];
    const barriers: string[] = [];
    const applied: DecodedChange[] = [];
    for (const change of decoded) {
      try {
        const planned = planChange(change, settings, cfg.populate, random);
        writes.push(...planned.writes);
        if (planned.barrier) barriers.push(planned.barrier);
        applied.push(change);
      } catch (err) {
        const error = toParityError(err);
        const message = messages.find((m) => m.offset === change.offset);
        if (message) rejects.push({ message, reason: `${error.code}: ${error.message}` });
      }
    }
    for (const reject of rejects) {
      await untilDone('dead-letter', ctx, () => deadLetter(reject.message, topic, partition, reject.reason));
      metrics.deadLetters.inc();
      state.deadLetters++;
      logger.warn({ topic, partition, offset: reject.message.offset, reason: reject.reason }, 'change event sent to the dead-letter topic');
    }
    const collapsed = collapseWrites(writes);
    const outcome = await untilDone('Redis write', ctx, () => applyWrites(redis, keys, collapsed, { barriers, now: now(), maxEntryLifetimeMs: settings.maxEntryLifetimeMs }));
    const writtenAt = now();
    // Counted per version per chunk: a labelled inc() per write would cost more than the write.
    const counts = new Map<string, { applied: number; skipped: number; tombstones: number; invalid: number }>();
    const countsOf = (version: string) => {
      let c = counts.get(version);
      if (!c) counts.set(version, (c = { applied: 0, skipped: 0, tombstones: 0, invalid: 0 }));
      return c;
    };
    collapsed.forEach((write, i) => {
      const result = outcome.results[i];
      const c = countsOf(write.version);
      if (result === APPLIED) {
        c.applied++;
        if (write.mode === 't') c.tombstones++;
      } else if (result === SKIPPED) c.skipped++;
      else if (result === INVALIDATED) c.invalid++;
    });
    // Writes folded together by collapseWrites were superseded inside the batch: stale skips too.
    for (const write of writes) countsOf(write.version).skipped++;
    for (const write of collapsed) countsOf(write.version).skipped--;
    for (const [version, c] of counts) {
      if (c.applied) metrics.applied.inc({ version }, c.applied);
      if (c.skipped) metrics.staleSkips.inc({ version }, c.skipped);
      if (c.tombstones) metrics.tombstones.inc({ version }, c.tombstones);
      if (c.invalid) metrics.invalidations.inc({ version }, c.invalid);
    }
    if (outcome.barriersMoved > 0) {
      metrics.barriers.inc(outcome.barriersMoved);
      configReadAt = -Infinity;
    }
    metrics.events.inc(messages.length);
    state.events += messages.length;
    const report = options.onApplied !== undefined;
    const kafkaToCacheMs: number[] = [];
    const commitToCacheMs: number[] = [];
    for (const change of applied) {
      const kafkaMs = writtenAt - change.timestampMs;
      metrics.kafkaToCache.observe(kafkaMs / 1000);
      if (report) kafkaToCacheMs.push(kafkaMs);
      const commitUs = change.envelope.source?.ts_us;
      // Snapshot rows carry the snapshot's time, not a commit: only streamed changes measure lag.
      if (commitUs && change.envelope.op !== 'r') {
        const commitMs = writtenAt - commitUs / 1000;
        metrics.commitToCache.observe(commitMs / 1000);
        if (report) commitToCacheMs.push(commitMs);
      }
    }
    options.onApplied?.({
      topic,
      partition,
      firstOffset: (messages[0] as KafkaMessage).offset,
      lastOffset: (messages[messages.length - 1] as KafkaMessage).offset,
      events: messages.length,
      writes: collapsed.length,
      kafkaToCacheMs,
      commitToCacheMs,
    });
  }

  /**
   * Commits run in the background, so the next fetch does not wait for a commit's round trip; each
   * carries only offsets Redis confirmed. A failed commit (a rebalance) only means those events are
   * replayed, which set-if-newer makes harmless; stop() commits what is confirmed before leaving.
   */
  const committer = createOffsetCommitter({ intervalMs: options.commitIntervalMs ?? 250, logger, now });
  /** eachBatch calls in progress, so stop() can wait for them before the last commit. */
  let activeBatches = 0;
  let batchesIdle: (() => void) | null = null;
  let stopping = false;

  async function eachBatch(payload: EachBatchPayload): Promise<void> {
    const { batch, resolveOffset, commitOffsetsIfNecessary, heartbeat, isRunning, isStale } = payload;
    const ctx: BatchContext = { heartbeat, isRunning: () => isRunning() && !stopping, isStale };
    activeBatches++;
    try {
      for (let i = 0; i < batch.messages.length; i += chunkSize) {
        const chunk = i === 0 && batch.messages.length <= chunkSize ? batch.messages : batch.messages.slice(i, i + chunkSize);
        await processChunk(chunk, batch.topic, batch.partition, ctx);
        const last = chunk[chunk.length - 1] as KafkaMessage;
        resolveOffset(last.offset);
        committer.confirmed({ topic: batch.topic, partition: batch.partition, offset: (BigInt(last.offset) + 1n).toString() }, commitOffsetsIfNecessary);
        await heartbeat();
      }
    } catch (err) {
      if (err instanceof Abandoned) return;
      if (err instanceof ParityError && !err.retriable) {
        fail(err);
        return;
      }
      throw err;
    } finally {
      activeBatches--;
      if (activeBatches === 0) batchesIdle?.();
    }
  }

  function fail(err: ParityError): void {
    if (state.state === 'failed') return;
    state.state = 'failed';
    state.reason = err.message;
    logger.error({ code: err.code, err: err.message }, 'cache versioner stopped on a non-retriable error');
    // Stopping from inside eachBatch would wait for this very batch: do it after it returns.
    setImmediate(() => {
      void shutdown().finally(() => settle?.reject(err));
    });
  }

  async function shutdown(): Promise<void> {
    // No new batches, the ones in progress finish (or abandon a write still retrying), then what Redis
    // confirmed is committed while this member is still in the group, then it leaves.
    stopping = true;
    const c = consumer;
    consumer = null;
    if (c && consuming) {
      try {
        c.pause([{ topic: settings.topic }]);
      } catch {
        // Not running yet: nothing to pause.
      }
      if (activeBatches > 0) await new Promise<void>((resolve) => (batchesIdle = resolve));
    }
    await committer.flush();
    await c?.disconnect().catch(() => undefined);
    if (ownProducer) await producer.disconnect().catch(() => undefined);
  }

  return {
    done,
    async start() {
      const admin = kafka.admin();
      await admin.connect();
      try {
        // Both topics must exist before subscribing (the local broker does not auto-create topics).
        const existing = new Set(await admin.listTopics());
        if (!existing.has(settings.topic)) {
          throw new ParityError('PARITY_BAD_INPUT', `topic ${settings.topic} does not exist`, { hint: 'start `parity cdc run` first (it creates the topics), or pass --topic' });
        }
        if (!existing.has(options.deadLetterTopic)) {
          await admin.createTopics({ waitForLeaders: true, topics: [{ topic: options.deadLetterTopic, numPartitions: 1 }] }).catch((err: unknown) => {
            if (!/already exists/i.test((err as Error).message)) throw err;
          });
        }
      } finally {
        await admin.disconnect();
      }
      await currentConfig();
      if (ownProducer) await producer.connect();
      consumer = kafka.consumer({ groupId, maxWaitTimeInMs: options.fetchMaxWaitMs ?? 20, sessionTimeout: 30_000, heartbeatInterval: 3000, retry: { retries: 10 } });
      await consumer.connect();
      await consumer.subscribe({ topics: [settings.topic], fromBeginning: options.fromBeginning ?? true });
      state.state = 'consuming';
      consumer.on(consumer.events.GROUP_JOIN, (event) => {
        const assignment = (event.payload as { memberAssignment: Record<string, number[]> }).memberAssignment;
        committer.retain(new Map(Object.entries(assignment).map(([topic, partitions]) => [topic, new Set(partitions)])));
      });
      consumer.on(consumer.events.CRASH, (event) => {
        const { error, restart } = event.payload as { error: Error; restart: boolean };
        if (!restart) {
          state.state = 'failed';
          state.reason = error.message;
          void shutdown().finally(() => settle?.reject(toParityError(error, 'PARITY_KAFKA')));
        }
      });
      consuming = true;
      await consumer.run({
        autoCommit: false,
        eachBatchAutoResolve: false,
        partitionsConsumedConcurrently: options.partitionsConsumedConcurrently ?? 3,
        eachBatch,
      });
      logger.info({ topic: settings.topic, groupId, populate: config?.populate, read: config?.read }, 'cache versioner consuming');
    },
    async stop() {
      if (state.state !== 'failed') state.state = 'stopped';
      await shutdown();
      metrics.paused.set(0);
      settle?.resolve();
    },
    status: () => ({ ...state }),
    health(): HealthReport {
      const ok = state.state === 'consuming' || state.state === 'starting';
      const report: HealthReport = { ok, status: state.state, details: { events: state.events, deadLetters: state.deadLetters, read: config?.read, populate: config?.populate } };
      if (state.reason) report.reason = state.reason;
      return report;
    },
  };
}
