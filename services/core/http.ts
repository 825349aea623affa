import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Registry } from 'prom-client';
import { redact } from './secrets.js';

export interface HealthReport {
  ok: boolean;
  /** Short machine-readable state, e.g. "streaming", "paused". */
  status: string;
  /** What is wrong and what to do, when not ok. */
  reason?: string;
  details?: Record<string, unknown>;
}

export type Route = (req: IncomingMessage, res: ServerResponse, body: string) => Promise<void> | void;

export interface StatusServerOptions {
  registry: Registry;
  health: () => HealthReport | Promise<HealthReport>;
  ready?: () => boolean | Promise<boolean>;
  /** Extra routes keyed by "METHOD /path". */
  routes?: Record<string, Route>;
  host?: string;
  port?: number;
}

export interface StatusServer {
  server: Server;
  url: string;
  close(): Promise<void>;
}

export function sendJson(res: ServerResponse, status: number, payload: unknown): void {
  res.writeHead(status, { 'content-type': 'application/json' });
  res.end(redact(JSON.stringify(payload)));
}

/**
 * Serves `/metrics` (Prometheus text), `/healthz` (200 or 503 with the reason) and `/readyz` on
 * 127.0.0.1 by default, plus any extra routes a service adds (control endpoints, status pages).
 */
export async function startStatusServer(options: StatusServerOptions): Promise<StatusServer> {
  // Loopback unless the deployment says otherwise (containers set PARITY_STATUS_HOST=0.0.0.0).
  const host = options.host ?? process.env.PARITY_STATUS_HOST ?? '127.0.0.1';
  const port = options.port || Number(process.env.PARITY_STATUS_PORT ?? 0) || 0;
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      void handle(req, res, Buffer.concat(chunks).toString('utf8')).catch((err: unknown) => {
        sendJson(res, 500, { error: err instanceof Error ? err.message : String(err) });
      });
    });
  });
  async function handle(req: IncomingMessage, res: ServerResponse, body: string): Promise<void> {
    const path = (req.url ?? '/').split('?')[0];
    const route = options.routes?.[`${req.method} ${path}`];
    if (route) return route(req, res, body);
    if (path === '/metrics') {
      res.writeHead(200, { 'content-type': options.registry.contentType });
      res.end(await options.registry.metrics());
      return;
    }
    if (path === '/healthz') {
      const report = await options.health();
      return sendJson(res, report.ok ? 200 : 503, report);
    }
    if (path === '/readyz') {
      const ready = options.ready ? await options.ready() : true;
      return sendJson(res, ready ? 200 : 503, { ready });
    }
    sendJson(res, 404, { error: `no route ${req.method} ${path}` });
  }
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => resolve());
  });
  const address = server.address() as AddressInfo;
  return {
    server,
    url: `http://${host}:${address.port}`,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}
