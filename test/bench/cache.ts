/**
 * `npm run bench:cache`: the cache versioner's figures, on the local stack.
 *
 * 1. kafka_to_cache_p99_ms: change events produced at a steady 5,000/s (the CDC's serde, real Kafka),
 *    versioner dual-populating v1 and v2; latency from each event's Kafka timestamp (CreateTime, set
 *    by the producer when it encodes the produce request) to its Redis write. The producer runs in
 *    its own process, as the CDC would: sharing the versioner's event loop would add its work to the
 *    latency measured. It starts, connects and produces at the steady rate for a warm-up
 *    (BENCH_CACHE_WARMUP_SECONDS, default 3) before the measured window: a Node process that is still
 *    loading and compiling its modules competes for the same 2 cores, and those first seconds
 *    measured the load generator's start-up (p99 60-190 ms), not a steady 5,000/s. That window is
 *    still reported, apart: kafka_to_cache_warmup_p99_ms.
 * 2. max_updates_per_s: a backlog of events consumed as fast as the versioner goes: cache entry
 *    updates per second (each change updates both versions; max_events_per_s counts changes).
 * 3. commit_to_cache_p99_ms: a PostgreSQL table updated at a steady 5,000 changes/s, `parity cdc run`
 *    as a child process, the versioner on its topic; latency from each change's source commit time to
 *    its Redis write (commit_to_kafka_p99_ms is the CDC's share). The table's writer runs in its own
 *    process too (an application's writes do not run in the versioner's process), with the same
 *    warm-up, reported apart (commit_to_cache_warmup_p99_ms, the CDC's share of it
 *    commit_to_kafka_warmup_p99_ms). Null, with the reason, when CDC cannot run.
 *
 * Only the versioner runs in this process during a measured window; the per-event latencies it
 * records are appended in place (no copies per chunk).
 * Progress goes to stderr; the last stdout line is one JSON object with the figures.
 * Sizes: BENCH_CACHE_SECONDS (steady phases, default 15), BENCH_CACHE_BACKLOG (default 100000),
 * BENCH_CACHE_WARMUP_SECONDS (default 3).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { cpus, loadavg } from 'node:os';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { Redis } from 'ioredis';
import pg from 'pg';
import { createKafka, createSchemaRegistry } from '../../services/core/clients.js';
import { createMetricsRegistry } from '../../services/core/metrics.js';
import { createCacheVersioner, type AppliedChunk, type CacheVersioner } from '../../services/cache-versioner/consumer.js';
import { cacheKeys, renderKey } from '../../services/cache-versioner/keys.js';
import { cacheSettingsFrom, cacheSettings, type CacheSettings } from '../../services/cache-versioner/settings.js';
import { KAFKA_BROKERS, STACK, createTestDatabase, uniqueName } from '../support/stack.js';
import { writeTestSpec } from '../support/spec.js';
import { createChangeDecoder, createChangeEncoder, createRegistryClient, encodeChange } from '../../connectors/kafka-sink/serde.js';
import {
  committedOffsets,
  createTestStream,
  endOffsets,
  envelopeOf,
  orderRow,
  ordersShape,
  type Change,
} from '../integration/cache-versioner/change-stream.js';

const RATE = 5000;
const SECONDS = Number(process.env.BENCH_CACHE_SECONDS ?? 15);
const BACKLOG = Number(process.env.BENCH_CACHE_BACKLOG ?? 100_000);
const WARMUP = Number(process.env.BENCH_CACHE_WARMUP_SECONDS ?? 3);
/** What a load child prints on stdout when its measured window begins. */
const MEASURING = 'measuring';
const KEYS = 20_000;
const BIN = fileURLToPath(new URL('../../services/cli/bin/parity.js', import.meta.url));
const kafka = createKafka(KAFKA_BROKERS, { clientId: 'bench-cache' });
const log = (line: string) => process.stderr.write(`[bench:cache] ${line}\n`);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function percentile(values: number[], p: number): number | null {
  if (values.length === 0) return null;
  const sorted = [...values].sort((a, b) => a - b);
  return Math.round((sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)] as number) * 10) / 10;
}

