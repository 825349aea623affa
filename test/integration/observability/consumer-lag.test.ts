/**
 * Consumer-lag readiness of the consumer-group services, as an operator runs them: `parity cdc run`,
 * `parity cache run` and `parity reconcile` as child processes on the shared stack, with
 * `status.readyMaxLagMessages` set low. The consumers start on the snapshot's backlog, then are
 * frozen (SIGSTOP) while a burst of changes reaches their topic; both times `/readyz` must answer 503
 * "lagging: N messages behind (max M)" while they work through it and 200 once caught up, and the
 * lag gauges must carry their `topic` label in `/metrics`.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import { Redis } from 'ioredis';
import { stringify } from 'yaml';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestDatabase, KAFKA_BROKERS, STACK, uniqueName, type TestDatabase } from '../../support/stack.js';

const ROOT = fileURLToPath(new URL('../../..', import.meta.url));
const BIN = join(ROOT, 'services/cli/bin/parity.js');
const prefix = uniqueName('lag');
const name = prefix.replace('_', '-');
const ROWS = 20_000;
const MAX_LAG = 100;

interface Proc {
  job: string;
  child: ChildProcess;
  out: string;
  err: string;
  url?: string;
}

const procs: Proc[] = [];
let db: TestDatabase;
let dir: string;
let specFile: string;

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function waitFor<T>(
  what: string,
  probe: () => Promise<T | null | undefined | false>,
  timeoutMs = 120_000,
  everyMs = 200,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value) return value;
    if (Date.now() > deadline)
      throw new Error(`timed out waiting for ${what}\n${procs.map((p) => `--- ${p.job} stderr:\n${p.err.slice(-2000)}`).join('\n')}`);
    await sleep(everyMs);
  }
}

function start(job: string, args: string[]): Proc {
  const child = spawn(process.execPath, [BIN, ...args, '--spec', specFile, '--status-port', '0'], {
    cwd: ROOT,
    env: { ...process.env, ...STACK, PARITY_LOG_LEVEL: 'info' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const p: Proc = { job, child, out: '', err: '' };
  child.stdout!.on('data', (d: Buffer) => (p.out += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (p.err += d.toString()));
  procs.push(p);
  return p;
}

/** The status URL a process announced at start-up. */
async function statusUrl(p: Proc): Promise<string> {
  p.url = await waitFor(`the ${p.job} status URL`, async () => {
    const text = p.out + p.err;
    return /"status":"(http:\/\/[^"]+)"/.exec(text)?.[1] ?? /"metrics":"(http:\/\/[^"]+)\/metrics"/.exec(text)?.[1];
  });
  return p.url;
}

/**
 * GET with a retry on a reset connection: a keep-alive connection opened before SIGSTOP may be closed
 * by the server's idle timer as the process resumes, while the client reuses it.
 */
async function get(url: string): Promise<Response> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await fetch(url, { signal: AbortSignal.timeout(5_000) });
    } catch (err) {
      if (attempt >= 3) throw err;
      await sleep(50);
    }
  }
}

async function probe(url: string, path: string): Promise<{ status: number; body: any }> {
  const res = await get(`${url}${path}`);
  return { status: res.status, body: await res.json() };
}

async function metricsText(p: Proc): Promise<string> {
  return (await get(`${p.url}/metrics`)).text();
}

async function ready(p: Proc): Promise<boolean> {
  return (await probe(p.url!, '/readyz').catch(() => ({ status: 0 }))).status === 200;
}

/** A gauge's samples in a /metrics text: labels text -> value. */
function samples(text: string, metric: string): Map<string, number> {
  const out = new Map<string, number>();
  for (const m of text.matchAll(new RegExp(`^${metric}\\{([^}]*)\\} (\\S+)$`, 'gm'))) out.set(m[1]!, Number(m[2]));
  return out;
}

