/**
 * CDC benchmark: `npm run bench:cdc [-- --producer maintained|wire|both] [-- --changes N] [-- --rate R]
 * [-- --latency-seconds S] [-- --compression none|gzip|zstd] (cdc.compression of the connector's spec)
 * [-- --encoding debezium|exact-text] (cdc.encoding; default debezium, the product's default)
 * [-- --debezium-writer compiled|avsc] (the debezium encoding's Avro writer, PARITY_DEBEZIUM_WRITER of the
 * connector: the compiled one, default, or avsc, the reference it is tested against).
 *
 * `--producer both` (the default) runs everything below once per sink implementation, in one run,
 * wire first, each with its own database, slot and topics, so the ratio of the two is measured under
 * the same machine load; the JSON line then holds both runs and `maintained_to_wire`.
 *
 * 1. Throughput: a backlog of N changes (~200-byte rows, half inserts, half updates, in 2,000-row
 *    transactions) plus one 200,000-row transaction is written while the connector is stopped; then
 *    `parity cdc run` (a child process) drains it. events_per_s = events / (last ack - session start).
 * 2. Latency: a writer paced at R changes/s (100-row transactions every 100/R s) for S seconds;
 *    commit -> Kafka ack per event = the broker's LogAppendTime (the topic is created with
 *    message.timestamp.type=LogAppendTime; with acks=all on one broker, append is the ack) minus the
 *    commit time in the event's header. p50/p99 over every event.
 * 3. peak_rss_mb: the connector process's VmHWM (peak RSS over the whole run, the 200k-row
 *    transaction included).
 * 4. ceiling_events_per_s: `pg_recvlogical` decoding the same backlog (same publication, pgoutput
 *    proto 1) from a second slot created at the same point, to /dev/null: one slot's physical limit.
 *
 * `--secure` runs it against the secured stack (`parity stack up --secure`: Kafka SASL_SSL with
 * SCRAM-SHA-512, PostgreSQL over verify-full TLS, the registry over HTTPS with basic auth; see
 * secure-option.ts); the JSON then says `"secure": true`.
 *
 * Progress goes to stderr; the last stdout line is one JSON object with the figures.
 */
// First: with --secure it sets the secured stack's settings before the support modules read them.
import { SECURE } from './secure-option.js';
import { spawn } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import pg from 'pg';
import type { SinkProducer } from '../../connectors/kafka-sink/sink.js';
import { HEADERS } from '../../services/core/change-event.js';
import { stackKafka } from '../support/security.js';
import { createTestDatabase, STACK, uniqueName } from '../support/stack.js';
import { REPO_ROOT, startCdc, writeCdcSpec } from '../integration/cdc/support.js';
import { BENCH_NOTE, BENCH_TP_COLUMNS, writeBacklog } from './cdc-backlog.js';

const { values } = parseArgs({
  options: {
    changes: { type: 'string', default: '1000000' },
    'big-tx': { type: 'string', default: '200000' },
    rate: { type: 'string', default: '5000' },
    'latency-seconds': { type: 'string', default: '30' },
    'max-in-flight': { type: 'string' },
    'node-options': { type: 'string' },
    producer: { type: 'string', default: 'both' },
    compression: { type: 'string', default: 'none' },
    // cdc.encoding of the connector's spec: Debezium's events (the product's default) or parity's exact text.
    encoding: { type: 'string', default: 'debezium' },
    // The debezium encoding's Avro writer (connectors/kafka-sink/debezium-writer.ts, or avsc).
    'debezium-writer': { type: 'string', default: 'compiled' },
    // Read by secure-option.ts (imported first).
    secure: { type: 'boolean', default: false },
  },
});
// cdc.compression of the connector's spec: the wire producer's record batch codec.
const COMPRESSION = values.compression!;
const ENCODING = values.encoding as 'debezium' | 'exact-text';
if (ENCODING !== 'debezium' && ENCODING !== 'exact-text') {
  process.stderr.write(`--encoding must be debezium or exact-text, got ${values.encoding}\n`);
  process.exit(2);
}
if (!['none', 'gzip', 'zstd'].includes(COMPRESSION)) {
  process.stderr.write(`--compression must be none, gzip or zstd, got ${COMPRESSION}\n`);
  process.exit(2);
}
const PRODUCERS: SinkProducer[] = values.producer === 'both' ? ['wire', 'maintained'] : [values.producer as SinkProducer];
if (!PRODUCERS.every((p) => p === 'wire' || p === 'maintained')) {
  process.stderr.write(`--producer must be maintained, wire or both, got ${values.producer}\n`);
  process.exit(2);
}
const DEBEZIUM_WRITER = values['debezium-writer']!;
if (DEBEZIUM_WRITER !== 'compiled' && DEBEZIUM_WRITER !== 'avsc') {
  process.stderr.write(`--debezium-writer must be compiled or avsc, got ${DEBEZIUM_WRITER}\n`);
  process.exit(2);
}
const CONNECTOR_ENV: NodeJS.ProcessEnv = {
  PARITY_DEBEZIUM_WRITER: DEBEZIUM_WRITER,
  ...(values['node-options'] ? { NODE_OPTIONS: values['node-options'] } : {}),
};
const CONNECTOR_ARGS = values['max-in-flight'] ? ['--max-in-flight', values['max-in-flight']] : [];
const CHANGES = Number(values.changes);
const BIG_TX = Number(values['big-tx']);
const RATE = Number(values.rate);
const LATENCY_SECONDS = Number(values['latency-seconds']);
const BATCH = 2_000;

