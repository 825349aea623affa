/**
 * `parity cutover`, `parity rollback` and `parity reverse-sync run | status | check`. Reverse
 * verification is injected by the CLI wiring (services/cli/commands.ts): a service does not import
 * the reconciler.
 */
import type pg from 'pg';
import { createPgClient, createPgPool, createRedis } from '../core/clients.js';
import { ParityError } from '../core/errors.js';
import { createLogger, type Logger } from '../core/log.js';
import { type Lsn, formatLsn } from '../core/lsn.js';
import { type Registry, createMetricsRegistry } from '../core/metrics.js';
import { intOption, parseOptions, required } from '../core/options.js';
import { resolveStatusPort, specStatusPort } from '../core/http.js';
import { redact } from '../core/secrets.js';
import { type LoadedSpec, type Spec, controlDatabase, loadSpec } from '../core/spec.js';
import { slotLag } from '../../connectors/postgres-source/slot.js';
import { resolveActor } from '../coordinator/cli.js';
import { cutover, rollback } from './cutover.js';
import { assertWindowKind, newSideDatabase, reverseSlot } from './names.js';
import { ReverseSync } from './reverse-sync.js';
import type { OpenReverseStreamChecker } from './stream-check.js';
import { type VerifyReverse, checkWindow } from './window-evidence.js';
import { countUnrepresentable, readCohorts, readPosition, readStreamCounts, readWindow } from './window-store.js';

/** What the CLI wiring hands the reverse-sync commands. */
export interface ReverseCommandDeps {
  /** Reverse verification (the reconciler's verify, sides swapped), made for one spec. */
  verifyReverse: (loaded: LoadedSpec, deps: { logger: Logger; registry: Registry }) => VerifyReverse;
  /** The reverse stream check (the reconciler's stream check, sides swapped), made for one spec. */
  streamCheckReverse?: (loaded: LoadedSpec, deps: { logger: Logger }) => OpenReverseStreamChecker;
}

export type ReverseCommand = (argv: string[], deps: ReverseCommandDeps) => Promise<number>;

function json(value: unknown): string {
  return `${redact(JSON.stringify(value, (_k, v: unknown) => (typeof v === 'bigint' ? v.toString() : v), 2))}\n`;
}

/**
 * Pools on the old representation's database (the source), the control database and the new
 * representation's database (the reverse slot; the target for cross-database migrations), one pool
 * per distinct URL.
 */
async function withPools<T>(spec: Spec, name: string, fn: (db: pg.Pool, control: pg.Pool, newDb: pg.Pool) => Promise<T>): Promise<T> {
  const pools = new Map<string, pg.Pool>();
  const pool = (url: string, max: number): pg.Pool => {
    let p = pools.get(url);
    if (!p) pools.set(url, (p = createPgPool(url, { applicationName: name, max })));
    return p;
  };
  const db = pool(spec.source.database, 3);
  const control = pool(controlDatabase(spec), 2);
  const newDb = pool(newSideDatabase(spec), 3);
  try {
    return await fn(db, control, newDb);
  } finally {
    for (const p of pools.values()) await p.end().catch(() => undefined);
  }
}

const CUTOVER_USAGE = 'parity cutover --spec FILE [--cohort C] --reason TEXT [--actor NAME] [--json]';

/** `parity cutover`: opens the reverse window and moves the cohort's writes and reads to the new representation. */
export const cutoverCommand: ReverseCommand = async (argv) => {
  const { values } = parseOptions(
    argv,
    {
      spec: { type: 'string' },
      cohort: { type: 'string' },
      reason: { type: 'string' },
      actor: { type: 'string' },
      json: { type: 'boolean' },
    },
    CUTOVER_USAGE,
  );
  const { spec } = loadSpec(required(values.spec, '--spec', CUTOVER_USAGE));
  const reason = required(values.reason, '--reason', CUTOVER_USAGE);
  assertWindowKind(spec);
  const logger = createLogger({ name: 'parity-cutover', level: process.env.PARITY_LOG_LEVEL ?? 'warn' });
  const redis = createRedis(spec.infra.redis);
  try {
    const result = await withPools(spec, 'parity-cutover', (db, control, newDb) =>
      cutover(
        { spec, db, newDb, control, redis, logger },
        { ...(values.cohort ? { cohort: values.cohort } : {}), actor: resolveActor(values.actor), reason },
      ),
    );
    process.stdout.write(
      values.json
        ? json(result)
        : `${result.migration}${result.cohort ? ` (cohort ${result.cohort})` : ''}: cut over; writes and reads go to the new representation.\nreverse slot ${result.slot} captures every change from ${result.fromLsn}; run parity reverse-sync run --spec FILE to keep the old side current.\n`,
    );
    return 0;
  } finally {
    redis.disconnect();
  }
};

const ROLLBACK_USAGE = 'parity rollback --spec FILE [--cohort C] --reason TEXT [--actor NAME] [--flags-ttl-ms N] [--json]';

