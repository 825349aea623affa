/**
 * Debezium Server side by side with bench:cdc: `npx tsx test/bench/debezium.ts [--changes N] [--big-tx N]`
 * `[--format avro|json] [--java-opts "-Xmx512m ..."] [--max-batch-size N] [--keep]` (--keep leaves the
 * work dir with application.properties and debezium.log in /tmp). Run it under the bench lock:
 * `flock /tmp/parity-bench.lock npx tsx test/bench/debezium.ts`.
 *
 * Same table and the same backlog as test/bench/cdc.ts (N changes of ~200-byte rows, half inserts,
 * half updates, in 2,000-row transactions, plus one 200,000-row transaction), written after a
 * pgoutput slot and a publication were created for Debezium and before Debezium Server starts. Then
 * Debezium Server (the Quarkus distribution from Maven Central, `io.debezium:debezium-server-dist`)
 * drains it into Kafka with its Kafka sink: snapshot.mode=no_data, the producer with acks=all and
 * idempotence on, keys and values in Avro through the Apicurio converter shipped in the distribution
 * (Apicurio's native v3 API of the same registry; the Avro library it needs is not in the distribution
 * and comes from deploy/local/debezium-server-pom.xml), into a 3-partition topic created up front.
 * `--format json` uses Debezium's JSON converter without embedded schemas instead.
 *
 * events_per_s = backlog events / (Debezium's "Starting streaming" log line -> the poll that sees the
 * topic's end offsets summing to the backlog, read every 100 ms). CPU
 * seconds (utime + stime) over the same window and peak RSS (VmHWM) come from /proc/<java pid>.
 *
 * The distribution is fetched once into <cache dir>/debezium-server-<version> (~780 MB tar.gz)
 * through Maven, like the stack's artifacts: `dependency:copy` of the tar.gz artifact alone, with
 * strict checksums. That works although the artifact's parent POM
 * (io.debezium:debezium-server:3.6.0.Final) is missing from the repository: copying one artifact
 * needs no dependency tree, unlike copy-dependencies over a project POM (deploy/local/*-pom.xml).
 * Maven's settings (~/.m2/settings.xml, mirrors) decide where it comes from. Debezium 3.6 needs
 * Java 21+ (class files of version 65).
 *
 * Progress goes to stderr; the last stdout line is one JSON object with the figures.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { createWriteStream, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import pg from 'pg';
import { topicOffsets } from '../../connectors/kafka-sink/admin.js';
import { createKafka } from '../../services/core/clients.js';
import { PROJECT_ROOT, stackConfig } from '../../services/stack/config.js';
import { findJava } from '../../services/stack/fetch.js';
import { createTestDatabase, KAFKA_BROKERS, STACK, uniqueName } from '../support/stack.js';
import { BENCH_TP_COLUMNS, writeBacklog } from './cdc-backlog.js';

const { values } = parseArgs({
  options: {
    changes: { type: 'string', default: '1000000' },
    'big-tx': { type: 'string', default: '200000' },
    format: { type: 'string', default: 'avro' },
    'java-opts': { type: 'string', default: '' },
    // Debezium's defaults are max.batch.size 2048, max.queue.size 8192; the queue is kept at 4x the batch.
    'max-batch-size': { type: 'string' },
    keep: { type: 'boolean', default: false },
  },
});
const CHANGES = Number(values.changes);
const BIG_TX = Number(values['big-tx']);
const FORMAT = values.format;
if (FORMAT !== 'avro' && FORMAT !== 'avro-confluent' && FORMAT !== 'json')
  throw new Error(`--format must be avro, avro-confluent or json, not ${FORMAT}`);
const JAVA_OPTS = values['java-opts'] ? values['java-opts'].split(' ').filter(Boolean) : [];
const MAX_BATCH_SIZE = values['max-batch-size'] ? Number(values['max-batch-size']) : undefined;
const BATCH = 2_000;

const DEBEZIUM_VERSION = '3.6.0.Final';
/**
 * Confluent's Avro converter and its dependencies, which the distribution ships only inside its
 * DSE (Cassandra) connector folder; with --format avro-confluent they go on the classpath instead of
 * extra-lib's Avro 1.12.1.
 */
