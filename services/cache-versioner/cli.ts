/**
 * `parity cache run | cutover | inspect`. Each command validates its options and the spec first; bad
 * input exits 2 before anything is touched.
 */
import type { Redis } from 'ioredis';
import { createKafkaForSpec, createPgPool, createRedis, createSchemaRegistry } from '../core/clients.js';
import { registryFetch } from '../core/registry-http.js';
import { ParityError } from '../core/errors.js';
import { resolveStatusPort, specStatusPort, startStatusServerOn } from '../core/http.js';
import { createLogger, type Logger } from '../core/log.js';
import { createMetricsRegistry } from '../core/metrics.js';
import { controlDatabase, loadSpec, targetDatabase, type Spec } from '../core/spec.js';
import { createChangeDecoder } from '../../connectors/kafka-sink/serde.js';
import { consumerReadiness } from '../../connectors/kafka-sink/consumer-loop.js';
import { parseOptions, required, intOption } from '../core/options.js';
import { deadLetterTopic } from '../core/topics.js';
import { createCacheVersioner } from './consumer.js';
import { inspectCache } from './inspector.js';
import { cacheKeys } from './keys.js';
import { estimateRemaining } from './remaining.js';
import { withScripts } from './scripts.js';
import { cacheSettings } from './settings.js';
import { cutover, ensureConfig, readConfig } from './version-config.js';

const RUN_USAGE =
  'parity cache run --spec FILE [--group ID] [--topic TOPIC] [--from-latest] [--concurrency N] [--status-port PORT] [--dead-letter-topic TOPIC]';
const CUTOVER_USAGE = 'parity cache cutover --spec FILE --to vN [--populate vN[,vM...]] [--force] [--json]';
const INSPECT_USAGE = 'parity cache inspect --spec FILE [--sample N] [--grace-ms MS] [--version vN] [--no-evidence] [--json]';

/** Redis for a command: fail fast while it is down (the callers retry), log its errors once each. */
function commandRedis(url: Parameters<typeof createRedis>[0], logger: Logger): Redis {
  const redis = createRedis(url, { commandTimeout: 5000, maxRetriesPerRequest: 1 });
  let last = '';
  redis.on('error', (err: Error) => {
    if (err.message !== last) logger.warn({ err: err.message }, 'Redis connection error');
    last = err.message;
  });
  redis.on('ready', () => {
    last = '';
  });
  return redis;
}

function defaultDeadLetterTopic(spec: Spec): string {
  return deadLetterTopic(spec.cdc.topicPrefix, 'cache', spec.name);
}

/** `parity cache run`: consume the change events and keep the versioned entries fresh until SIGINT/SIGTERM. */
export async function cacheRunCommand(argv: string[]): Promise<number> {
  const { values } = parseOptions(
    argv,
    {
      spec: { type: 'string' },
      group: { type: 'string' },
      topic: { type: 'string' },
      'from-latest': { type: 'boolean' },
      concurrency: { type: 'string' },
      'status-port': { type: 'string' },
      'dead-letter-topic': { type: 'string' },
    },
    RUN_USAGE,
  );
  const { spec } = loadSpec(required(values.spec, '--spec', RUN_USAGE));
  const settings = cacheSettings(spec, values.topic);
  const concurrency = intOption(values.concurrency, '--concurrency', RUN_USAGE, 0) ?? spec.cdc.partitions;
  // Status server: --status-port > PARITY_STATUS_PORT > spec > 9403 (see services/core/http.ts).
  const statusPort = resolveStatusPort('cache', {
    flag: values['status-port'],
    specPort: specStatusPort(spec, 'cache'),
    usage: RUN_USAGE,
  }).port;
  const logger = createLogger({ name: 'cache-versioner' });
  const registry = createMetricsRegistry({ service: 'cache-versioner' });
  const redis = commandRedis(spec.infra.redis, logger);
  const kafka = createKafkaForSpec(spec.infra.kafka, { clientId: `parity-cache-${spec.name}`, logger });
  const versioner = createCacheVersioner({
    kafka,
    redis,
    decoder: createChangeDecoder(createSchemaRegistry(spec.infra.registry), {
      registryUrl: spec.infra.registry.url,
      registryFetch: registryFetch(spec.infra.registry),
    }),
    settings,
    registry,
    logger,
    ...(values.group ? { groupId: values.group } : {}),
    fromBeginning: !values['from-latest'],
    partitionsConsumedConcurrently: Math.max(1, concurrency),
    deadLetterTopic: values['dead-letter-topic'] ?? defaultDeadLetterTopic(spec),
  });
  const server = await startStatusServerOn(
    {
      registry,
      port: statusPort,
      health: () => versioner.health(),
      // Consuming and at most status.readyMaxLagMessages.cache behind; paused or lagging is not ready.
      ready: () => consumerReadiness(versioner.health(), versioner.lag(), spec.status.readyMaxLagMessages.cache),
      live: () => ({ ok: versioner.status().state !== 'failed', status: versioner.status().state }),
    },
    { flag: '--status-port' },
  );
  logger.info({ status: server.url }, 'status server listening');
  const stop = () => void versioner.stop();
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
  try {
    await versioner.start();
    await versioner.done;
    return 0;
  } finally {
    process.off('SIGINT', stop);
    process.off('SIGTERM', stop);
    await versioner.stop().catch(() => undefined);
    await server.close();
    redis.disconnect();
  }
}

