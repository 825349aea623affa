import { parseOptions, required } from '../cli/command.js';
import { createPgPool, createRedis } from '../core/clients.js';
import { sendJson, startStatusServer } from '../core/http.js';
import { createLogger } from '../core/log.js';
import { createMetricsRegistry } from '../core/metrics.js';
import { controlDatabase, loadSpec } from '../core/spec.js';
import { collectStatus } from './collect.js';
import { renderStatusPage } from './page.js';

const USAGE = 'parity serve --spec FILE [--host 127.0.0.1] [--port 9400] [--refresh SECONDS]';

/**
 * `parity serve`: the live status page (phase, gates, flags, CDC lag, trends, audit) on 127.0.0.1,
 * plus /api/status (JSON), /metrics, /healthz and /readyz. Runs until interrupted.
 */
export async function serveCommand(argv: string[]): Promise<number> {
  const { values } = parseOptions(argv, { spec: { type: 'string' }, host: { type: 'string' }, port: { type: 'string' }, refresh: { type: 'string' } }, USAGE);
  const { spec } = loadSpec(required(values.spec, '--spec', USAGE));
  const logger = createLogger({ name: 'parity-serve' });
  const registry = createMetricsRegistry({ service: 'serve' });
  const control = createPgPool(controlDatabase(spec), { applicationName: 'parity-serve' });
  const source = createPgPool(spec.source.database, { applicationName: 'parity-serve', max: 2 });
  const redis = createRedis(spec.infra.redis.url, { maxRetriesPerRequest: 1, enableOfflineQueue: false });
  redis.on('error', () => undefined);
  const refresh = Number(values.refresh ?? 5);
  const collect = () => collectStatus({ spec, control, source, redis });
  const server = await startStatusServer({
    registry,
    host: values.host,
    port: values.port ? Number(values.port) : undefined,
    health: async () => {
      try {
        await control.query('SELECT 1');
        return { ok: true, status: 'serving' };
      } catch (err) {
        return { ok: false, status: 'control-db-unreachable', reason: `${(err as Error).message}; check the control database in the spec` };
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
  });
  logger.info({ url: server.url }, 'status page listening');
  process.stdout.write(`parity status page: ${server.url}/\n`);
  await new Promise<void>((resolve) => {
    process.once('SIGINT', resolve);
    process.once('SIGTERM', resolve);
  });
  await server.close();
  await Promise.all([control.end(), source.end()]);
  redis.disconnect();
  return 0;
}