const log = (msg: string) => process.stderr.write(`[bench:cdc] ${msg}\n`);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function rssOf(pid: number): { rss: number; hwm: number } {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const get = (k: string) => Number(new RegExp(`${k}:\\s+(\\d+) kB`).exec(status)?.[1] ?? 0) / 1024;
  return { rss: get('VmRSS'), hwm: get('VmHWM') };
}

/** CPU seconds (user + system) a process has used so far. */
function cpuSeconds(pid: number): number {
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
  // utime and stime are fields 14 and 15 of /proc/pid/stat (1-based), in clock ticks (100/s on Linux).
  return (Number(fields[11]) + Number(fields[12])) / 100;
}

function loadAverage(): number[] {
  return readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).map(Number);
}

function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
}

async function scrapeEvents(url: string): Promise<number> {
  const text = await (await fetch(`${url}/metrics`)).text();
  let total = 0;
  for (const line of text.split('\n')) if (line.startsWith('parity_cdc_events_total{')) total += Number(line.split(' ').at(-1));
  return total;
}

// The stack's security settings (plain, or SASL_SSL on the secured stack: secure-option.ts).
const kafka = stackKafka('bench-cdc');

async function runOne(producer: SinkProducer): Promise<Record<string, unknown>> {
  log(`producer ${producer}`);
  const db = await createTestDatabase('source', 'benchcdc');
  const prefix = uniqueName('bench');
  const slot = uniqueName('bench');
  const ceilingSlot = `${slot}_ceiling`;
  const tpTopic = `${prefix}.public.bench_tp`;
  const latTopic = `${prefix}.public.bench_lat`;
  const admin = kafka.admin();
  const c = new pg.Client({ connectionString: db.url });
  await c.connect();
  let cdc: ReturnType<typeof startCdc> | null = null;
  try {
    await c.query(`CREATE TABLE public.bench_tp (${BENCH_TP_COLUMNS})`);
    await c.query(`CREATE TABLE public.bench_lat (${BENCH_TP_COLUMNS})`);
    await admin.createTopics({
      topics: [tpTopic, latTopic],
      partitions: 3,
      replicas: -1,
      configs: [{ name: 'message.timestamp.type', value: 'LogAppendTime' }],
    });
    await admin.metadata({ topics: [tpTopic, latTopic], forceUpdate: true });
    const spec = writeCdcSpec({
      database: db.url,
      table: 'bench_tp',
      tables: ['public.bench_lat'],
      slot,
      topicPrefix: prefix,
      snapshot: 'never',
      heartbeatIntervalSeconds: 10,
      encoding: ENCODING,
    });
    if (COMPRESSION !== 'none') {
      const doc = JSON.parse(readFileSync(spec, 'utf8')) as { cdc: Record<string, unknown> };
      doc.cdc.compression = COMPRESSION;
      writeFileSync(spec, JSON.stringify(doc, null, 2));
    }

    // Create publication and slot with a first short run, then a second slot at the same point.
    const producerArgs = ['--producer', producer];
    cdc = startCdc(spec, producerArgs);
    await cdc.streaming(120_000);
    await cdc.kill('SIGTERM');
    cdc = null;
    await c.query(`SELECT pg_create_logical_replication_slot($1, 'pgoutput')`, [ceilingSlot]);

    const { total, endLsn } = await writeBacklog(c, { changes: CHANGES, batch: BATCH, bigTx: BIG_TX, log });

    // Throughput: drain the backlog.
    cdc = startCdc(spec, [...producerArgs, ...CONNECTOR_ARGS], CONNECTOR_ENV);
    const pid = cdc.child.pid!;
    await cdc.streaming(120_000);
    const url = /"status":"(http:\/\/[^"]+)"/.exec(cdc.output())![1]!;
    const cpuBefore = cpuSeconds(pid);
    const loadBefore = loadAverage();
    const sessionLine = cdc
      .output()
      .split('\n')
      .filter((l) => l.includes('replication session started'))
      .at(-1)!;
    const t0 = JSON.parse(sessionLine).time as number;
    let acked = 0;
    let peakRss = 0;
    let tDone = 0;
    while (acked < total) {
      await sleep(100);
      acked = await scrapeEvents(url);
      peakRss = Math.max(peakRss, rssOf(pid).rss);
      if (cdc.child.exitCode !== null) throw new Error(`connector exited:\n${cdc.output()}`);
      if (Date.now() - t0 > 900_000) throw new Error(`backlog not drained after 15 min (${acked}/${total})`);
      tDone = Date.now();
    }
    const drainSeconds = (tDone - t0) / 1000;
    const drainCpu = cpuSeconds(pid) - cpuBefore;
    const loadAfter = loadAverage();
    const eventsPerS = total / drainSeconds;
    log(
      `drained ${acked} events in ${drainSeconds.toFixed(1)} s: ${Math.round(eventsPerS)} events/s, connector CPU ${drainCpu.toFixed(1)} s (${Math.round(total / drainCpu)} events per CPU-second), load ${loadBefore[0]} -> ${loadAfter[0]} (RSS peak so far ${peakRss.toFixed(0)} MB)`,
    );

    // Latency at a steady rate.
    const consumer = kafka.consumer({ groupId: uniqueName('bench-lat'), maxWaitMs: 100 });
    const latencies: number[] = [];
    const stream = await consumer.consume({ topics: [latTopic], mode: 'earliest', autocommit: false });
    stream.on('data', (m) => {
      const commitUs = m.headers.get(HEADERS.commitTimeUs);
      if (commitUs !== undefined) latencies.push(Number(m.timestamp) - Number(commitUs.toString()) / 1000);
    });
    const perTx = 100;
    const intervalMs = (perTx / RATE) * 1000;
    const txCount = Math.round((LATENCY_SECONDS * RATE) / perTx);
    log(`latency: ${RATE} changes/s for ${LATENCY_SECONDS} s (${txCount} transactions of ${perTx})`);
    const writer = new pg.Client({ connectionString: db.url });
    await writer.connect();
    const tl = performance.now();
    let nextId = 1;
    let late = 0;
    for (let i = 0; i < txCount; i++) {
      const due = tl + i * intervalMs;
      const wait = due - performance.now();
      if (wait > 0) await sleep(wait);
      else late++;
      if (i % 2 === 0 || nextId < perTx) {
        await writer.query(
          `INSERT INTO public.bench_lat (id, seq, amount, status, note) SELECT g, 1, g * 1.25, 'new', $2 FROM generate_series($1::bigint, $1::bigint + $3 - 1) g`,
          [nextId, BENCH_NOTE, perTx],
        );
        nextId += perTx;
      } else {
        const lo = 1 + Math.floor(Math.random() * Math.max(1, nextId - perTx));
        await writer.query(`UPDATE public.bench_lat SET seq = seq + 1, updated_at = now() WHERE id >= $1 AND id < $1 + $2`, [lo, perTx]);
      }
      if (i % 200 === 0) peakRss = Math.max(peakRss, rssOf(pid).rss);
    }
    const achievedRate = (txCount * perTx) / ((performance.now() - tl) / 1000);
    await writer.end();
    const expected = txCount * perTx;
    const deadline = Date.now() + 120_000;
    while (latencies.length < expected && Date.now() < deadline) await sleep(200);
    await stream.close();
    await consumer.close(true);
    latencies.sort((a, b) => a - b);
    const p50 = percentile(latencies, 50);
    const p99 = percentile(latencies, 99);
    log(
      `latency over ${latencies.length}/${expected} events at ${Math.round(achievedRate)} changes/s (${late} late ticks): p50 ${p50.toFixed(1)} ms, p99 ${p99.toFixed(1)} ms, max ${latencies.at(-1)?.toFixed(1)} ms`,
    );

    const { hwm } = rssOf(pid);
    peakRss = Math.max(peakRss, hwm);
    await cdc.kill('SIGTERM');
    cdc = null;

    // Ceiling: pg_recvlogical decoding the same backlog from the second slot.
    log('ceiling: pg_recvlogical on the same WAL');
    const recv = join(STACK.PARITY_PG_BINDIR, 'pg_recvlogical');
    const tc = performance.now();
    const code = await new Promise<number | null>((resolve) => {
      const child = spawn(
        recv,
        [
          '-d',
          db.url,
          '--slot',
          ceilingSlot,
          '--start',
          '--endpos',
          endLsn,
          '--no-loop',
          '-o',
          'proto_version=1',
          '-o',
          `publication_names=${slot}_pub`,
          '-f',
          '/dev/null',
        ],
        {
          stdio: ['ignore', 'ignore', 'pipe'],
        },
      );
      child.stderr.on('data', (d: Buffer) => log(`pg_recvlogical: ${d.toString().trim()}`));
      child.once('exit', resolve);
    });
    const ceilingSeconds = (performance.now() - tc) / 1000;
    if (code !== 0) throw new Error(`pg_recvlogical exited with ${code}`);
    const ceiling = total / ceilingSeconds;
    log(`pg_recvlogical decoded the backlog in ${ceilingSeconds.toFixed(1)} s: ${Math.round(ceiling)} events/s`);

    return {
      producer,
      events_per_s: Math.round(eventsPerS),
      p50_ms: Math.round(p50 * 10) / 10,
      p99_ms: Math.round(p99 * 10) / 10,
      peak_rss_mb: Math.round(peakRss),
      ceiling_events_per_s: Math.round(ceiling),
      backlog_changes: total,
      big_tx_rows: BIG_TX,
      drain_seconds: Math.round(drainSeconds * 10) / 10,
      connector_cpu_seconds: Math.round(drainCpu * 10) / 10,
      events_per_cpu_s: Math.round(total / drainCpu),
      load_average_during_drain: [loadBefore[0], loadAfter[0]],
      latency_late_ticks: late,
      latency_rate_per_s: Math.round(achievedRate),
      latency_events: latencies.length,
      format: 'avro',
      encoding: ENCODING,
      ...(ENCODING === 'debezium' ? { debezium_writer: DEBEZIUM_WRITER } : {}),
      partitions: 3,
      compression: COMPRESSION,
    };
  } finally {
    if (cdc) await cdc.kill('SIGKILL');
    await c.end().catch(() => undefined);
    await admin.deleteTopics({ topics: [tpTopic, latTopic] }).catch(() => undefined);
    await admin.close();
    await db.drop();
    void REPO_ROOT;
  }
}