const CONFLUENT_JARS = [
  'avro-1.11.3',
  'common-utils-7.0.16',
  'guava-24.1.1-jre',
  'kafka-avro-serializer-7.0.16',
  'kafka-connect-avro-converter-7.0.16',
  'kafka-connect-avro-data-7.0.16',
  'kafka-schema-registry-client-7.0.16',
  'kafka-schema-serializer-7.0.16',
  'swagger-annotations-1.6.12',
].map((name) => join('connectors', 'debezium-connector-dse', `${name}.jar`));
const DIST_ARTIFACT = `io.debezium:debezium-server-dist:${DEBEZIUM_VERSION}:tar.gz`;
const DEPENDENCY_PLUGIN = 'org.apache.maven.plugins:maven-dependency-plugin:3.8.1';

const log = (msg: string) => process.stderr.write(`[bench:debezium] ${msg}\n`);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function rssOf(pid: number): { rss: number; hwm: number } {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const get = (k: string) => Number(new RegExp(`${k}:\\s+(\\d+) kB`).exec(status)?.[1] ?? 0) / 1024;
  return { rss: get('VmRSS'), hwm: get('VmHWM') };
}

/** CPU seconds (user + system, all threads) a process has used so far. */
function cpuSeconds(pid: number): number {
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
  // utime and stime are fields 14 and 15 of /proc/pid/stat (1-based), in clock ticks (100/s on Linux).
  return (Number(fields[11]) + Number(fields[12])) / 100;
}

function loadAverage(): number[] {
  return readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).map(Number);
}

interface Installation {
  /** The folder holding run.sh, the runner jar and lib/. */
  home: string;
  /** Jars the distribution lacks (Apache Avro), from deploy/local/debezium-server-pom.xml. */
  extraLib: string;
}

/** Fetches Avro through Maven (like the stack's artifacts) into extra-lib/, once. */
function ensureExtraLib(root: string): string {
  const extraLib = join(root, 'extra-lib');
  const marker = join(extraLib, '.complete');
  if (existsSync(marker)) return extraLib;
  mkdirSync(extraLib, { recursive: true });
  const pom = join(PROJECT_ROOT, 'deploy/local/debezium-server-pom.xml');
  const mvn = spawnSync(
    'mvn',
    ['-B', '-q', '-f', pom, `${DEPENDENCY_PLUGIN}:copy-dependencies`, `-DoutputDirectory=${extraLib}`, '-DincludeScope=runtime'],
    { encoding: 'utf8' },
  );
  if (mvn.status !== 0) throw new Error(`mvn -f ${pom} failed:\n${(mvn.stdout + mvn.stderr).split('\n').slice(-15).join('\n')}`);
  writeFileSync(marker, new Date().toISOString());
  return extraLib;
}

/** Downloads and unpacks the distribution once (and the jars it lacks). */
async function ensureDebeziumServer(): Promise<Installation> {
  const root = join(stackConfig().cacheDir, `debezium-server-${DEBEZIUM_VERSION}`);
  const home = join(root, 'app', 'debezium-server');
  const marker = join(root, 'app', '.complete');
  const extraLib = ensureExtraLib(root);
  if (existsSync(marker)) return { home, extraLib };
  const distDir = join(root, 'dist');
  mkdirSync(distDir, { recursive: true });
  mkdirSync(join(root, 'app'), { recursive: true });
  const archive = join(distDir, `debezium-server-dist-${DEBEZIUM_VERSION}.tar.gz`);
  // Copied again until unpacked (overwriting a copy an interrupted run may have left half-written);
  // Maven downloads it into its local repository once, checksums verified.
  log(`fetching ${DIST_ARTIFACT} with Maven`);
  const mvnArgs = [
    '-B',
    '-q',
    '--strict-checksums',
    `${DEPENDENCY_PLUGIN}:copy`,
    `-Dartifact=${DIST_ARTIFACT}`,
    `-DoutputDirectory=${distDir}`,
    '-Dmdep.overWriteReleases=true',
  ];
  const mvn = spawnSync('mvn', mvnArgs, { encoding: 'utf8' });
  if (mvn.status !== 0)
    throw new Error(`mvn dependency:copy ${DIST_ARTIFACT} failed:\n${(mvn.stdout + mvn.stderr).split('\n').slice(-15).join('\n')}`);
  const untar = spawnSync('tar', ['xzf', archive, '-C', join(root, 'app')], { encoding: 'utf8' });
  if (untar.status !== 0) throw new Error(`unpacking ${archive} failed: ${untar.stderr}`);
  writeFileSync(marker, new Date().toISOString());
  return { home, extraLib };
}

