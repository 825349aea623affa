/**
 * The status server every long-running parity process runs: `/metrics`, `/livez`, `/readyz`,
 * `/healthz` and a service's own routes, behind the same request guards (Host, body size,
 * Content-Type, bearer token for state-changing routes).
 */
import { timingSafeEqual } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { isIP, type AddressInfo } from 'node:net';
import type { Registry } from 'prom-client';
import { ParityError } from './errors.js';
import { redact } from './secrets.js';

export interface HealthReport {
  ok: boolean;
  /** Short machine-readable state, e.g. "streaming", "paused". */
  status: string;
  /** What is wrong and what to do, when not ok. */
  reason?: string;
  details?: Record<string, unknown>;
}

/** The answer of `/readyz` and `/livez`: a plain boolean, or a state with the reason when not. */
export type ProbeReport = boolean | { ok: boolean; status: string; reason?: string };

export type Route = (req: IncomingMessage, res: ServerResponse, body: string) => Promise<void> | void;

export interface StatusServerOptions {
  registry: Registry;
  /** `/healthz`: is the service working as it should (503 with the reason while it waits out a problem). */
  health: () => HealthReport | Promise<HealthReport>;
  /** `/readyz`: is it doing its job now (paused, lagging or lock lost: not ready). Default: ready. */
  ready?: () => ProbeReport | Promise<ProbeReport>;
  /** `/livez`: is its loop alive (restart it if not). Default: alive whenever the server answers. */
  live?: () => ProbeReport | Promise<ProbeReport>;
  /** Extra routes keyed by "METHOD /path". */
  routes?: Record<string, Route>;
  /** Bind address; default PARITY_STATUS_HOST, else 127.0.0.1. */
  host?: string;
  /** 0 = any free port. Resolve a service's port with `resolveStatusPort` first. */
  port?: number;
  /** Host names accepted besides the bind address, IP literals and localhost; default PARITY_STATUS_ALLOWED_HOSTS. */
  allowedHosts?: string[];
  /** Required as `Authorization: Bearer <token>` on every state-changing route (POST, PUT, PATCH, DELETE). */
  bearerToken?: string;
  /** Largest request body accepted (default 64 KiB); larger gets 413. */
  maxBodyBytes?: number;
}

export interface StatusServer {
  server: Server;
  url: string;
  close(): Promise<void>;
}

/** Fixed default status ports; docker-compose, deploy/k8s and deploy/prometheus/prometheus.yml use the same. */
export const STATUS_PORTS = {
  serve: 9400,
  cdc: 9401,
  reconcile: 9402,
  cache: 9403,
  backfill: 9404,
  verify: 9405,
  reverse: 9406,
} as const;

export type StatusService = keyof typeof STATUS_PORTS;

export const DEFAULT_MAX_BODY_BYTES = 64 * 1024;

export interface ResolvedPort {
  port: number;
  /** Where the port came from, for the start-up log line. */
  source: 'flag' | 'env' | 'spec' | 'default';
}

function parsePort(text: string, what: string, hint: string): number {
  const n = Number(text);
  if (text.trim() === '' || !Number.isInteger(n) || n < 0 || n > 65535) {
    throw new ParityError('PARITY_BAD_INPUT', `${what} must be a port number from 0 to 65535 (0 = any free port), got "${text}"`, { hint });
  }
  return n;
}

/**
 * The status port of `service`, by one precedence: the `--status-port` flag, then the
 * PARITY_STATUS_PORT environment variable, then the spec's field (when the service has one), then
 * the service's fixed default from `STATUS_PORTS`. 0 anywhere means any free port.
 */
export function resolveStatusPort(
  service: StatusService,
  sources: { flag?: string | undefined; specPort?: number | undefined; usage?: string; env?: NodeJS.ProcessEnv } = {},
): ResolvedPort {
  const env = sources.env ?? process.env;
  if (sources.flag !== undefined)
    return {
      port: parsePort(sources.flag, '--status-port', sources.usage ? `usage: ${sources.usage}` : 'pass a port number'),
      source: 'flag',
    };
  const fromEnv = env.PARITY_STATUS_PORT;
  if (fromEnv !== undefined && fromEnv !== '')
    return { port: parsePort(fromEnv, 'PARITY_STATUS_PORT', 'set PARITY_STATUS_PORT to a port number, or unset it'), source: 'env' };
  if (sources.specPort !== undefined) return { port: sources.specPort, source: 'spec' };
  return { port: STATUS_PORTS[service], source: 'default' };
}

/** Bind address: the given one (a flag), else PARITY_STATUS_HOST, else loopback. */
export function resolveStatusHost(flag?: string, env: NodeJS.ProcessEnv = process.env): string {
  return flag ?? (env.PARITY_STATUS_HOST || '127.0.0.1');
}