function benchSettings(prefix: string, topic: string): CacheSettings {
  return cacheSettingsFrom(
    {
      name: prefix.replace('_', '-'),
      key: ['id'],
      cache: {
        keys: { v1: `${prefix}:order:v1:{id}`, v2: `${prefix}:order:v2:{id}` },
        populate: ['v1', 'v2'],
        read: 'v2',
        ttlSeconds: 600,
        ttlJitterPct: 10,
        tombstoneTtlSeconds: 60,
        leaseMs: 2000,
      },
    },
    topic,
    { schema: 'public', table: 'orders' },
  );
}

function startVersioner(settings: CacheSettings, groupId: string, onApplied: (c: AppliedChunk) => void): CacheVersioner {
  const redis = new Redis(STACK.PARITY_REDIS_URL, { maxRetriesPerRequest: 1, commandTimeout: 5000 });
  return createCacheVersioner({
    kafka,
    redis,
    decoder: createChangeDecoder(createSchemaRegistry(STACK.PARITY_REGISTRY_URL)),
    settings,
    registry: createMetricsRegistry({ defaultMetrics: false }),
    groupId,
    deadLetterTopic: `${groupId}.dlq`,
    onApplied,
  });
}

/** Deletes the bench's own entries by name (known ids), its control keys and its written-key sets. */
async function cleanRedis(settings: CacheSettings): Promise<void> {
  const redis = new Redis(STACK.PARITY_REDIS_URL);
  try {
    for (const template of settings.templates.values()) {
      for (let i = 1; i <= KEYS; i += 1000) {
        await redis.del(...Array.from({ length: Math.min(1000, KEYS - i + 1) }, (_, j) => renderKey(template, { id: i + j })));
      }
    }
    const keys = cacheKeys(settings.migration);
    await redis.del(keys.config, keys.audit);
  } finally {
    redis.disconnect();
  }
}

let lsn = 0x10000n;
function changes(n: number): Change[] {
  const out: Change[] = [];
  for (let i = 0; i < n; i++) {
    lsn += 1n;
    const id = 1 + Math.floor(Math.random() * KEYS);
    out.push({
      op: 'u',
      key: { id },
      before: null,
      after: orderRow(id, Number(lsn % 1000n)),
      position: { commitLsn: lsn, ordinal: 0 },
      commitTimeUs: 0n,
    });
  }
  return out;
}

/**
 * Runs this file as a load child (`--produce-steady` or `--write-steady`) and resolves when it
 * exits; `onMeasuring` runs when the child says its measured window begins.
 */
function loadChild(args: string[], onMeasuring: () => void): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', fileURLToPath(import.meta.url), ...args], {
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    let out = '';
    child.stdout.on('data', (d: Buffer) => {
      out += d.toString();
      if (out.includes(MEASURING)) {
        onMeasuring();
        out = '';
      }
    });
    child.on('exit', (code) => (code === 0 ? resolve() : reject(new Error(`${args[0]} exited ${code}`))));
  });
}

async function waitCommitted(groupId: string, topic: string, timeoutMs: number): Promise<void> {
  const admin = kafka.admin();
  try {
    const end = await endOffsets(admin, topic);
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const committed = await committedOffsets(admin, groupId, topic);
      if ([...end].every(([p, high]) => committed.get(p) === high)) return;
      if (Date.now() > deadline) throw new Error(`group ${groupId} did not catch up on ${topic}`);
      await sleep(100);
    }
  } finally {
    await admin.close();
  }
}