/** `parity cache cutover`: switch the read and populated versions (atomic, audited) and report what the old versions still hold. */
export async function cacheCutoverCommand(argv: string[]): Promise<number> {
  const { values } = parseOptions(
    argv,
    // The report on stdout is always JSON (the summary line goes to stderr); --json is accepted like on every reporting command.
    {
      spec: { type: 'string' },
      to: { type: 'string' },
      populate: { type: 'string' },
      force: { type: 'boolean' },
      json: { type: 'boolean' },
    },
    CUTOVER_USAGE,
  );
  const { spec } = loadSpec(required(values.spec, '--spec', CUTOVER_USAGE));
  const to = required(values.to, '--to', CUTOVER_USAGE);
  const settings = cacheSettings(spec);
  const populate = values.populate
    ? values.populate
        .split(',')
        .map((v) => v.trim())
        .filter(Boolean)
    : [to];
  const logger = createLogger({ name: 'cache-cutover' });
  const redis = withScripts(commandRedis(spec.infra.redis, logger));
  const keys = cacheKeys(settings.migration);
  try {
    // The first run of `cache run` creates the config; a cutover before it starts from the spec's.
    await ensureConfig(redis, keys, settings, Date.now());
    const result = await cutover(redis, keys, settings, { to, populate, force: values.force === true, now: Date.now() });
    const after = await readConfig(redis, keys);
    const dropped = result.previous.populate.filter((v) => !populate.includes(v));
    const remaining = await estimateRemaining(redis, keys, [...settings.templates.keys()], Date.now(), settings.maxEntryLifetimeMs);
    const report = {
      migration: settings.migration,
      generation: result.generation,
      previous: result.previous,
      current: { read: after?.read ?? to, populate: after?.populate ?? populate },
      forced: values.force === true,
      stoppedPopulating: dropped,
      remaining,
      note: 'remaining = distinct keys written within one entry lifetime (HyperLogLog estimate, an upper bound); old keys are never deleted, they expire by TTL',
    };
    process.stdout.write(`${JSON.stringify(report, null, 2)}\n`);
    const olds = remaining.filter((r) => dropped.includes(r.version)).map((r) => `${r.version} ~${r.estimate}`);
    process.stderr.write(
      `cache cutover: read ${to}, populate ${populate.join(',')} (generation ${result.generation})${olds.length ? `; old keys remaining: ${olds.join(', ')}` : ''}\n`,
    );
    return 0;
  } finally {
    redis.disconnect();
  }
}

/** `parity cache inspect`: compare sampled entries with the database; exit 0 when none is stale, 1 otherwise. */
export async function cacheInspectCommand(argv: string[]): Promise<number> {
  const { values } = parseOptions(
    argv,
    {
      spec: { type: 'string' },
      sample: { type: 'string' },
      'grace-ms': { type: 'string' },
      version: { type: 'string', multiple: true },
      'no-evidence': { type: 'boolean' },
      // The report on stdout is always JSON (the summary line goes to stderr); --json is accepted like on every reporting command.
      json: { type: 'boolean' },
    },
    INSPECT_USAGE,
  );
  const { spec } = loadSpec(required(values.spec, '--spec', INSPECT_USAGE));
  const settings = cacheSettings(spec);
  const sample = intOption(values.sample, '--sample', INSPECT_USAGE, 0) ?? 100;
  const graceMs = intOption(values['grace-ms'], '--grace-ms', INSPECT_USAGE, 0) ?? spec.reconcile.retryWindowMs;
  const versions = values.version?.flatMap((v) => v.split(',')).filter(Boolean);
  for (const v of versions ?? []) {
    if (!settings.templates.has(v))
      throw new ParityError(
        'PARITY_BAD_INPUT',
        `--version ${v}: no such cache version (known: ${[...settings.templates.keys()].join(', ')})`,
        { hint: `usage: ${INSPECT_USAGE}` },
      );
  }
  const logger = createLogger({ name: 'cache-inspect' });
  const redis = commandRedis(spec.infra.redis, logger);
  const pool = createPgPool(targetDatabase(spec), { applicationName: 'parity-cache-inspect', max: 2 });
  const slotPool =
    spec.source.database === targetDatabase(spec)
      ? pool
      : createPgPool(spec.source.database, { applicationName: 'parity-cache-inspect', max: 1 });
  const controlUrl = controlDatabase(spec);
  const controlPool = values['no-evidence']
    ? null
    : controlUrl === targetDatabase(spec)
      ? pool
      : createPgPool(controlUrl, { applicationName: 'parity-cache-inspect', max: 1 });
  try {
    const report = await inspectCache({
      redis,
      pool,
      slotPool,
      controlPool,
      controlSchema: spec.control.schema,
      settings,
      slot: spec.cdc.slot,
      sample,
      graceMs,
      ...(versions ? { versions } : {}),
      registry: createMetricsRegistry({ defaultMetrics: false }),
      logger,
    });
    process.stdout.write(`${JSON.stringify(report, null, 2)}\n`);
    process.stderr.write(
      `cache inspect: ${report.stale} stale of ${report.sampled} sampled (${report.inFlight} in flight)${report.passed ? '' : ' - FAILED'}\n`,
    );
    return report.passed ? 0 : 1;
  } finally {
    redis.disconnect();
    const pools = new Set([pool, slotPool, controlPool].filter((p): p is NonNullable<typeof p> => p !== null));
    for (const p of pools) await p.end();
  }
}