/** `parity rollback`: the cohort goes back to the old representation once reverse sync has applied everything up to the flip. */
export const rollbackCommand: ReverseCommand = async (argv) => {
  const { values } = parseOptions(
    argv,
    {
      spec: { type: 'string' },
      cohort: { type: 'string' },
      reason: { type: 'string' },
      actor: { type: 'string' },
      'flags-ttl-ms': { type: 'string' },
      json: { type: 'boolean' },
    },
    ROLLBACK_USAGE,
  );
  const { spec } = loadSpec(required(values.spec, '--spec', ROLLBACK_USAGE));
  const reason = required(values.reason, '--reason', ROLLBACK_USAGE);
  const flagsTtlMs = intOption(values['flags-ttl-ms'], '--flags-ttl-ms', ROLLBACK_USAGE, 0);
  assertWindowKind(spec);
  const logger = createLogger({ name: 'parity-rollback', level: process.env.PARITY_LOG_LEVEL ?? 'warn' });
  const redis = createRedis(spec.infra.redis);
  try {
    const result = await withPools(spec, 'parity-rollback', (db, control, newDb) =>
      rollback(
        { spec, db, newDb, control, redis, logger },
        {
          ...(values.cohort ? { cohort: values.cohort } : {}),
          actor: resolveActor(values.actor),
          reason,
          ...(flagsTtlMs === undefined ? {} : { flagsTtlMs }),
        },
      ),
    );
    process.stdout.write(
      values.json
        ? json(result)
        : `${result.migration}${result.cohort ? ` (cohort ${result.cohort})` : ''}: rolled back; writes and reads go to the old representation.\nreverse sync had applied up to ${result.appliedLsn}, past the flip at ${result.flipLsn} (waited ${result.waitedMs} ms).\n`,
    );
    return 0;
  } finally {
    redis.disconnect();
  }
};

const RUN_USAGE = 'parity reverse-sync run --spec FILE [--status-port N] [--verify-every SECONDS] [--batch-keys N] [--stream-check on|off]';

/** `parity reverse-sync run`: applies the new representation's changes to the old one until SIGTERM/SIGINT or contract. */
export const reverseSyncRun: ReverseCommand = async (argv, deps) => {
  const { values } = parseOptions(
    argv,
    {
      spec: { type: 'string' },
      'status-port': { type: 'string' },
      'verify-every': { type: 'string' },
      'batch-keys': { type: 'string' },
      'stream-check': { type: 'string' },
    },
    RUN_USAGE,
  );
  const streamCheck = values['stream-check'] ?? 'on';
  if (streamCheck !== 'on' && streamCheck !== 'off')
    throw new ParityError('PARITY_BAD_INPUT', `--stream-check must be on or off, got ${JSON.stringify(streamCheck)}`, {
      hint: `usage: ${RUN_USAGE}`,
    });
  const loaded = loadSpec(required(values.spec, '--spec', RUN_USAGE));
  const { spec } = loaded;
  assertWindowKind(spec);
  const verifyEvery = intOption(values['verify-every'], '--verify-every', RUN_USAGE, 0) ?? 300;
  const batchKeys = intOption(values['batch-keys'], '--batch-keys', RUN_USAGE) ?? 2_000;
  const statusPort = resolveStatusPort('reverse', {
    flag: values['status-port'],
    specPort: specStatusPort(spec, 'reverse'),
    usage: RUN_USAGE,
  }).port;
  const logger = createLogger({ name: 'parity-reverse-sync' });
  const registry = createMetricsRegistry({ service: 'reverse' });
  const applyClient = createPgClient(spec.source.database, { applicationName: 'parity-reverse-sync' });
  await applyClient.connect();
  try {
    return await withPools(spec, 'parity-reverse-sync', async (db, control, newDb) => {
      const sync = new ReverseSync({
        spec,
        databaseUrl: spec.source.database,
        pool: db,
        newDatabaseUrl: newSideDatabase(spec),
        newPool: newDb,
        control,
        applyClient,
        logger,
        registry,
        batchKeys,
        verifyEveryMs: verifyEvery * 1000,
        verifyReverse: deps.verifyReverse(loaded, { logger, registry }),
        ...(deps.streamCheckReverse && streamCheck === 'on' ? { streamCheck: deps.streamCheckReverse(loaded, { logger }) } : {}),
        statusPort,
      });
      const stop = (): void => {
        logger.info('stopping: applying the batch in hand');
        void sync.stop();
      };
      process.once('SIGTERM', stop);
      process.once('SIGINT', stop);
      await sync.run().catch((err: unknown) => {
        if ((err as { code?: string }).code === 'EADDRINUSE')
          throw new ParityError('PARITY_BAD_INPUT', `status port ${statusPort} is taken (another parity process on this host?)`, {
            hint: 'pick another with --status-port, PARITY_STATUS_PORT or status.ports.reverse (0 = any free port)',
            cause: err,
          });
        throw err;
      });
      logger.info({ state: sync.status.state }, 'reverse sync stopped');
      return 0;
    });
  } finally {
    await applyClient.end().catch(() => undefined);
  }
};