/** Phases 1 and 2: synthetic events through real Kafka. */
async function kafkaPhases(): Promise<{
  kafka_to_cache_p99_ms: number | null;
  kafka_to_cache_p50_ms: number | null;
  kafka_to_cache_warmup_p99_ms: number | null;
  steady_event_loop_delay_p99_ms: number;
  steady_events: number;
  max_updates_per_s: number;
  max_events_per_s: number;
  backlog_events: number;
}> {
  const prefix = uniqueName('bcache');
  const stream = await createTestStream(kafka, prefix, 'orders');
  const settings = benchSettings(prefix, stream.topic);
  const fastSettings = benchSettings(`${prefix}f`, stream.topic);
  try {
    // Phase 1: steady 5,000/s.
    const latencies: number[] = [];
    const perSecond = new Map<number, number[]>();
    let measureStart = 0;
    let measuring = false;
    let warming = false;
    const warmup: number[] = [];
    const steady = startVersioner(settings, `${prefix}-steady`, (c) => {
      if (warming) for (const ms of c.kafkaToCacheMs) warmup.push(ms);
      if (!measuring) return;
      const second = Math.floor((Date.now() - measureStart) / 1000);
      let bucket = perSecond.get(second);
      if (!bucket) perSecond.set(second, (bucket = []));
      for (const ms of c.kafkaToCacheMs) {
        latencies.push(ms);
        bucket.push(ms);
      }
    });
    await steady.start();
    await stream.send(changes(500), 'orders');
    await waitCommitted(`${prefix}-steady`, stream.topic, 60_000);
    log(`steady phase: ${RATE}/s for ${SECONDS}s (after a ${WARMUP}s warm-up) from a producer process`);
    // How long this process waited for a CPU: on a shared machine that, not the code, sets the tail.
    const loopDelay = monitorEventLoopDelay({ resolution: 5 });
    warming = true;
    await loadChild(['--produce-steady', stream.topic, prefix, String(SECONDS)], () => {
      warming = false;
      loopDelay.enable();
      measureStart = Date.now();
      measuring = true;
    });
    await waitCommitted(`${prefix}-steady`, stream.topic, 120_000);
    measuring = false;
    loopDelay.disable();
    await steady.stop();
    log(
      `steady phase p99 per second (ms): ${[...perSecond]
        .sort(([a], [b]) => a - b)
        .map(([sec, v]) => `${sec}s:${percentile(v, 99)}`)
        .join(' ')}`,
    );

    // Phase 2: a backlog consumed by a fresh group as fast as it goes.
    log(`backlog phase: producing ${BACKLOG} events`);
    lsn = 0x2000_0000n;
    await stream.send(changes(BACKLOG), 'orders');
    let applied = 0;
    let writes = 0;
    let first = 0;
    let last = 0;
    // Its own keys: entries the steady phase left would turn the replay into cheap "not newer" skips.
    const fast = startVersioner(fastSettings, `${prefix}-fast`, (c) => {
      if (!first) first = Date.now();
      applied += c.events;
      writes += c.writes;
      last = Date.now();
    });
    const total = [...(await endOffsets(stream.admin, stream.topic)).values()].reduce((a, b) => a + b, 0n);
    await fast.start();
    await waitCommitted(`${prefix}-fast`, stream.topic, 300_000);
    await fast.stop();
    const seconds = Math.max(0.001, (last - first) / 1000);
    log(`backlog phase: ${applied} events (${total} in topic) in ${seconds.toFixed(2)}s`);
    return {
      kafka_to_cache_p99_ms: percentile(latencies, 99),
      kafka_to_cache_p50_ms: percentile(latencies, 50),
      // The load generator's start-up: reported, not the steady figure (see the header).
      kafka_to_cache_warmup_p99_ms: percentile(warmup, 99),
      steady_event_loop_delay_p99_ms: Math.round(loopDelay.percentile(99) / 1e5) / 10,
      steady_events: latencies.length,
      // Cache entry updates (one per populated version per change, as parity_cache_updates_applied_total counts them).
      max_updates_per_s: Math.round(writes / seconds),
      max_events_per_s: Math.round(applied / seconds),
      backlog_events: applied,
    };
  } finally {
    await stream.admin.deleteTopics({ topics: [`${prefix}-steady.dlq`, `${prefix}-fast.dlq`] }).catch(() => undefined);
    await stream.close();
    await cleanRedis(settings);
    await cleanRedis(fastSettings);
  }
}