/** Host names from PARITY_STATUS_ALLOWED_HOSTS (comma-separated). */
export function allowedHostsFromEnv(env: NodeJS.ProcessEnv = process.env): string[] {
  return (env.PARITY_STATUS_ALLOWED_HOSTS ?? '')
    .split(',')
    .map((h) => h.trim().toLowerCase())
    .filter(Boolean);
}

/** The host name of a Host header value: port removed, IPv6 brackets removed, lower case. */
export function hostName(header: string): string {
  const value = header.trim().toLowerCase();
  if (value.startsWith('[')) return value.slice(1, value.indexOf(']') > 0 ? value.indexOf(']') : undefined);
  const colon = value.lastIndexOf(':');
  return colon > 0 && value.indexOf(':') === colon ? value.slice(0, colon) : value;
}

/**
 * Whether a request's Host header names this server. IP literals are always accepted (DNS rebinding
 * needs a name that resolves to us), so are `localhost` and the bind address; any other name only
 * when configured. A missing Host (HTTP/1.0) is refused.
 */
export function hostAllowed(header: string | undefined, bindHost: string, allowed: readonly string[]): boolean {
  if (!header) return false;
  const name = hostName(header);
  if (!name) return false;
  if (isIP(name) !== 0) return true;
  if (name === 'localhost' || name === bindHost.toLowerCase()) return true;
  return allowed.includes(name);
}

const STATE_CHANGING = new Set(['POST', 'PUT', 'PATCH', 'DELETE']);

/** Whether a Content-Type header is JSON (`application/json`, parameters allowed). */
export function isJsonContentType(header: string | undefined): boolean {
  return (header ?? '').split(';')[0]!.trim().toLowerCase() === 'application/json';
}

/** Compares a request's Authorization header with the expected token in constant time. */
export function bearerMatches(header: string | undefined, token: string): boolean {
  const match = /^Bearer\s+(\S+)\s*$/i.exec(header ?? '');
  if (!match) return false;
  const given = Buffer.from(match[1]!);
  const expected = Buffer.from(token);
  return given.length === expected.length && timingSafeEqual(given, expected);
}

export function sendJson(res: ServerResponse, status: number, payload: unknown, headers: Record<string, string> = {}): void {
  res.writeHead(status, { 'content-type': 'application/json', ...headers });
  res.end(redact(JSON.stringify(payload)));
}

function probe(report: ProbeReport, key: 'ready' | 'live'): { status: number; body: Record<string, unknown> } {
  const r = typeof report === 'boolean' ? { ok: report, status: report ? 'ok' : 'not-ok' } : report;
  return { status: r.ok ? 200 : 503, body: { [key]: r.ok, status: r.status, ...(r.reason ? { reason: r.reason } : {}) } };
}

/**
 * Serves `/metrics` (Prometheus text), `/livez`, `/readyz`, `/healthz` (200 or 503 with the
 * reason) and a service's extra routes (control endpoints, status pages). Every request passes the
 * guards first: a Host that is not this server's gets 421, a body above the cap 413, a
 * state-changing request without the bearer token (when one is set) 401, and one whose body is not
 * `application/json` 415; none of them reaches a route.
 */
