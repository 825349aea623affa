/**
 * The status server's guards and probes, on a real local HTTP server (no other service needed):
 * Host 421, body cap 413, bearer token 401, Content-Type 415, and none of them reaches the route;
 * /livez and /readyz with their reasons; the status port precedence.
 */
import { request } from 'node:http';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { parseControlCommand } from '../../../services/backfill/control-command.js';
import { createMetricsRegistry } from '../../../services/core/metrics.js';
import {
  hostAllowed,
  hostName,
  resolveStatusPort,
  startStatusServer,
  STATUS_PORTS,
  type StatusServer,
} from '../../../services/core/http.js';

const TOKEN = 'unit-test-token-0123456789abcdef';

/** A raw request, so the test controls Host and Content-Length exactly (fetch forbids setting Host). */
function send(
  url: string,
  o: { method?: string; path: string; host?: string; headers?: Record<string, string>; body?: string | Buffer },
): Promise<{ status: number; body: string }> {
  const u = new URL(url);
  return new Promise((resolve, reject) => {
    const req = request(
      { host: u.hostname, port: u.port, method: o.method ?? 'GET', path: o.path, headers: { host: o.host ?? u.host, ...o.headers } },
      (res) => {
        let body = '';
        res.on('data', (c: Buffer) => (body += c.toString()));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
      },
    );
    req.on('error', (err: NodeJS.ErrnoException) => (err.code === 'EPIPE' || err.code === 'ECONNRESET' ? undefined : reject(err)));
    if (o.body !== undefined) req.write(o.body);
    req.end();
  });
}

describe('status server guards', () => {
  let server: StatusServer;
  let ready: { ok: boolean; status: string; reason?: string } = { ok: true, status: 'streaming' };
  const applied: string[] = [];
  const json = { 'content-type': 'application/json', authorization: `Bearer ${TOKEN}` };

  beforeAll(async () => {
    server = await startStatusServer({
      registry: createMetricsRegistry({ service: 'test' }),
      host: '127.0.0.1',
      port: 0,
      allowedHosts: ['parity-cdc'],
      bearerToken: TOKEN,
      maxBodyBytes: 1024,
      health: () => ({ ok: false, status: 'paused', reason: 'registry rejected the schema' }),
      ready: () => ready,
      routes: {
        'POST /control': (_req, res, body) => {
          applied.push(body);
          res.writeHead(200).end('{}');
        },
      },
    });
  });
  afterAll(() => server?.close());

  test('a request with every guard satisfied reaches the route', async () => {
    const r = await send(server.url, { method: 'POST', path: '/control', headers: json, body: '{"command":"pause"}' });
    expect(r.status).toBe(200);
    expect(applied).toEqual(['{"command":"pause"}']);
  });

  test('no token or a wrong one: 401, nothing applied', async () => {
    const before = applied.length;
    expect(
      (await send(server.url, { method: 'POST', path: '/control', headers: { 'content-type': 'application/json' }, body: '{}' })).status,
    ).toBe(401);
    expect(
      (
        await send(server.url, {
          method: 'POST',
          path: '/control',
          headers: { ...json, authorization: 'Bearer wrong-token-0123456789abcdef' },
          body: '{}',
        })
      ).status,
    ).toBe(401);
    expect(applied.length).toBe(before);
  });

  test('a Host that is not this server (DNS rebinding): 421, also for reads', async () => {
    const before = applied.length;
    expect((await send(server.url, { method: 'POST', path: '/control', host: 'evil.example:80', headers: json, body: '{}' })).status).toBe(
      421,
    );
    expect((await send(server.url, { path: '/metrics', host: 'evil.example' })).status).toBe(421);
    expect(applied.length).toBe(before);
    // Accepted: an IP literal, localhost, and a configured name.
    expect((await send(server.url, { path: '/livez', host: '10.1.2.3:9401' })).status).toBe(200);
    expect((await send(server.url, { path: '/livez', host: 'localhost:9401' })).status).toBe(200);
    expect((await send(server.url, { path: '/livez', host: 'parity-cdc:9401' })).status).toBe(200);
  });

  test('a state-changing request that is not application/json: 415 (a text/plain form POST cannot act)', async () => {
    const before = applied.length;
    const r = await send(server.url, {
      method: 'POST',
      path: '/control',
      headers: { ...json, 'content-type': 'text/plain' },
      body: 'pause',
    });
    expect(r.status).toBe(415);
    expect(applied.length).toBe(before);
  });

  test('a body above the cap: 413, declared or streamed', async () => {
    const before = applied.length;
    expect((await send(server.url, { method: 'POST', path: '/control', headers: json, body: Buffer.alloc(4096, 'a') })).status).toBe(413);
    expect(
      (
        await send(server.url, {
          method: 'POST',
          path: '/control',
          headers: { ...json, 'content-length': '4096' },
          body: Buffer.alloc(4096, 'a'),
        })
      ).status,
    ).toBe(413);
    expect(applied.length).toBe(before);
  });

  test('/livez is 200 while /healthz says paused; /readyz carries the reason', async () => {
    expect((await send(server.url, { path: '/livez' })).status).toBe(200);
    expect((await send(server.url, { path: '/healthz' })).status).toBe(503);
    expect((await send(server.url, { path: '/readyz' })).status).toBe(200);
    ready = { ok: false, status: 'lagging', reason: 'the oldest change not yet in Kafka is 90 s old' };
    const r = await send(server.url, { path: '/readyz' });
    expect(r.status).toBe(503);
    expect(JSON.parse(r.body)).toEqual({ ready: false, status: 'lagging', reason: 'the oldest change not yet in Kafka is 90 s old' });
  });
});

