/**
 * The HTTP control endpoint of a `backfill run` process, bound to 127.0.0.1 on
 * `backfill.controlPort` (0: any free port; a taken port falls back to a free one with a warning).
 * The bound URL is written to the process's row in the control schema, where `status` shows it.
 *
 * - `POST /control` with the command as text (`pause`, `set batch-size=500`) or JSON
 *   `{"command": "..."}`: applied exactly as `parity backfill ctl` applies it (to the run's control
 *   row, so every process of the run follows), then polled at once by this process.
 * - `GET /status`: this process's view (state, throttle reasons, batch size, progress, ETA).
 * - `/metrics`, `/healthz` (200 while running or throttled, with the reason), `/readyz`.
 */
import type { Registry } from 'prom-client';
import { isParityError } from '../core/errors.js';
import { sendJson, startStatusServer } from '../core/http.js';
import type { Logger } from '../core/log.js';
import { parseControlCommand, formatControlCommand } from './control-command.js';
import { applyControlCommand } from './control-store.js';
import { describeFindings } from './throttle.js';
import type { Controller } from './controller.js';
import type { Session } from './databases.js';

export interface ControlServer {
  url: string;
  close(): Promise<void>;
}

export interface ControlServerOptions {
  port: number;
  controller: Controller;
  /** A control-database session per command (never the controller's own, which its poll loop uses). */
  controlSession: () => Promise<Session>;
  registry: Registry;
  schema: string;
  migration: string;
  logger: Logger;
}

function commandText(body: string): string {
  const trimmed = body.trim();
  if (trimmed.startsWith('{')) {
    const parsed = JSON.parse(trimmed) as { command?: unknown };
    return typeof parsed.command === 'string' ? parsed.command : '';
  }
  return trimmed;
}

export async function startControlServer(o: ControlServerOptions): Promise<ControlServer> {
  const serve = (port: number) =>
    startStatusServer({
      registry: o.registry,
      port,
      health: () => {
        const s = o.controller.snapshot();
        return { ok: s.state !== 'stopping', status: s.state, ...(s.throttle.length ? { reason: describeFindings(s.throttle) } : {}), details: { runId: s.runId, rowsDone: s.rowsDone, rowsPlanned: s.rowsPlanned } };
      },
      routes: {
        'GET /status': (_req, res) => sendJson(res, 200, o.controller.snapshot()),
        'POST /control': async (req, res, body) => {
          try {
            const command = parseControlCommand([commandText(body)]);
            const actor = `http ${req.socket.remoteAddress ?? '127.0.0.1'} (pid ${process.pid})`;
            const session = await o.controlSession();
            let applied: { runId: number; seq: number };
            try {
              applied = await applyControlCommand(session.client, o.schema, o.migration, command, actor);
            } finally {
              session.release();
            }
            await o.controller.pollNow();
            o.logger.info({ command: formatControlCommand(command), actor, seq: applied.seq }, 'control command applied');
            sendJson(res, 200, { ok: true, command: formatControlCommand(command), runId: applied.runId, seq: applied.seq, status: o.controller.snapshot() });
          } catch (err) {
            const status = isParityError(err, 'PARITY_BAD_INPUT') || err instanceof SyntaxError ? 400 : 500;
            sendJson(res, status, { ok: false, error: (err as Error).message, ...(isParityError(err) && err.hint ? { hint: err.hint } : {}) });
          }
        },
      },
    });
  try {
    const server = await serve(o.port);
    return { url: server.url, close: () => server.close() };
  } catch (err) {
    if ((err as { code?: string }).code !== 'EADDRINUSE' || o.port === 0) throw err;
    o.logger.warn({ port: o.port }, 'backfill.controlPort is taken (another backfill process on this host?); serving control on a free port instead');
    const server = await serve(0);
    return { url: server.url, close: () => server.close() };
  }
}
