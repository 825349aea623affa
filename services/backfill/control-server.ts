/**
 * The HTTP status and control endpoint of a `backfill run` process, on `PARITY_STATUS_HOST`
 * (default 127.0.0.1) and the backfill's status port (--status-port > PARITY_STATUS_PORT >
 * `status.ports.backfill` / `backfill.controlPort` > 9404; a taken port falls back to a free one
 * with a warning, since several processes of a run may share a host). The bound URL is written to
 * the process's row in the control schema, where `status` shows it.
 *
 * - `POST /control` with `{"command": "set batch-size=500"}` (Content-Type application/json,
 *   `Authorization: Bearer <token>`): validated against the spec's limits, then applied exactly as
 *   `parity backfill ctl` applies it (to the run's control row, so every process of the run
 *   follows), then polled at once by this process. No token 401, other content types 415, a
 *   bad or out-of-range command 400; nothing is written in any of these cases.
 * - `GET /status`: this process's view (state, throttle reasons, batch size, progress, ETA).
 * - `/metrics`, `/livez`, `/readyz` (503 while throttled or paused, or once the run's fencing token
 *   is superseded: "lock lost: fencing token N superseded by M"), `/healthz`
 *   (200 while running or throttled, with the reason).
 */
import type { Registry } from 'prom-client';
import { isParityError, ParityError } from '../core/errors.js';
import type { FenceWatch } from '../core/fence-watch.js';
import { sendJson, startStatusServerOn } from '../core/http.js';
import type { Logger } from '../core/log.js';
import { parseControlCommand, formatControlCommand, type ControlLimits } from './control-command.js';
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
  /** Bearer token `POST /control` requires. */
  token: string;
  /** The spec's limits that `set` commands are checked against. */
  limits: ControlLimits;
  /** Whether the run's fencing token is still current: superseded is not ready, whatever the state. */
  fenceWatch?: FenceWatch;
}

/** The command of a `{"command": "..."}` body; anything else is a 400 naming the expected shape. */
function commandText(body: string): string {
  let parsed: unknown;
  try {
    parsed = JSON.parse(body);
  } catch {
    throw new ParityError('PARITY_BAD_INPUT', 'the body is not JSON', {
      hint: 'send {"command": "pause"} with Content-Type: application/json',
    });
  }
  const command = (parsed as { command?: unknown } | null)?.command;
  if (typeof command !== 'string')
    throw new ParityError('PARITY_BAD_INPUT', 'the body has no "command" string', {
      hint: 'send {"command": "pause"} with Content-Type: application/json',
    });
  return command;
}

export async function startControlServer(o: ControlServerOptions): Promise<ControlServer> {
  const server = await startStatusServerOn(
    {
      registry: o.registry,
      port: o.port,
      bearerToken: o.token,
      ready: () => {
        const lost = o.fenceWatch?.readiness();
        if (lost) return lost;
        const s = o.controller.snapshot();
        return {
          ok: s.state === 'running',
          status: s.state,
          ...(s.state === 'running' ? {} : { reason: s.throttle.length ? describeFindings(s.throttle) : `not running (${s.state})` }),
        };
      },
      health: () => {
        const s = o.controller.snapshot();
        return {
          ok: s.state !== 'stopping',
          status: s.state,
          ...(s.throttle.length ? { reason: describeFindings(s.throttle) } : {}),
          details: { runId: s.runId, rowsDone: s.rowsDone, rowsPlanned: s.rowsPlanned },
        };
      },
      routes: {
        'GET /status': (_req, res) => sendJson(res, 200, o.controller.snapshot()),
        'POST /control': async (req, res, body) => {
          try {
            const command = parseControlCommand([commandText(body)], o.limits);
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
            sendJson(res, 200, {
              ok: true,
              command: formatControlCommand(command),
              runId: applied.runId,
              seq: applied.seq,
              status: o.controller.snapshot(),
            });
          } catch (err) {
            const status = isParityError(err, 'PARITY_BAD_INPUT') || err instanceof SyntaxError ? 400 : 500;
            sendJson(res, status, {
              ok: false,
              error: (err as Error).message,
              ...(isParityError(err) && err.hint ? { hint: err.hint } : {}),
            });
          }
        },
      },
    },
    {
      flag: '--status-port',
      fallback: true,
      onFallback: (port) =>
        o.logger.warn(
          { port },
          'the backfill status port is taken (another backfill process on this host?); serving control on a free port instead',
        ),
    },
  );
  return { url: server.url, close: () => server.close() };
}