beforeAll(async () => {
  db = await createTestDatabase('source', 'lag');
  const c = new pg.Client({ connectionString: db.url });
  await c.connect();
  await c.query(
    `CREATE TABLE public.orders (id bigint PRIMARY KEY, customer_id int NOT NULL, total_amount int NOT NULL, total_amount_minor bigint, currency text)`,
  );
  await c.query(
    `INSERT INTO public.orders (id, customer_id, total_amount, total_amount_minor, currency) SELECT g, g % 97, g * 3, g * 3, 'USD' FROM generate_series(1, ${ROWS}) g`,
  );
  await c.end();
  dir = mkdtempSync(join(tmpdir(), 'parity-lag-'));
  specFile = join(dir, 'spec.yaml');
  writeFileSync(
    specFile,
    stringify({
      apiVersion: 'parity/v1',
      name,
      source: { database: db.url, table: 'orders' },
      target: { kind: 'same-table' },
      key: ['id'],
      mapping: { total_amount_minor: 'total_amount::bigint', currency: `'USD'::text` },
      infra: { kafka: { brokers: KAFKA_BROKERS }, registry: { url: STACK.PARITY_REGISTRY_URL }, redis: { url: STACK.PARITY_REDIS_URL } },
      cdc: { slot: prefix, publication: `${prefix}_pub`, topicPrefix: prefix, format: 'avro', heartbeatIntervalSeconds: 1, partitions: 1 },
      cache: { keys: { v1: `${prefix}:order:v1:{id}`, v2: `${prefix}:order:v2:{id}` }, populate: ['v1', 'v2'], read: 'v2' },
      status: { readyMaxLagMessages: { cache: MAX_LAG, reconcile: MAX_LAG } },
    }),
  );
  const cdc = start('cdc', ['cdc', 'run']);
  await statusUrl(cdc);
  // Streaming (the snapshot of the rows is in Kafka) before the consumers start.
  await waitFor('CDC ready', () => ready(cdc), 180_000);
}, 300_000);

afterAll(async () => {
  for (const p of [...procs].reverse()) {
    if (p.child.exitCode === null) {
      p.child.kill('SIGCONT');
      p.child.kill('SIGTERM');
      await Promise.race([new Promise((r) => p.child.once('exit', r)), sleep(15_000)]);
      if (p.child.exitCode === null) p.child.kill('SIGKILL');
    }
  }
  const redis = new Redis(STACK.PARITY_REDIS_URL);
  let cursor = '0';
  do {
    const [next, keys] = await redis.scan(cursor, 'MATCH', `${prefix}:*`, 'COUNT', 1000);
    cursor = next;
    if (keys.length) await redis.del(...keys);
  } while (cursor !== '0');
  redis.disconnect();
  await db?.drop();
  if (dir) rmSync(dir, { recursive: true, force: true });
}, 120_000);

const LAG_METRIC: Record<string, string> = {
  cache: 'parity_cache_consumer_lag_messages',
  reconcile: 'parity_reconcile_consumer_lag_messages',
};

/**
 * Polls `/readyz` of `p` every few ms until it answers 200 after some 503s; at least one 503 must be
 * "lagging: N messages behind (max M)" with N above the limit, and the lag gauge read right after
 * the first one must say the same under its topic label.
 */
async function lagThenReady(p: Proc): Promise<void> {
  const metric = LAG_METRIC[p.job]!;
  const reasons: string[] = [];
  let lagSample: Map<string, number> | null = null;
  let final: unknown = null;
  for (const deadline = Date.now() + 180_000; Date.now() < deadline && final === null; ) {
    const r = await probe(p.url!, '/readyz').catch(() => ({ status: 0, body: null as any }));
    if (r.status === 503) {
      reasons.push(r.body.reason);
      if (!lagSample && r.body.status === 'lagging') lagSample = samples(await metricsText(p), metric);
    } else if (r.status === 200 && reasons.length > 0) final = r.body;
    await sleep(10);
  }
  const summary = `${p.job}: 503 reasons ${[...new Set(reasons.map((x) => x.replace(/\d+/g, 'N')))].join(' | ')}`;
  expect(final, `${summary}\n${p.err.slice(-2000)}`).toEqual({ ready: true, status: 'consuming' });
  const lagging = reasons.filter((reason) => reason.startsWith('lagging:'));
  expect(lagging.length, summary).toBeGreaterThan(0);
  for (const reason of lagging) {
    const m = /^lagging: (\d+) messages behind \(max (\d+)\)$/.exec(reason);
    expect(m, reason).not.toBeNull();
    expect(Number(m![1])).toBeGreaterThan(MAX_LAG);
    expect(Number(m![1])).toBeLessThanOrEqual(ROWS);
    expect(Number(m![2])).toBe(MAX_LAG);
  }
  const values = [...lagSample!.entries()];
  expect(values.length, p.job).toBe(1);
  expect(values[0]![0]).toContain(`topic="${prefix}.public.orders"`);
  expect(values[0]![1]).toBeGreaterThan(MAX_LAG);
}