export async function startStatusServer(options: StatusServerOptions): Promise<StatusServer> {
  // Loopback unless the deployment says otherwise (containers set PARITY_STATUS_HOST=0.0.0.0).
  const host = options.host ?? resolveStatusHost();
  const port = options.port ?? 0;
  const allowed = (options.allowedHosts ?? allowedHostsFromEnv()).map((h) => h.toLowerCase());
  const maxBody = options.maxBodyBytes ?? DEFAULT_MAX_BODY_BYTES;
  const server = createServer((req, res) => {
    if (!hostAllowed(req.headers.host, host, allowed)) {
      req.resume();
      return sendJson(res, 421, {
        error: `Host "${req.headers.host ?? ''}" is not this server's`,
        hint: 'use the bind address or an IP; add other names to PARITY_STATUS_ALLOWED_HOSTS',
      });
    }
    const declared = Number(req.headers['content-length'] ?? 0);
    if (declared > maxBody) return tooLarge(req, res);
    const chunks: Buffer[] = [];
    let size = 0;
    let refused = false;
    req.on('data', (c: Buffer) => {
      if (refused) return;
      size += c.length;
      if (size > maxBody) {
        refused = true;
        tooLarge(req, res);
        return;
      }
      chunks.push(c);
    });
    req.on('end', () => {
      if (refused) return;
      void handle(req, res, Buffer.concat(chunks).toString('utf8')).catch((err: unknown) => {
        if (!res.headersSent) sendJson(res, 500, { error: err instanceof Error ? err.message : String(err) });
        else res.end();
      });
    });
  });
  function tooLarge(req: IncomingMessage, res: ServerResponse): void {
    // Answer at once and close: reading the rest of an oversized body is what the cap prevents.
    sendJson(res, 413, { error: `request body above ${maxBody} bytes` }, { connection: 'close' });
    req.resume();
  }
  async function handle(req: IncomingMessage, res: ServerResponse, body: string): Promise<void> {
    const method = req.method ?? 'GET';
    const path = (req.url ?? '/').split('?')[0];
    if (STATE_CHANGING.has(method)) {
      if (options.bearerToken !== undefined && !bearerMatches(req.headers.authorization, options.bearerToken)) {
        return sendJson(
          res,
          401,
          {
            error: 'missing or wrong bearer token',
            hint: 'send Authorization: Bearer <token> (printed by the process at start-up, or PARITY_CONTROL_TOKEN)',
          },
          { 'www-authenticate': 'Bearer' },
        );
      }
      if (!isJsonContentType(req.headers['content-type'])) {
        return sendJson(res, 415, { error: `Content-Type must be application/json, got "${req.headers['content-type'] ?? ''}"` });
      }
    }
    const route = options.routes?.[`${method} ${path}`];
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
      const r = probe(options.ready ? await options.ready() : true, 'ready');
      return sendJson(res, r.status, r.body);
    }
    if (path === '/livez') {
      const r = probe(options.live ? await options.live() : true, 'live');
      return sendJson(res, r.status, r.body);
    }
    sendJson(res, 404, { error: `no route ${method} ${path}` });
  }
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => resolve());
  });
  const address = server.address() as AddressInfo;
  const urlHost = isIP(host) === 6 ? `[${host}]` : host;
  return {
    server,
    url: `http://${urlHost}:${address.port}`,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeIdleConnections();
      }),
  };
}

/**
 * Starts the status server; when its port is taken and `fallback` is set (processes that run
 * several to a host: backfill and verify workers), serves on a free port instead and calls
 * `onFallback`. A taken port otherwise is a clear PARITY_BAD_INPUT naming the port and how to pick another.
 */
export async function startStatusServerOn(
  options: StatusServerOptions & { port: number },
  what: { flag: string; fallback?: boolean; onFallback?: (port: number) => void },
): Promise<StatusServer> {
  try {
    return await startStatusServer(options);
  } catch (err) {
    if ((err as { code?: string }).code !== 'EADDRINUSE' || options.port === 0) throw err;
    if (what.fallback) {
      what.onFallback?.(options.port);
      return startStatusServer({ ...options, port: 0 });
    }
    throw new ParityError('PARITY_BAD_INPUT', `status port ${options.port} is taken (another parity process on this host?)`, {
      hint: `pick another with ${what.flag}, PARITY_STATUS_PORT or the spec (0 = any free port)`,
      cause: err,
    });
  }
}

/** The spec's port for `service`: `status.ports.<service>`, or the older `cdc.statusPort` / `backfill.controlPort`. */
export function specStatusPort(
  spec: {
    status: { ports: Partial<Record<StatusService, number | undefined>> };
    cdc: { statusPort?: number | undefined };
    backfill: { controlPort?: number | undefined };
  },
  service: StatusService,
): number | undefined {
  const port = spec.status.ports[service];
  if (port !== undefined) return port;
  if (service === 'cdc') return spec.cdc.statusPort;
  if (service === 'backfill') return spec.backfill.controlPort;
  return undefined;
}

/**
 * PARITY_STATUS_LINGER_SECONDS: how long a batch process (verify) keeps its status server up after
 * its work is done, so Prometheus scrapes the final values (a Kubernetes Job's pod would otherwise
 * exit between two scrapes). Default 0.
 */
export function statusLingerMs(env: NodeJS.ProcessEnv = process.env): number {
  const text = env.PARITY_STATUS_LINGER_SECONDS;
  if (text === undefined || text === '') return 0;
  const seconds = Number(text);
  if (!Number.isFinite(seconds) || seconds < 0) {
    throw new ParityError('PARITY_BAD_INPUT', `PARITY_STATUS_LINGER_SECONDS must be a number of seconds >= 0, got "${text}"`, {
      hint: 'e.g. PARITY_STATUS_LINGER_SECONDS=30 (two scrape intervals), or unset it',
    });
  }
  return seconds * 1000;
}

/** Waits `ms`, or less if SIGTERM/SIGINT arrives: the lingering server never delays a stop. */
export function linger(ms: number): Promise<void> {
  if (ms <= 0) return Promise.resolve();
  return new Promise((resolve) => {
    const done = (): void => {
      clearTimeout(timer);
      process.off('SIGTERM', done);
      process.off('SIGINT', done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    process.once('SIGTERM', done);
    process.once('SIGINT', done);
  });
}