const STATUS_USAGE = 'parity reverse-sync status --spec FILE [--json]';

/** `parity reverse-sync status`: the window, each cohort, the applied position, lag and unrepresentable rows. */
export const reverseSyncStatus: ReverseCommand = async (argv) => {
  const { values } = parseOptions(argv, { spec: { type: 'string' }, json: { type: 'boolean' } }, STATUS_USAGE);
  const { spec } = loadSpec(required(values.spec, '--spec', STATUS_USAGE));
  assertWindowKind(spec);
  const status = await withPools(spec, 'parity-reverse-status', async (db, _control, newDb) => {
    const schema = spec.control.schema;
    const [window, cohorts, position, unrepresentable, lag, stream] = await Promise.all([
      readWindow(db, schema, spec.name),
      readCohorts(db, schema, spec.name),
      readPosition(db, schema, spec.name),
      countUnrepresentable(db, schema, spec.name),
      slotLag(newDb, reverseSlot(spec)),
      readStreamCounts(db, schema, spec.name),
    ]);
    const lsn = (l: Lsn | null | undefined): string | null => (l === null || l === undefined ? null : formatLsn(l));
    return {
      migration: spec.name,
      window: window
        ? { state: window.state, slot: window.slot, openedAt: window.openedAt, openedLsn: lsn(window.openedLsn), closedAt: window.closedAt }
        : null,
      cohorts: cohorts.map((c) => ({ cohort: c.cohort, state: c.state, flipLsn: lsn(c.flipLsn), changedAt: c.changedAt })),
      applied: position
        ? {
            commitLsn: lsn(position.commitLsn),
            ordinal: position.ordinal,
            keys: position.applied,
            echoesDropped: position.echoes,
            at: position.updatedAt,
          }
        : null,
      slotLagBytes: lag?.lagBytes ?? null,
      unrepresentable,
      streamCheck: stream,
    };
  });
  if (values.json) process.stdout.write(json(status));
  else {
    const lines = [`${status.migration}: reverse window ${status.window ? status.window.state : 'none (no cutover ran)'}`];
    for (const c of status.cohorts)
      lines.push(`  cohort ${c.cohort || '(whole migration)'}: ${c.state}${c.flipLsn ? ` (flip at ${c.flipLsn})` : ''}`);
    if (status.applied)
      lines.push(
        `  applied up to ${status.applied.commitLsn}/${status.applied.ordinal}: ${status.applied.keys} keys, ${status.applied.echoesDropped} echoes dropped`,
      );
    lines.push(
      `  reverse slot lag: ${status.slotLagBytes ?? 'unknown (no slot)'} bytes; unrepresentable rows pending: ${status.unrepresentable}`,
    );
    const s = status.streamCheck;
    lines.push(
      s
        ? `  stream check: ${s.checked} keys checked, ${s.matched} matched, ${s.superseded} superseded, ${s.confirmedDrift} confirmed drift, ${s.inFlight} in flight (at ${s.updatedAt})`
        : '  stream check: not run yet',
    );
    process.stdout.write(`${lines.join('\n')}\n`);
  }
  return 0;
};

const CHECK_USAGE = 'parity reverse-sync check --spec FILE [--json]';

/** `parity reverse-sync check`: one reverse verification of the old side, recorded as the window's evidence; exit 1 when not clean. */
export const reverseSyncCheck: ReverseCommand = async (argv, deps) => {
  const { values } = parseOptions(argv, { spec: { type: 'string' }, json: { type: 'boolean' } }, CHECK_USAGE);
  const loaded = loadSpec(required(values.spec, '--spec', CHECK_USAGE));
  const { spec } = loaded;
  assertWindowKind(spec);
  const logger = createLogger({ name: 'parity-reverse-check', level: process.env.PARITY_LOG_LEVEL ?? 'warn' });
  const registry = createMetricsRegistry({ service: 'reverse', defaultMetrics: false });
  const check = await withPools(spec, 'parity-reverse-check', async (db, control, newDb) => {
    if (!(await readWindow(db, spec.control.schema, spec.name)))
      throw new ParityError('PARITY_PHASE', `${spec.name} has no reverse window (no cutover ran): nothing to check`, {
        hint: 'run parity cutover first',
      });
    return checkWindow(spec, { old: db, control, new: newDb }, deps.verifyReverse(loaded, { logger, registry }));
  });
  process.stdout.write(values.json ? json(check) : `${check.summary}${check.cleanSince ? `; clean since ${check.cleanSince}` : ''}\n`);
  return check.clean ? 0 : 1;
};