/** Phase 3: PostgreSQL -> parity cdc run -> Kafka -> cache versioner -> Redis. */
async function cdcPhase(): Promise<{
  commit_to_cache_p99_ms: number | null;
  commit_to_cache_p50_ms: number | null;
  commit_to_kafka_p99_ms: number | null;
  commit_to_cache_warmup_p99_ms: number | null;
  commit_to_kafka_warmup_p99_ms: number | null;
  cdc_changes: number;
  cdc_error?: string;
}> {
  const prefix = uniqueName('bcdc');
  const db = await createTestDatabase('source', 'bcdc');
  const pool = new pg.Pool({ connectionString: db.url, max: 4 });
  let cdc: ChildProcess | null = null;
  let versioner: CacheVersioner | null = null;
  let settings: CacheSettings | null = null;
  let cdcErr = '';
  try {
    await pool.query(
      `CREATE TABLE orders (id int4 PRIMARY KEY, total_amount int, total_amount_minor int8, currency text, price numeric(10,2), paid boolean, updated_at timestamptz, tags text[])`,
    );
    await pool.query(`INSERT INTO orders SELECT g, g, g, 'USD', 1.50, false, now(), '{a}' FROM generate_series(1, ${KEYS}) g`);
    const spec = writeTestSpec({
      name: prefix.replace('_', '-'),
      'source.database': db.url,
      'cdc.slot': `${prefix}_slot`,
      'cdc.publication': `${prefix}_pub`,
      'cdc.topicPrefix': prefix,
      'cdc.snapshot': 'never',
      'cache.keys': { v1: `${prefix}:order:v1:{id}`, v2: `${prefix}:order:v2:{id}` },
      'cache.ttlSeconds': 600,
      'infra.kafka.brokers': KAFKA_BROKERS,
      'infra.registry.url': STACK.PARITY_REGISTRY_URL,
      'infra.redis.url': STACK.PARITY_REDIS_URL,
    });
    settings = cacheSettings(spec.spec);
    cdc = spawn(process.execPath, [BIN, 'cdc', 'run', '--spec', spec.path], {
      env: { ...process.env, ...STACK, PARITY_LOG_LEVEL: 'warn' },
    });
    cdc.stderr?.on('data', (d: Buffer) => (cdcErr = (cdcErr + d.toString()).slice(-4000)));
    const cdcExit = new Promise<number | null>((resolve) => cdc?.on('exit', (code) => resolve(code)));
    // The CDC creates the topic once it has the table's shape; a first change makes sure it does.
    await pool.query(`UPDATE orders SET paid = NOT paid WHERE id = 1`);
    const admin = kafka.admin();
    const deadline = Date.now() + 120_000;
    while (!(await admin.listTopics()).includes(settings.topic)) {
      if (cdc.exitCode !== null || Date.now() > deadline) {
        await admin.close();
        throw new Error(`parity cdc run did not create ${settings.topic} (exit ${cdc.exitCode}): ${cdcErr.slice(-1500)}`);
      }
      await pool.query(`UPDATE orders SET paid = NOT paid WHERE id = 1`);
      await sleep(500);
    }
    await admin.close();
    const latencies: number[] = [];
    const toKafka: number[] = [];
    const warmup: number[] = [];
    const warmupToKafka: number[] = [];
    let measuring = false;
    let warming = false;
    versioner = startVersioner(settings, `${prefix}-cache`, (c) => {
      if (warming) {
        c.commitToCacheMs.forEach((ms, i) => {
          warmup.push(ms);
          warmupToKafka.push(ms - (c.kafkaToCacheMs[i] ?? 0));
        });
      }
      if (!measuring) return;
      latencies.push(...c.commitToCacheMs);
      // Streamed changes only (no snapshot rows here): the CDC's share is commit -> Kafka timestamp.
      c.commitToCacheMs.forEach((ms, i) => toKafka.push(ms - (c.kafkaToCacheMs[i] ?? 0)));
    });
    await versioner.start();
    log(`cdc phase: ${RATE} changes/s for ${SECONDS}s (after a ${WARMUP}s warm-up) through parity cdc run, from a writer process`);
    warming = true;
    await loadChild(['--write-steady', db.url, String(SECONDS)], () => {
      warming = false;
      measuring = true;
    });
    log('cdc phase: waiting for the cache');
    const drainDeadline = Date.now() + 120_000;
    let previous = -1;
    // Done when no new change reached the cache for 3 s.
    while (Date.now() < drainDeadline && latencies.length !== previous) {
      previous = latencies.length;
      await sleep(3000);
    }
    measuring = false;
    void cdcExit;
    return {
      commit_to_cache_p99_ms: percentile(latencies, 99),
      commit_to_cache_p50_ms: percentile(latencies, 50),
      commit_to_kafka_p99_ms: percentile(toKafka, 99),
      commit_to_cache_warmup_p99_ms: percentile(warmup, 99),
      commit_to_kafka_warmup_p99_ms: percentile(warmupToKafka, 99),
      cdc_changes: latencies.length,
    };
  } catch (err) {
    log(`cdc phase failed: ${(err as Error).message}`);
    return {
      commit_to_cache_p99_ms: null,
      commit_to_cache_p50_ms: null,
      commit_to_kafka_p99_ms: null,
      commit_to_cache_warmup_p99_ms: null,
      commit_to_kafka_warmup_p99_ms: null,
      cdc_changes: 0,
      cdc_error: (err as Error).message.slice(0, 500),
    };
  } finally {
    await versioner?.stop().catch(() => undefined);
    if (cdc && cdc.exitCode === null) {
      cdc.kill('SIGTERM');
      await Promise.race([new Promise((r) => cdc?.once('exit', r)), sleep(10_000)]);
      if (cdc.exitCode === null) cdc.kill('SIGKILL');
    }
    await pool.end();
    await db.drop().catch(() => undefined);
    if (settings) {
      await cleanRedis(settings);
      const admin = kafka.admin();
      await admin.deleteTopics({ topics: [settings.topic, `${prefix}-cache.dlq`] }).catch(() => undefined);
      await admin.close();
    }
  }
}

