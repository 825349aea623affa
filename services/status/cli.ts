import { parseOptions, required } from '../core/options.js';
import { createPgPool, createRedis } from '../core/clients.js';
import { resolveStatusHost, resolveStatusPort, sendJson, specStatusPort, startStatusServerOn } from '../core/http.js';
import { createLogger } from '../core/log.js';
import { createMetricsRegistry } from '../core/metrics.js';
import type pg from 'pg';
import { type Spec, controlDatabase, loadSpec, targetDatabase } from '../core/spec.js';
import { registerLockMetrics } from '../coordinator/lock.js';
import { type ReverseWindowReader, collectStatus } from './collect.js';
import { LockWatch } from './lock-metrics.js';
import { renderStatusPage } from './page.js';

/** What the CLI wiring hands `parity serve`: the cutover window's reader (reverse sync's tables), made for one spec. */
export interface ServeDeps {
  reverseWindow?: (spec: Spec, dbs: { old: pg.Pool; newSide?: pg.Pool }) => ReverseWindowReader;
}

const USAGE = 'parity serve --spec FILE [--host ADDRESS] [--status-port N | --port N] [--refresh SECONDS]';

/**
 * `parity serve`: the live status page (phase, gates, flags, CDC lag, the cutover window, trends, audit), plus
 * /api/status (JSON), /metrics, /livez, /readyz and /healthz. Listens on --host >
 * PARITY_STATUS_HOST > 127.0.0.1, port --status-port (or --port) > PARITY_STATUS_PORT >
 * status.ports.serve > 9400. Runs until interrupted.
 */
export async function serveCommand(argv: string[], deps: ServeDeps = {}): Promise<number> {
  const { values } = parseOptions(
    argv,
    {
      spec: { type: 'string' },
      host: { type: 'string' },
      port: { type: 'string' },
      'status-port': { type: 'string' },
      refresh: { type: 'string' },
    },
    USAGE,
  );
  const { spec } = loadSpec(required(values.spec, '--spec', USAGE));
  const port = resolveStatusPort('serve', {
    flag: values['status-port'] ?? values.port,
    specPort: specStatusPort(spec, 'serve'),
    usage: USAGE,
  }).port;
  const host = resolveStatusHost(values.host);
  const logger = createLogger({ name: 'parity-serve' });
  const registry = createMetricsRegistry({ service: 'serve' });
  // serve is the coordinator's scraped process: the lock's families (its own leases: none; the lock as observed: LockWatch).
  registerLockMetrics(registry);
  const control = createPgPool(controlDatabase(spec), { applicationName: 'parity-serve' });
  const source = createPgPool(spec.source.database, { applicationName: 'parity-serve', max: 2 });
  const redis = createRedis(spec.infra.redis, { maxRetriesPerRequest: 1, enableOfflineQueue: false });
  redis.on('error', () => undefined);
  // The lock as seen from outside (lock-metrics.ts), polled at most a third of its TTL apart.
  const fencePool =
    targetDatabase(spec) === controlDatabase(spec)
      ? undefined
      : createPgPool(targetDatabase(spec), { applicationName: 'parity-serve', max: 1 });
  const lockWatch = new LockWatch(
    { redis, fenceDb: fencePool ?? control, fenceSchema: spec.control.schema, migration: spec.name },
    registry,
  );
  const pollLock = () =>
    lockWatch.poll().catch((err: unknown) => logger.debug({ err: (err as Error).message }, 'could not read the migration lock'));
  void pollLock();
  const lockTimer = setInterval(pollLock, Math.min(5_000, Math.floor(spec.lock.ttlMs / 3)));
  lockTimer.unref();
  // The reverse slot of a cross-database window is on the target database.
  const newSide =
    spec.reverse && targetDatabase(spec) !== spec.source.database
      ? createPgPool(targetDatabase(spec), { applicationName: 'parity-serve', max: 1 })
      : undefined;
  const refresh = Number(values.refresh ?? 5);
  const reverseWindow = deps.reverseWindow?.(spec, { old: source, ...(newSide ? { newSide } : {}) });
  const collect = () => collectStatus({ spec, control, source, redis, ...(reverseWindow ? { reverseWindow } : {}) });
  const controlReachable = async () => {
    try {
      await control.query('SELECT 1');
      return { ok: true, status: 'serving' };
    } catch (err) {
      return { ok: false, status: 'control-db-unreachable', reason: `${(err as Error).message}; check the control database in the spec` };
    }
  };
  const server = await startStatusServerOn(
    {
      registry,
      host,
      port,
      ready: controlReachable,
      health: async () => {
        try {
          await control.query('SELECT 1');
          return { ok: true, status: 'serving' };
        } catch (err) {
          return {
            ok: false,
            status: 'control-db-unreachable',
            reason: `${(err as Error).message}; check the control database in the spec`,
          };
        }
      },
      routes: {
        'GET /': async (_req, res) => {
          const html = renderStatusPage(await collect(), refresh);
          res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' });
          res.end(html);
        },
        'GET /api/status': async (_req, res) => sendJson(res, 200, await collect()),
      },
    },
    { flag: '--status-port' },
  );
  logger.info({ url: server.url }, 'status page listening');
  process.stdout.write(`parity status page: ${server.url}/\n`);
  await new Promise<void>((resolve) => {
    process.once('SIGINT', resolve);
    process.once('SIGTERM', resolve);
  });
  clearInterval(lockTimer);
  await server.close();
  await Promise.all([control.end(), source.end(), fencePool?.end(), newSide?.end()]);
  redis.disconnect();
  return 0;
}