describe('consumer-lag readiness', () => {
  it('answers 503 "lagging" while a consumer works through a backlog or a burst, and 200 once caught up', async () => {
    const [cdc] = procs as [Proc];
    // Started on the snapshot's backlog (a new group reads from the start): lagging, then ready.
    const cache = start('cache', ['cache', 'run']);
    const reconcile = start('reconcile', ['reconcile']);
    await Promise.all([statusUrl(cache), statusUrl(reconcile)]);
    await Promise.all([lagThenReady(cache), lagThenReady(reconcile)]);
    for (const [p, metric] of [
      [cache, 'parity_cache_consumer_lag_messages'],
      [reconcile, 'parity_reconcile_consumer_lag_messages'],
    ] as const) {
      // Ready means measured: the gauge has its sample (at most MAX_LAG) from the first end-offset read on.
      // Then the gauge reaches 0.
      const first = [...samples(await metricsText(p), metric).entries()];
      expect(first.length, p.job).toBe(1);
      expect(first[0]![0], p.job).toContain(`topic="${prefix}.public.orders"`);
      expect(first[0]![1], p.job).toBeLessThanOrEqual(MAX_LAG);
      await waitFor(`${p.job} lag gauge at 0 after the snapshot`, async () => {
        const values = [...samples(await metricsText(p), metric).values()];
        return values.length === 1 && values[0] === 0;
      });
    }

    const acked = async () => (await probe(cdc.url!, '/healthz')).body.details.eventsAcked as number;
    const before = await acked();
    cache.child.kill('SIGSTOP');
    reconcile.child.kill('SIGSTOP');
    try {
      const w = new pg.Client({ connectionString: db.url });
      await w.connect();
      await w.query(`UPDATE public.orders SET total_amount = total_amount + 1, total_amount_minor = total_amount_minor + 1`);
      await w.end();
      // The whole burst is in Kafka (acknowledged) before the consumers wake up.
      await waitFor('the burst acknowledged by Kafka', async () => (await acked()) >= before + ROWS, 20_000, 100);
    } finally {
      cache.child.kill('SIGCONT');
      reconcile.child.kill('SIGCONT');
    }

    // Each consumer, polled often: 503 "lagging" while it works through the burst, then 200.
    await Promise.all([lagThenReady(cache), lagThenReady(reconcile)]);
    // Caught up: the gauges went back to 0 (the age gauge is there too), and no change was a mismatch.
    for (const [p, metric] of [
      [cache, 'parity_cache_consumer_lag_messages'],
      [reconcile, 'parity_reconcile_consumer_lag_messages'],
    ] as const) {
      await waitFor(`${p.job} lag gauge back to 0`, async () => {
        const values = [...samples(await metricsText(p), metric).values()];
        return values.length === 1 && values[0] === 0;
      });
      const text = await metricsText(p);
      expect(text).toMatch(new RegExp(`^${metric.replace('_messages', '_seconds')}\\{topic="${prefix}\\.public\\.orders"`, 'm'));
    }
    const verified = await probe(reconcile.url!, '/healthz');
    expect(verified.body.details.mismatches).toBe(0);
  }, 420_000);
});