/**
 * Calls `step(due)` at a steady `perSecond` for the warm-up and then `seconds` more, without a break
 * in between; prints MEASURING on stdout when the measured window begins. Returns the steps of the
 * measured window and its length.
 */
async function paced(
  perSecond: number,
  seconds: number,
  step: (due: number) => Promise<number>,
): Promise<{ done: number; seconds: number }> {
  const t0 = Date.now();
  const warmupMs = WARMUP * 1000;
  let done = 0;
  let measuredFrom = -1;
  let measuredAt = 0;
  for (;;) {
    const elapsed = Date.now() - t0;
    if (measuredFrom < 0 && elapsed >= warmupMs) {
      measuredFrom = done;
      measuredAt = Date.now();
      process.stdout.write(`${MEASURING}\n`);
    }
    if (elapsed >= warmupMs + seconds * 1000) break;
    const due = Math.floor((elapsed / 1000) * perSecond) - done;
    if (due > 0) done += await step(due);
    else await sleep(2);
  }
  return { done: done - measuredFrom, seconds: (Date.now() - measuredAt) / 1000 };
}

/** `--produce-steady`: the change events of phase 1, in their own process (see the header). */
async function produceSteady(topic: string, prefix: string, seconds: number): Promise<void> {
  const encoder = await createChangeEncoder({
    registry: createRegistryClient({ url: STACK.PARITY_REGISTRY_URL }),
    format: 'avro',
  }).forTable(ordersShape(prefix, 'orders'));
  const producer = kafka.producer();
  // Positions above the warm-up's and below the backlog's, as one stream would have them.
  lsn = 0x1000_0000n;
  const { done, seconds: measured } = await paced(RATE, seconds, async (due) => {
    const n = Math.min(due, 500);
    const messages = changes(n).map((c) => {
      const m = encodeChange(
        encoder,
        {
          key: c.key,
          envelope: envelopeOf({ ...c, commitTimeUs: BigInt(Date.now()) * 1000n }, 'orders'),
          position: c.position,
          txId: 1,
          commitTimeUs: BigInt(Date.now()) * 1000n,
        },
        3,
      );
      return {
        topic,
        partition: m.partition,
        ...(m.key ? { key: m.key } : {}),
        ...(m.value ? { value: m.value } : {}),
        headers: m.headers,
      };
    });
    await producer.send({ messages });
    return n;
  });
  await producer.close();
  log(`steady producer: sent ${done} in the ${measured.toFixed(1)}s measured`);
}

