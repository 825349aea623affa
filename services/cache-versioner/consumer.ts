/**
 * `parity cache run`: a Kafka consumer group that keeps versioned Redis entries fresh from the change
 * events of the new representation.
 *
 * The consumer group itself is connectors/kafka-sink/consumer-loop.ts: offsets are committed only up
 * to the last chunk Redis confirmed every write of, coalesced into at most one commit per
 * `commitIntervalMs`. When Redis (or the registry, or the dead-letter producer) fails, the step is
 * retried with backoff while the group keeps heartbeating: consumption pauses, nothing is skipped,
 * and it resumes where it stopped. Replays after a crash or rebalance are harmless because every
 * write is "set if newer". This file is what the versioner does with a chunk.
 */
import type { Redis } from 'ioredis';
import {
  type ChunkContext,
  type ConsumedMessage,
  type ConsumerLag,
  type ConsumerLoop,
  createConsumerLoop,
} from '../../connectors/kafka-sink/consumer-loop.js';
import type { KafkaClients } from '../core/clients.js';
import type { ChangeDecoder, DecodedChange } from '../../connectors/kafka-sink/serde.js';
import { ParityError, toParityError } from '../core/errors.js';
import type { HealthReport } from '../core/http.js';
import { silentLogger, type Logger } from '../core/log.js';
import type { Registry } from '../core/metrics.js';
import { sleep as defaultSleep } from '../core/retry.js';
import { APPLIED, INVALIDATED, SKIPPED, applyWrites } from './applier.js';
import { cacheKeys, type CacheKeys } from './keys.js';
import { versionerMetrics, type VersionerMetrics } from './metrics.js';
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
  kafka: KafkaClients;
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
  /**
   * How long a fetch may wait for data; default 20 ms. The latency floor of the whole path: with a
   * 100 ms wait, a change waits up to a fetch cycle (p99 ~130 ms measured locally).
   */
  fetchMaxWaitMs?: number;
  /** Longest backoff while paused; default 2000 ms. */
  maxBackoffMs?: number;
  /** How often the partitions' end offsets are read for the lag; default 1000 ms. */
  lagIntervalMs?: number;
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
  /** How far behind the end of its partitions it is (`messages` null before the first end-offset read). */
  lag(): ConsumerLag;
  /** Settles when the versioner stops: resolves after stop(), rejects on a fatal error. */
  readonly done: Promise<void>;
}

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
  let loop: ConsumerLoop | null = null;
  let config: VersionConfig | null = null;
  let configReadAt = -Infinity;
  const state: CacheVersionerStatus = { state: 'starting', events: 0, deadLetters: 0, config: null };
  let settle: { resolve: () => void; reject: (err: unknown) => void } | null = null;
  const done = new Promise<void>((resolve, reject) => {
    settle = { resolve, reject };
  });
  // A caller that never awaits `done` must not see an unhandled rejection.
  done.catch(() => undefined);

  async function currentConfig(): Promise<VersionConfig> {
    if (config && now() - configReadAt < refreshMs) return config;
    let fresh: VersionConfig;
    try {
      const stored = await readConfig(redis, keys);
      if (stored) fresh = stored;
      else {
        // Redis lost its data (a restart without persistence) or this is the first run: the spec seeds it.
        fresh = (await ensureConfig(redis, keys, settings, now())).config;
        if (config)
          logger.warn(
            { read: fresh.read, populate: fresh.populate },
            'the cache version config was missing in Redis and was recreated from the spec; re-run any cutover made since',
          );
      }
    } catch (err) {
      if (err instanceof ParityError) throw err;
      throw new ParityError('PARITY_REDIS', `cannot read the cache version config from Redis: ${(err as Error).message}`, {
        retriable: true,
        cause: err,
      });
    }
    if (config && (config.generation !== fresh.generation || config.populate.join() !== fresh.populate.join())) {
      logger.info({ read: fresh.read, populate: fresh.populate, generation: fresh.generation }, 'cache version config changed');
    }
    config = fresh;
    state.config = fresh;
    configReadAt = now();
    return fresh;
  }

  async function processChunk(messages: ConsumedMessage[], topic: string, partition: number, ctx: ChunkContext): Promise<void> {
    const decoded: DecodedChange[] = [];
    const rejects: Array<{ message: ConsumedMessage; reason: string }> = [];
    await ctx.untilDone('decode', async () => {
      decoded.length = 0;
      rejects.length = 0;
      for (const message of messages) {
        // A tombstone (the debezium encoding writes one after each delete) says nothing the delete did not.
        if (!message.value || message.value.length === 0) continue;
        try {
          decoded.push(await options.decoder.decode(topic, message, partition));
        } catch (err) {
          const error = toParityError(err);
          if (error.retriable) throw error;
          rejects.push({ message, reason: `${error.code}: ${error.message}` });
        }
      }
    });
    const cfg = await ctx.untilDone('read version config', currentConfig);
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
        const message = messages.find((m) => String(m.offset) === change.offset);
        if (message) rejects.push({ message, reason: `${error.code}: ${error.message}` });
      }
    }
    for (const reject of rejects) {
      await ctx.deadLetter(reject.message, reject.reason, 'apply');
      metrics.deadLetters.inc();
      state.deadLetters++;
    }
    const collapsed = collapseWrites(writes);
    const outcome = await ctx.untilDone('Redis write', () =>
      applyWrites(redis, keys, collapsed, { barriers, now: now(), maxEntryLifetimeMs: settings.maxEntryLifetimeMs }),
    );
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
      firstOffset: String(messages[0]!.offset),
      lastOffset: String(messages[messages.length - 1]!.offset),
      events: messages.length,
      writes: collapsed.length,
      kafkaToCacheMs,
      commitToCacheMs,
    });
  }

  function fail(err: ParityError): void {
    if (state.state === 'failed') return;
    state.state = 'failed';
    state.reason = err.message;
    logger.error({ code: err.code, err: err.message }, 'cache versioner stopped on a non-retriable error');
    settle?.reject(err);
  }

  return {
    done,
    async start() {
      loop = createConsumerLoop({
        kafka,
        groupId,
        topic: settings.topic,
        fromBeginning: options.fromBeginning ?? true,
        deadLetterTopic: options.deadLetterTopic,
        service: 'cache-versioner',
        missingTopicHint: 'start `parity cdc run` first (it creates the topics), or pass --topic',
        chunkSize,
        concurrency: options.partitionsConsumedConcurrently ?? 3,
        commitIntervalMs: options.commitIntervalMs ?? 250,
        fetchMaxWaitMs: options.fetchMaxWaitMs ?? 20,
        maxBackoffMs,
        logger,
        now,
        random,
        sleep,
        onRetry: (error) => {
          if (error.code === 'PARITY_REDIS') metrics.redisErrors.inc();
        },
        onPausedChange: (paused) => {
          metrics.paused.set(paused ? 1 : 0);
          if (paused) {
            state.state = 'paused';
            state.reason = loop?.status().reason ?? 'retrying';
          } else if (state.state === 'paused') {
            state.state = 'consuming';
            delete state.reason;
          }
        },
        handle: (chunk, ctx) => processChunk(chunk.messages, chunk.topic, chunk.partition, ctx),
        ...(options.lagIntervalMs !== undefined ? { lagIntervalMs: options.lagIntervalMs } : {}),
        onLag: (lag) => {
          if (lag.messages !== null) metrics.lagMessages.set({ topic: settings.topic }, lag.messages);
          metrics.lagSeconds.set({ topic: settings.topic }, lag.oldestSeconds);
        },
      });
      // The version config must be readable before anything is applied (and seeded on a first run).
      await currentConfig();
      await loop.start();
      state.state = 'consuming';
      loop.done.catch((err: unknown) => fail(toParityError(err)));
      logger.info({ topic: settings.topic, groupId, populate: config?.populate, read: config?.read }, 'cache versioner consuming');
    },
    async stop() {
      if (state.state !== 'failed') state.state = 'stopped';
      await loop?.stop();
      metrics.paused.set(0);
      settle?.resolve();
    },
    status: () => ({ ...state, ...(state.state === 'paused' && loop?.status().reason ? { reason: loop.status().reason } : {}) }),
    health(): HealthReport {
      // While paused the loop holds the latest reason (the failing step and its error).
      if (state.state === 'paused' && loop?.status().reason) state.reason = loop.status().reason!;
      const ok = state.state === 'consuming' || state.state === 'starting';
      const report: HealthReport = {
        ok,
        status: state.state,
        details: { events: state.events, deadLetters: state.deadLetters, read: config?.read, populate: config?.populate },
      };
      if (state.reason) report.reason = state.reason;
      const lag = loop?.lag();
      if (lag) report.details!.lag = lag;
      return report;
    },
    lag: () => loop?.lag() ?? { messages: null, oldestSeconds: 0, partitions: 0 },
  };
}