async function main(): Promise<void> {
  const runs: Record<string, unknown>[] = [];
  for (const producer of PRODUCERS) {
    const r = await runOne(producer);
    runs.push(r);
    // One line per producer with the headline figures, then the JSON of all runs on the last line.
    process.stdout.write(
      `producer=${r.producer} events_per_s=${r.events_per_s} p99_ms=${r.p99_ms} peak_rss_mb=${r.peak_rss_mb} ceiling_events_per_s=${r.ceiling_events_per_s}\n`,
    );
  }
  const by = new Map(runs.map((r) => [r.producer, r]));
  const wire = by.get('wire')?.events_per_s as number | undefined;
  const maintained = by.get('maintained')?.events_per_s as number | undefined;
  const ratio = wire && maintained ? Math.round((maintained / wire) * 1000) / 1000 : null;
  // Events per connector CPU-second: less sensitive than wall-clock throughput to other load that
  // comes and goes between the two runs.
  const perCpu = (p: string) => by.get(p)?.events_per_cpu_s as number | undefined;
  const cpuRatio = perCpu('wire') && perCpu('maintained') ? Math.round((perCpu('maintained')! / perCpu('wire')!) * 1000) / 1000 : null;
  const result = {
    ...(runs.length === 1 ? runs[0] : {}),
    runs,
    maintained_to_wire: ratio,
    maintained_to_wire_per_cpu: cpuRatio,
    secure: SECURE,
    load_average: loadAverage(),
    targets: { events_per_s: '>= 70000', p99_ms: '< 250', peak_rss_mb: '< 300', maintained_to_wire: '>= 0.9 deletes the wire path' },
  };
  process.stdout.write(`${JSON.stringify(result)}\n`);
}

main().then(
  () => process.exit(0),
  (err: unknown) => {
    process.stderr.write(`[bench:cdc] failed: ${err instanceof Error ? err.stack : String(err)}\n`);
    process.exit(1);
  },
);