/** A running Debezium Server: its JVM (spawned directly, so the PID is the JVM's) and its log. */
interface Server {
  child: ChildProcess;
  output(): string;
  /** Resolves with the wall-clock time the first line containing `needle` was seen. */
  waitFor(needle: string, timeoutMs: number): Promise<number>;
  stop(): Promise<void>;
}

function startServer({ home, extraLib }: Installation, java: string, workDir: string): Server {
  // The classpath run.sh builds (the runner jar, config/lib, lib/*), plus Avro for the Apicurio
  // converter. config/application.properties is read from the working directory, so each run gets
  // its own folder.
  const extra = FORMAT === 'avro-confluent' ? CONFLUENT_JARS.map((jar) => join(home, jar)) : [join(extraLib, '*')];
  const classpath = [
    join(home, `debezium-server-dist-${DEBEZIUM_VERSION}-runner.jar`),
    join(home, 'config', 'lib'),
    join(home, 'lib', '*'),
    ...extra,
  ].join(':');
  // Quarkus's jboss-threads needs java.lang opened on Java 24+ (only Java 17 and 25 are installed
  // here, and Debezium 3.6 needs 21+).
  const child = spawn(java, ['--add-opens', 'java.base/java.lang=ALL-UNNAMED', ...JAVA_OPTS, '-cp', classpath, 'io.debezium.server.Main'], {
    cwd: workDir,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const logFile = createWriteStream(join(workDir, 'debezium.log'));
  let text = '';
  const watchers: { needle: string; resolve: (t: number) => void }[] = [];
  const onData = (d: Buffer) => {
    const now = Date.now();
    const s = d.toString();
    logFile.write(s);
    text += s;
    if (text.length > 2_000_000) text = text.slice(-1_000_000);
    for (const w of [...watchers]) {
      if (s.includes(w.needle) || text.includes(w.needle)) {
        watchers.splice(watchers.indexOf(w), 1);
        w.resolve(now);
      }
    }
  };
  child.stdout!.on('data', onData);
  child.stderr!.on('data', onData);
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  return {
    child,
    output: () => text,
    waitFor(needle, timeoutMs) {
      if (text.includes(needle)) return Promise.resolve(Date.now());
      return new Promise<number>((resolve, reject) => {
        const timer = setTimeout(
          () => reject(new Error(`no "${needle}" from Debezium Server within ${timeoutMs} ms:\n${text.slice(-4000)}`)),
          timeoutMs,
        );
        child.once('exit', (code) => {
          clearTimeout(timer);
          reject(new Error(`Debezium Server exited (${code}) before "${needle}":\n${text.slice(-6000)}`));
        });
        watchers.push({
          needle,
          resolve: (t) => {
            clearTimeout(timer);
            resolve(t);
          },
        });
      });
    },
    async stop() {
      if (child.exitCode === null && child.signalCode === null) {
        child.kill('SIGTERM');
        const timedOut = await Promise.race([exited.then(() => false), sleep(30_000).then(() => true)]);
        if (timedOut) {
          child.kill('SIGKILL');
          await exited;
        }
      }
      logFile.end();
    },
  };
}

function properties(p: Record<string, string | number | boolean>): string {
  return `${Object.entries(p)
    .map(([k, v]) => `${k}=${v}`)
    .join('\n')}\n`;
}

async function main(): Promise<void> {
  const installation = await ensureDebeziumServer();
  const java = findJava(21);
  const db = await createTestDatabase('source', 'benchdbz');
  const prefix = uniqueName('dbz');
  const slot = uniqueName('dbz');
  const publication = `${slot}_pub`;
  const topic = `${prefix}.public.bench_tp`;
  const workDir = mkdtempSync(join(tmpdir(), 'parity-debezium-'));
  const kafka = createKafka(KAFKA_BROKERS, { clientId: 'bench-debezium' });
  const admin = kafka.admin();
  const c = new pg.Client({ connectionString: db.url });
  await c.connect();
  let server: Server | null = null;
  try {
    await c.query(`CREATE TABLE public.bench_tp (${BENCH_TP_COLUMNS})`);
    await admin.createTopics({
      topics: [topic],
      partitions: 3,
      replicas: -1,
      configs: [{ name: 'message.timestamp.type', value: 'LogAppendTime' }],
    });
    await admin.metadata({ topics: [topic], forceUpdate: true });
    await c.query(`CREATE PUBLICATION ${pg.escapeIdentifier(publication)} FOR TABLE public.bench_tp`);
    await c.query(`SELECT pg_create_logical_replication_slot($1, 'pgoutput')`, [slot]);

    // The backlog of test/bench/cdc.ts.
    const { total } = await writeBacklog(c, { changes: CHANGES, batch: BATCH, bigTx: BIG_TX, log });

    const source = new URL(db.url);
    const registryV3 = STACK.PARITY_REGISTRY_URL.replace(/\/apis\/ccompat\/v\d+$/, '/apis/registry/v3');
    const format: Record<string, string | boolean> =
      FORMAT === 'avro-confluent'
        ? {
            // Without apicurio.registry.url Debezium picks io.confluent.connect.avro.AvroConverter.
            'debezium.format.key': 'avro',
            'debezium.format.value': 'avro',
            'debezium.format.key.schema.registry.url': STACK.PARITY_REGISTRY_URL,
            'debezium.format.value.schema.registry.url': STACK.PARITY_REGISTRY_URL,
          }
        : FORMAT === 'avro'
          ? {
              'debezium.format.key': 'avro',
              'debezium.format.value': 'avro',
              // With apicurio.registry.url set, Debezium picks io.apicurio.registry.utils.converter.AvroConverter.
              'debezium.format.key.apicurio.registry.url': registryV3,
              'debezium.format.key.apicurio.registry.auto-register': true,
              'debezium.format.key.apicurio.registry.find-latest': true,
              'debezium.format.value.apicurio.registry.url': registryV3,
              'debezium.format.value.apicurio.registry.auto-register': true,
              'debezium.format.value.apicurio.registry.find-latest': true,
            }
          : {
              'debezium.format.key': 'json',
              'debezium.format.value': 'json',
              'debezium.format.key.schemas.enable': false,
              'debezium.format.value.schemas.enable': false,
            };
    const serializer = `org.apache.kafka.common.serialization.${FORMAT === 'json' ? 'StringSerializer' : 'ByteArraySerializer'}`;
    mkdirSync(join(workDir, 'config'));
    mkdirSync(join(workDir, 'data'));
    writeFileSync(
      join(workDir, 'config', 'application.properties'),
      properties({
        'debezium.sink.type': 'kafka',
        'debezium.sink.kafka.producer.bootstrap.servers': KAFKA_BROKERS.join(','),
        // The Avro converter hands the sink byte[], the JSON converter String.
        'debezium.sink.kafka.producer.key.serializer': serializer,
        'debezium.sink.kafka.producer.value.serializer': serializer,
        'debezium.sink.kafka.producer.acks': 'all',
        'debezium.sink.kafka.producer.enable.idempotence': true,
        'debezium.source.connector.class': 'io.debezium.connector.postgresql.PostgresConnector',
        'debezium.source.offset.storage.file.filename': join(workDir, 'data', 'offsets.dat'),
        'debezium.source.database.hostname': source.hostname,
        'debezium.source.database.port': source.port,
        'debezium.source.database.user': decodeURIComponent(source.username),
        'debezium.source.database.password': decodeURIComponent(source.password),
        'debezium.source.database.dbname': db.name,
        'debezium.source.topic.prefix': prefix,
        'debezium.source.table.include.list': 'public.bench_tp',
        'debezium.source.plugin.name': 'pgoutput',
        'debezium.source.slot.name': slot,
        'debezium.source.publication.name': publication,
        'debezium.source.publication.autocreate.mode': 'disabled',
        'debezium.source.snapshot.mode': 'no_data',
        ...format,
        ...(MAX_BATCH_SIZE
          ? { 'debezium.source.max.batch.size': MAX_BATCH_SIZE, 'debezium.source.max.queue.size': 4 * MAX_BATCH_SIZE }
          : {}),
        'quarkus.http.port': 0,
        'quarkus.log.level': 'INFO',
      }),
    );

    log(`starting Debezium Server ${DEBEZIUM_VERSION} (${java}${JAVA_OPTS.length ? ` ${JAVA_OPTS.join(' ')}` : ''}), work dir ${workDir}`);
    const tStart = Date.now();
    server = startServer(installation, java, workDir);
    const pid = server.child.pid!;
    const t0 = await server.waitFor('Starting streaming', 300_000);
    const cpuBefore = cpuSeconds(pid);
    const loadBefore = loadAverage();
    log(`streaming started ${((t0 - tStart) / 1000).toFixed(1)} s after launch (JVM CPU so far ${cpuBefore.toFixed(1)} s)`);
    let inKafka = 0;
    let peakRss = 0;
    let tDone = 0;
    let lastLog = Date.now();
    while (inKafka < total) {
      await sleep(100);
      const offsets = await topicOffsets(kafka, topic);
      inKafka = offsets.reduce((sum, o) => sum + Number(o.high), 0);
      if (server.child.exitCode !== null || !existsSync(`/proc/${pid}`))
        throw new Error(`Debezium Server exited:\n${server.output().slice(-6000)}`);
      peakRss = Math.max(peakRss, rssOf(pid).rss);
      tDone = Date.now();
      if (tDone - t0 > 900_000) throw new Error(`backlog not drained after 15 min (${inKafka}/${total})`);
      if (tDone - lastLog > 10_000) {
        lastLog = tDone;
        log(`${inKafka}/${total} in Kafka after ${((tDone - t0) / 1000).toFixed(0)} s, RSS ${rssOf(pid).rss.toFixed(0)} MB`);
      }
    }
    const drainSeconds = (tDone - t0) / 1000;
    const drainCpu = cpuSeconds(pid) - cpuBefore;
    const loadAfter = loadAverage();
    const { hwm } = rssOf(pid);
    peakRss = Math.max(peakRss, hwm);
    const eventsPerS = total / drainSeconds;
    log(
      `drained ${inKafka} events in ${drainSeconds.toFixed(1)} s: ${Math.round(eventsPerS)} events/s, Debezium CPU ${drainCpu.toFixed(1)} s (${Math.round(total / drainCpu)} events per CPU-second), load ${loadBefore[0]} -> ${loadAfter[0]}, peak RSS ${peakRss.toFixed(0)} MB`,
    );
    if (inKafka !== total) log(`note: ${inKafka} messages in Kafka for ${total} changes`);

    await server.stop();
    server = null;

    const result = {
      debezium_version: DEBEZIUM_VERSION,
      debezium_events_per_s: Math.round(eventsPerS),
      debezium_cpu_seconds: Math.round(drainCpu * 10) / 10,
      debezium_events_per_cpu_s: Math.round(total / drainCpu),
      debezium_peak_rss_mb: Math.round(peakRss),
      format: {
        avro: 'avro (Apicurio converter, registry v3 API)',
        'avro-confluent': 'avro (Confluent converter 7.0.16, registry ccompat API)',
        json: 'json (no schemas)',
      }[FORMAT],
      backlog_changes: total,
      big_tx_rows: BIG_TX,
      messages_in_kafka: inKafka,
      drain_seconds: Math.round(drainSeconds * 10) / 10,
      startup_seconds: Math.round((t0 - tStart) / 100) / 10,
      load_average_during_drain: [loadBefore[0], loadAfter[0]],
      java: java,
      java_opts: JAVA_OPTS.join(' '),
      max_batch_size: MAX_BATCH_SIZE ?? 2048,
      partitions: 3,
    };
    process.stdout.write(`${JSON.stringify(result)}\n`);
  } finally {
    if (server) await server.stop();
    await c
      .query('SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE slot_name = $1', [slot])
      .catch((err: unknown) => log(`dropping slot ${slot}: ${String(err)}`));
    await c
      .query(`DROP PUBLICATION IF EXISTS ${pg.escapeIdentifier(publication)}`)
      .catch((err: unknown) => log(`dropping publication ${publication}: ${String(err)}`));
    await c.end().catch(() => undefined);
    await admin.deleteTopics({ topics: [topic] }).catch(() => undefined);
    await admin.close().catch(() => undefined);
    if (!values.keep) rmSync(workDir, { recursive: true, force: true });
    await db.drop();
  }
}

main().then(
  () => process.exit(0),
  (err: unknown) => {
    process.stderr.write(`[bench:debezium] failed: ${err instanceof Error ? err.stack : String(err)}\n`);
    process.exit(1);
  },
);