describe('host names and ports', () => {
  test('hostName strips ports and IPv6 brackets', () => {
    expect(hostName('Example.COM:8080')).toBe('example.com');
    expect(hostName('[::1]:9401')).toBe('::1');
    expect(hostName('127.0.0.1')).toBe('127.0.0.1');
    expect(hostAllowed(undefined, '127.0.0.1', [])).toBe(false);
    expect(hostAllowed('attacker.test', '0.0.0.0', [])).toBe(false);
    expect(hostAllowed('[::1]:80', '127.0.0.1', [])).toBe(true);
  });

  test('status port precedence: flag > PARITY_STATUS_PORT > spec > fixed default', () => {
    expect(resolveStatusPort('cdc', { flag: '7000', specPort: 7002, env: { PARITY_STATUS_PORT: '7001' } })).toEqual({
      port: 7000,
      source: 'flag',
    });
    expect(resolveStatusPort('cdc', { specPort: 7002, env: { PARITY_STATUS_PORT: '7001' } })).toEqual({ port: 7001, source: 'env' });
    expect(resolveStatusPort('cdc', { specPort: 7002, env: {} })).toEqual({ port: 7002, source: 'spec' });
    expect(resolveStatusPort('cdc', { env: {} })).toEqual({ port: 9401, source: 'default' });
    expect(resolveStatusPort('verify', { env: { PARITY_STATUS_PORT: '0' } })).toEqual({ port: 0, source: 'env' });
    expect(new Set(Object.values(STATUS_PORTS)).size).toBe(Object.keys(STATUS_PORTS).length);
  });

  test('a bad port names where it came from (exit 2)', () => {
    expect(() => resolveStatusPort('cache', { flag: 'http', env: {} })).toThrow(/--status-port must be a port number/);
    expect(() => resolveStatusPort('cache', { env: { PARITY_STATUS_PORT: '70000' } })).toThrow(/PARITY_STATUS_PORT must be a port number/);
    try {
      resolveStatusPort('cache', { flag: '-1', env: {} });
    } catch (err) {
      expect(err).toMatchObject({ code: 'PARITY_BAD_INPUT' });
    }
  });
});

describe('control commands against the spec limits', () => {
  const limits = { minBatchSize: 100, maxBatchSize: 5000, maxLagSeconds: 1.5 };
  test('inside the limits parse; outside are PARITY_BAD_INPUT naming the spec field', () => {
    expect(parseControlCommand(['set', 'batch-size=100'], limits)).toEqual({ kind: 'set-batch-size', size: 100 });
    expect(parseControlCommand(['set', 'max-lag=0.5'], limits)).toEqual({ kind: 'set-max-lag', seconds: 0.5 });
    expect(() => parseControlCommand(['set', 'batch-size=1000000'], limits)).toThrow(
      /outside the spec's limits 100\.\.5000 \(backfill.minBatchSize, backfill.maxBatchSize\)/,
    );
    expect(() => parseControlCommand(['set', 'batch-size=99'], limits)).toThrow(/outside the spec's limits/);
    expect(() => parseControlCommand(['set', 'max-lag=60'], limits)).toThrow(
      /above the spec's limit of 1.5 s \(backfill.throttle.maxLagSeconds\)/,
    );
  });
});