/** `--write-steady`: phase 3's application writes, 50-row transactions, up to 4 in flight. */
async function writeSteady(url: string, seconds: number): Promise<void> {
  const pool = new pg.Pool({ connectionString: url, max: 4 });
  const rowsPerTx = 50;
  const inflight = new Set<Promise<unknown>>();
  try {
    const { done, seconds: measured } = await paced(RATE / rowsPerTx, seconds, async () => {
      if (inflight.size >= 4) {
        await Promise.race(inflight);
        return 0;
      }
      const ids = Array.from({ length: rowsPerTx }, () => 1 + Math.floor(Math.random() * KEYS));
      const p = pool.query(
        `UPDATE orders SET total_amount_minor = total_amount_minor + 1, updated_at = clock_timestamp() WHERE id = ANY($1::int4[])`,
        [ids],
      );
      inflight.add(p);
      void p.finally(() => inflight.delete(p));
      return 1;
    });
    await Promise.all(inflight);
    log(
      `cdc phase writer: ${done} transactions (${done * rowsPerTx} row changes, fewer when ids repeat) in the ${measured.toFixed(1)}s measured`,
    );
  } finally {
    await pool.end();
  }
}

if (process.argv[2] === '--produce-steady') {
  await produceSteady(process.argv[3] as string, process.argv[4] as string, Number(process.argv[5]));
  process.exit(0);
}
if (process.argv[2] === '--write-steady') {
  await writeSteady(process.argv[3] as string, Number(process.argv[4]));
  process.exit(0);
}

const started = Date.now();
const loadBefore = loadavg()[0];
const kafkaFigures = await kafkaPhases().catch((err: unknown) => {
  log(`kafka phases failed: ${(err as Error).message}`);
  return {
    kafka_to_cache_p99_ms: null,
    kafka_to_cache_p50_ms: null,
    kafka_to_cache_warmup_p99_ms: null,
    steady_event_loop_delay_p99_ms: null,
    steady_events: 0,
    max_updates_per_s: null,
    max_events_per_s: null,
    backlog_events: 0,
    kafka_error: (err as Error).message.slice(0, 500),
  };
});
const cdcFigures = await cdcPhase();
const result = {
  bench: 'cache',
  rate_per_s: RATE,
  seconds: SECONDS,
  ...kafkaFigures,
  ...cdcFigures,
  targets: { kafka_to_cache_p99_ms: '< 50', commit_to_cache_p99_ms: '< 300', max_updates_per_s: '>= 30000' },
  met: {
    kafka_to_cache_p99_ms: kafkaFigures.kafka_to_cache_p99_ms !== null && kafkaFigures.kafka_to_cache_p99_ms < 50,
    commit_to_cache_p99_ms: cdcFigures.commit_to_cache_p99_ms !== null && cdcFigures.commit_to_cache_p99_ms < 300,
    max_updates_per_s: kafkaFigures.max_updates_per_s !== null && kafkaFigures.max_updates_per_s >= 30_000,
  },
  elapsed_s: Math.round((Date.now() - started) / 1000),
  load_average_1m: { before: Math.round((loadBefore ?? 0) * 100) / 100, after: Math.round((loadavg()[0] ?? 0) * 100) / 100 },
  cpus: cpus().length,
};
process.stdout.write(`${JSON.stringify(result)}\n`);
process.exit(0);
