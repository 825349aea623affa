/**
 * `parity verify`, `parity reconcile`, `parity report` and `parity gate contract`: option parsing,
 * client wiring and printing. The work itself lives in verify.ts, stream-reconcile.ts, repair.ts,
 * report.ts and contract-gate.ts.
 */
import { writeFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { parseOptions, required, intOption } from '../core/options.js';
import { ParityError } from '../core/errors.js';
import { linger, resolveStatusPort, specStatusPort, startStatusServerOn, statusLingerMs, type StatusServer } from '../core/http.js';
import { createLogger } from '../core/log.js';
import { createMetricsRegistry } from '../core/metrics.js';
import { redact } from '../core/secrets.js';
import { controlDatabase, loadSpec, targetDatabase } from '../core/spec.js';
import { evaluateContractGate, formatGate } from './contract-gate.js';
import { ensureReconcilerTables } from './control-store.js';
import { postgresDialect } from './dialect.js';
import { reconcilerMetrics } from './metrics.js';
import { createProgress } from './progress.js';
import { buildProjection } from './projection.js';
import { repairRun, type RepairSummary } from './repair.js';
import { buildReport } from './report.js';
import { REPORT_FORMATS, renderReport, type ReportFormat } from './report-render.js';
import { connectPg, openReadSession, openWriteSession } from './snapshot.js';
import { DEFAULT_VERIFY_OPTIONS, runVerify, type VerifyResult } from './verify.js';

function fenceToken(value: string | undefined, usage: string): bigint | null {
  if (value === undefined) return null;
  if (!/^\d+$/.test(value))
    throw new ParityError('PARITY_BAD_INPUT', `--fence-token must be a positive integer, got ${JSON.stringify(value)}`, {
      hint: `usage: ${usage}`,
    });
  return BigInt(value);
}

function summarize(r: VerifyResult, joined: boolean): string {
  const lines = [
    `verify ${r.migration}: run ${r.runId}${joined ? ' (joined an unfinished run)' : ''}`,
    `  rows: source ${r.sourceRows}, target ${r.targetRows}, ${r.segments} segments`,
    `  confirmed drift: ${r.confirmedDrift} rows (updated ${r.updated}, only in source ${r.exclusiveSource}, only in target ${r.exclusiveTarget})`,
    `  in flight: ${r.inFlight} rows${r.unsettledKeys > 0 ? ` (in flight (unsettled): ${r.unsettledKeys} keys never stayed unchanged for reconcile.settleMs; not drift)` : ''}; resolved on recheck: ${r.resolved} keys`,
    `  snapshot positions: source ${r.minSourcePosition ?? '-'}..${r.maxSourcePosition ?? '-'}, target ${r.minTargetPosition ?? '-'}..${r.maxTargetPosition ?? '-'}`,
    `  verdict: ${r.verdict}`,
  ];
  return `${lines.join('\n')}\n`;
}

function summarizeRepairs(s: RepairSummary, apply: boolean): string {
  const parts = Object.entries(s.outcomes)
    .filter(([, n]) => n > 0)
    .map(([k, n]) => `${k} ${n}`);
  const head = apply ? `repair: ${s.planned} keys` : `repair (dry run; pass --repair to write): ${s.planned} keys`;
  const token = s.token
    ? `; fencing token ${s.token}${s.tokenAcquired ? ' (acquired now: no --fence-token was given, so the previous holder is fenced out)' : ''}`
    : '';
  return `${head}${parts.length ? ` (${parts.join(', ')})` : ''}${token}\n`;
}

const VERIFY_USAGE =
  'parity verify --spec FILE [--jobs N] [--repair [--fence-token N]] [--dry-run] [--new-run] [--recheck-wait-ms N] [--max-rechecks N] [--segment-pause-ms N] [--status-port N] [--json]';

/** `parity verify`: batch verification, optionally followed by repair of the confirmed drift. */
export async function verifyCommand(argv: string[]): Promise<number> {
  const { values } = parseOptions(
    argv,
    {
      spec: { type: 'string' },
      jobs: { type: 'string' },
      repair: { type: 'boolean' },
      'dry-run': { type: 'boolean' },
      'fence-token': { type: 'string' },
      'new-run': { type: 'boolean' },
      'recheck-wait-ms': { type: 'string' },
      'max-rechecks': { type: 'string' },
      'segment-pause-ms': { type: 'string' },
      'status-port': { type: 'string' },
      json: { type: 'boolean' },
    },
    VERIFY_USAGE,
  );
  const loaded = loadSpec(required(values.spec, '--spec', VERIFY_USAGE));
  const { spec } = loaded;
  if (values.repair && values['dry-run'])
    throw new ParityError('PARITY_BAD_INPUT', '--repair and --dry-run contradict each other', { hint: `usage: ${VERIFY_USAGE}` });
  const token = fenceToken(values['fence-token'], VERIFY_USAGE);
  const apply = values['dry-run'] ? false : (values.repair ?? spec.reconcile.repair);
  if (token !== null && !apply)
    throw new ParityError('PARITY_BAD_INPUT', '--fence-token only matters with --repair', { hint: `usage: ${VERIFY_USAGE}` });

  const logger = createLogger({ name: 'parity-verify' });
  const registry = createMetricsRegistry({ service: 'verify' });
  // Status server while verifying: --status-port > PARITY_STATUS_PORT > spec > 9405; several verify
  // processes on one host (a shared run) each fall back to a free port.
  const statusPort = resolveStatusPort('verify', {
    flag: values['status-port'],
    specPort: specStatusPort(spec, 'verify'),
    usage: VERIFY_USAGE,
  }).port;
  const lingerMs = statusLingerMs();
  const server: StatusServer = await startStatusServerOn(
    { registry, port: statusPort, health: () => ({ ok: true, status: 'verifying' }), ready: () => ({ ok: true, status: 'verifying' }) },
    {
      flag: '--status-port',
      fallback: true,
      onFallback: (port) =>
        logger.warn({ port }, 'status port taken (another verify process on this host?); serving on a free port instead'),
    },
  );
  logger.info({ metrics: `${server.url}/metrics` }, 'status server listening');
  try {
    const options = {
      ...DEFAULT_VERIFY_OPTIONS,
      jobs: intOption(values.jobs, '--jobs', VERIFY_USAGE) ?? spec.reconcile.jobs,
      newRun: values['new-run'] ?? false,
      recheckWaitMs: intOption(values['recheck-wait-ms'], '--recheck-wait-ms', VERIFY_USAGE, 0) ?? null,
      maxRechecks: intOption(values['max-rechecks'], '--max-rechecks', VERIFY_USAGE) ?? DEFAULT_VERIFY_OPTIONS.maxRechecks,
      segmentPauseMs: intOption(values['segment-pause-ms'], '--segment-pause-ms', VERIFY_USAGE, 0) ?? 0,
    };
    const progress = createProgress({ stream: process.stderr, logger });
    const outcome = await runVerify(loaded, options, { logger, registry, progress });
    const r = outcome.result;
    let repairs: RepairSummary | null = null;
    if (r.confirmedKeys > 0 && (apply || values['dry-run'] || values.repair !== undefined || spec.reconcile.repair)) {
      repairs = await runRepairs(loaded.spec, r.runId, apply, token, logger, registry);
    }
    if (values.json) process.stdout.write(`${redact(JSON.stringify({ ...r, repairs }, null, 2))}\n`);
    else {
      process.stdout.write(summarize(r, outcome.joined));
      if (repairs) process.stdout.write(summarizeRepairs(repairs, apply));
    }
    return r.passed ? 0 : 1;
  } finally {
    if (lingerMs > 0)
      logger.info(
        { seconds: lingerMs / 1000 },
        'verification done; status server stays up for the last scrape (PARITY_STATUS_LINGER_SECONDS)',
      );
    await linger(lingerMs);
    await server.close();
  }
}

async function runRepairs(
  spec: ReturnType<typeof loadSpec>['spec'],
  runId: number,
  apply: boolean,
  token: bigint | null,
  logger: ReturnType<typeof createLogger>,
  registry: ReturnType<typeof createMetricsRegistry>,
): Promise<RepairSummary> {
  const dialect = postgresDialect;
  const app = `parity-repair ${spec.name}`;
  const source = await openReadSession(connectPg, spec.source.database, dialect, app);
  const target = await openWriteSession(connectPg, targetDatabase(spec), dialect, app);
  const control = await openWriteSession(connectPg, controlDatabase(spec), dialect, app);
  const kill = await killSwitchReader(spec, logger);
  try {
    const projection = await buildProjection(spec, source, target, dialect);
    return await repairRun(
      {
        spec,
        projection,
        source,
        target,
        control,
        controlIsTarget: controlDatabase(spec) === targetDatabase(spec),
        logger,
        metrics: reconcilerMetrics(registry),
        killSwitch: kill.read,
      },
      runId,
      { apply, token },
      `parity verify --repair@${hostname()}:${process.pid}`,
    );
  } finally {
    await kill.close();
    await Promise.all([source.end(), target.end(), control.end()].map((p) => p.catch(() => undefined)));
  }
}

/**
 * The coordinator's kill-repair flag, through the cached flags client (a Redis outage keeps the last value).
 * The Redis client and the flags reader load here, not at start-up: `parity verify` without repair never needs them.
 */
async function killSwitchReader(
  spec: ReturnType<typeof loadSpec>['spec'],
  logger: ReturnType<typeof createLogger>,
): Promise<{ read: () => Promise<boolean>; close: () => Promise<void> }> {
  const [{ createRedis }, { createFlagsReader }] = await Promise.all([
    import('../core/clients.js'),
    import('../coordinator/flags-reader.js'),
  ]);
  const redis = createRedis(spec.infra.redis, { maxRetriesPerRequest: 1, enableOfflineQueue: false });
  const flags = createFlagsReader({ redis, migration: spec.name, logger });
  return {
    read: async () => (await flags.get()).killRepair,
    close: async () => {
      await flags.close().catch(() => undefined);
      redis.disconnect();
    },
  };
}

const REPORT_USAGE = 'parity report --spec FILE [--format json|md|html] [--run ID] [--out FILE]';

/** `parity report`: the latest (or a given) finished verification run, rendered. */
export async function reportCommand(argv: string[]): Promise<number> {
  const { values } = parseOptions(
    argv,
    { spec: { type: 'string' }, format: { type: 'string' }, run: { type: 'string' }, out: { type: 'string' } },
    REPORT_USAGE,
  );
  const loaded = loadSpec(required(values.spec, '--spec', REPORT_USAGE));
  const format = (values.format ?? 'json') as ReportFormat;
  if (!REPORT_FORMATS.includes(format)) {
    throw new ParityError(
      'PARITY_BAD_INPUT',
      `--format must be one of ${REPORT_FORMATS.join(', ')}, got ${JSON.stringify(values.format)}`,
      { hint: `usage: ${REPORT_USAGE}` },
    );
  }
  const runId = intOption(values.run, '--run', REPORT_USAGE);
  const control = await openWriteSession(connectPg, controlDatabase(loaded.spec), postgresDialect, `parity-report ${loaded.spec.name}`);
  try {
    const text = renderReport(await buildReport(control, loaded, runId), format);
    if (values.out) {
      try {
        writeFileSync(values.out, text);
      } catch (err) {
        throw new ParityError('PARITY_BAD_INPUT', `cannot write ${values.out}: ${(err as Error).message}`);
      }
    } else process.stdout.write(text);
    return 0;
  } finally {
    await control.end().catch(() => undefined);
  }
}

const GATE_USAGE = 'parity gate contract --spec FILE [--json]';

/** `parity gate contract`: exit 0 only when every contract criterion holds. */
export async function gateContractCommand(argv: string[]): Promise<number> {
  const { values } = parseOptions(argv, { spec: { type: 'string' }, json: { type: 'boolean' } }, GATE_USAGE);
  const loaded = loadSpec(required(values.spec, '--spec', GATE_USAGE));
  const { spec } = loaded;
  const app = `parity-gate ${spec.name}`;
  const control = await openWriteSession(connectPg, controlDatabase(spec), postgresDialect, app);
  const source = await connectPg(spec.source.database, app);
  try {
    const result = await evaluateContractGate(loaded, { control, source });
    process.stdout.write(values.json ? `${redact(JSON.stringify(result, null, 2))}\n` : redact(formatGate(result)));
    return result.passed ? 0 : 1;
  } finally {
    await Promise.all([control.end(), source.end()].map((p) => p.catch(() => undefined)));
  }
}

const RECONCILE_USAGE =
  'parity reconcile --spec FILE [--group ID] [--from-latest] [--repair [--fence-token N]] [--status-port N] [--stop-after-idle-ms N]';

/** `parity reconcile`: stream verification until SIGINT/SIGTERM (or an idle period, if asked). */
export async function reconcileCommand(argv: string[]): Promise<number> {
  const { values } = parseOptions(
    argv,
    {
      spec: { type: 'string' },
      group: { type: 'string' },
      'from-latest': { type: 'boolean' },
      repair: { type: 'boolean' },
      'fence-token': { type: 'string' },
      'status-port': { type: 'string' },
      'stop-after-idle-ms': { type: 'string' },
    },
    RECONCILE_USAGE,
  );
  const loaded = loadSpec(required(values.spec, '--spec', RECONCILE_USAGE));
  const { spec } = loaded;
  const token = fenceToken(values['fence-token'], RECONCILE_USAGE);
  const apply = values.repair ?? spec.reconcile.repair;
  if (token !== null && !apply)
    throw new ParityError('PARITY_BAD_INPUT', '--fence-token only matters with --repair', { hint: `usage: ${RECONCILE_USAGE}` });
  const idleMs = intOption(values['stop-after-idle-ms'], '--stop-after-idle-ms', RECONCILE_USAGE);
  // The Kafka client, registry and decoders load only for this command: they are most of the module
  // load time, and the other commands of this file (verify above all) never use them.
  const [{ createStreamReconciler }, { createChangeDecoder }, { createKafkaForSpec, createSchemaRegistry }, { registryFetch }] =
    await Promise.all([
      import('./stream-reconcile.js'),
      import('../../connectors/kafka-sink/serde.js'),
      import('../core/clients.js'),
      import('../core/registry-http.js'),
    ]);
  // Status server: --status-port > PARITY_STATUS_PORT > spec > 9402 (see services/core/http.ts).
  const statusPort = resolveStatusPort('reconcile', {
    flag: values['status-port'],
    specPort: specStatusPort(spec, 'reconcile'),
    usage: RECONCILE_USAGE,
  }).port;
  const logger = createLogger({ name: 'parity-reconcile' });
  const registry = createMetricsRegistry({ service: 'reconcile' });
  const metrics = reconcilerMetrics(registry);
  const dialect = postgresDialect;
  const app = `parity-reconcile ${spec.name}`;
  const source = await openReadSession(connectPg, spec.source.database, dialect, app);
  const target = await openReadSession(connectPg, targetDatabase(spec), dialect, app);
  const control = await openWriteSession(connectPg, controlDatabase(spec), dialect, app);
  const repairTarget = apply ? await openWriteSession(connectPg, targetDatabase(spec), dialect, app) : undefined;
  // Its own session: the fence watch must not read inside a repair's transaction (core/fence-watch.ts).
  const fenceReader = apply ? await openReadSession(connectPg, targetDatabase(spec), dialect, `${app} fence`) : undefined;
  const kill = await killSwitchReader(spec, logger);
  let server: StatusServer | null = null;
  try {
    await ensureReconcilerTables(control, spec.control.schema);
    const projection = await buildProjection(spec, source, target, dialect);
    let lastActivity = performance.now();
    const reconciler = createStreamReconciler(
      {
        loaded,
        kafka: createKafkaForSpec(spec.infra.kafka, { clientId: 'parity-reconcile', logger }),
        decoder: createChangeDecoder(createSchemaRegistry(spec.infra.registry), {
          registryUrl: spec.infra.registry.url,
          registryFetch: registryFetch(spec.infra.registry),
        }),
        projection,
        source,
        target,
        control,
        ...(repairTarget ? { repairTarget, killSwitch: kill.read } : {}),
        ...(fenceReader ? { fenceReader } : {}),
        logger,
        metrics,
      },
      {
        groupId: values.group ?? `parity-reconcile.${spec.name}`,
        fromBeginning: !(values['from-latest'] ?? false),
        repair: apply ? { apply: true, token } : null,
        onChecked: () => (lastActivity = performance.now()),
      },
    );
    server = await startStatusServerOn(
      {
        registry,
        port: statusPort,
        health: () => reconciler.health(),
        // Consuming, not paused, at most status.readyMaxLagMessages.reconcile behind (see stream-reconcile.ts).
        ready: () => reconciler.readiness(spec.status.readyMaxLagMessages.reconcile),
        live: () => ({ ok: reconciler.status().state !== 'failed', status: reconciler.status().state }),
      },
      { flag: '--status-port' },
    );
    logger.info({ metrics: `${server.url}/metrics` }, 'status server listening');
    const stop = (): void => void reconciler.stop();
    process.once('SIGINT', stop);
    process.once('SIGTERM', stop);
    await reconciler.start();
    let idleTimer: NodeJS.Timeout | undefined;
    if (idleMs !== undefined) {
      idleTimer = setInterval(
        () => {
          if (performance.now() - lastActivity >= idleMs) stop();
        },
        Math.min(1000, idleMs),
      );
    }
    try {
      await reconciler.done;
    } finally {
      if (idleTimer) clearInterval(idleTimer);
    }
    const s = reconciler.status();
    process.stdout.write(
      `reconcile ${spec.name}: ${s.checked} changes checked, ${s.matched} matched, ${s.mismatches} mismatches, ${s.superseded} superseded, ${s.deadLetters} dead letters${apply ? `, ${s.repaired} repaired` : ''}\n`,
    );
    return s.mismatches === 0 && s.deadLetters === 0 ? 0 : 1;
  } finally {
    await server?.close();
    await kill.close();
    await Promise.all(
      [source.end(), target.end(), control.end(), repairTarget?.end(), fenceReader?.end()].map((p) => p?.catch(() => undefined)),
    );
  }
}
