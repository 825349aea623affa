/**
 * The three commands as a user runs them: `parity cache run` as a child process (status endpoints,
 * dead letters, SIGTERM), `parity cache cutover` (switch, refusal with exit 2, old keys remaining) and
 * `parity cache inspect` (exit 1 on a stale entry). Real Kafka, registry, Redis and PostgreSQL.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Redis } from 'ioredis';
import pg from 'pg';
import { encodePosition } from '../../../services/core/lsn.js';
import { deadLetterTopic } from '../../../services/core/topics.js';
import { parseEntry } from '../../../services/cache-versioner/entry.js';
import { cacheKeys } from '../../../services/cache-versioner/keys.js';
import { stackInfraOverrides, stackKafka } from '../../support/security.js';
import { STACK, createTestDatabase, uniqueName, type TestDatabase } from '../../support/stack.js';
import { writeTestSpec, type TestSpec } from '../../support/spec.js';
import { ORDERS_DDL, createTestStream, endOffsets, loadRows, orderRow, type Change, type TestStream } from './change-stream.js';
import { holdRedis } from './redis-outage-lock.js';

const BIN = fileURLToPath(new URL('../../../services/cli/bin/parity.js', import.meta.url));
const prefix = uniqueName('ccli');
const name = prefix.replace('_', '-');
const kafka = stackKafka('cache-cli-test');
const env = { ...process.env, ...STACK, PARITY_LOG_LEVEL: 'info' };
let db: TestDatabase;
let pool: pg.Pool;
let redis: Redis;
let stream: TestStream;
let spec: TestSpec;
let run: ChildProcess | null = null;

function parity(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [BIN, ...args], { env });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('exit', (code) => resolve({ code: code ?? -1, stdout, stderr }));
  });
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
async function waitFor<T>(what: string, probe: () => Promise<T | null | undefined | false>, timeoutMs = 60_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(150);
  }
}

const change = (id: number, version: number, lsn: bigint): Change => ({
  op: 'u',
  key: { id },
  before: null,
  after: orderRow(id, version),
  position: { commitLsn: lsn, ordinal: 0 },
  commitTimeUs: 0n,
});

let releaseRedis: (() => void) | undefined;

beforeAll(async () => {
  releaseRedis = await holdRedis();
  db = await createTestDatabase('source', 'ccli');
  pool = new pg.Pool({ connectionString: db.url, max: 2 });
  await pool.query(ORDERS_DDL('orders'));
  redis = new Redis(STACK.PARITY_REDIS_URL);
  stream = await createTestStream(kafka, prefix, 'orders');
  spec = writeTestSpec({
    name,
    'source.database': db.url,
    'cdc.slot': `${prefix}_slot`,
    'cdc.publication': `${prefix}_pub`,
    'cdc.topicPrefix': prefix,
    'cache.keys': { v1: `${prefix}:order:v1:{id}`, v2: `${prefix}:order:v2:{id}` },
    ...stackInfraOverrides(),
  });
});

afterAll(async () => {
  if (run && run.exitCode === null) run.kill('SIGKILL');
  const keys = cacheKeys(name);
  await redis?.del(keys.config, keys.audit);
  redis?.disconnect();
  await stream?.close();
  const admin = kafka.admin();
  await admin.deleteTopics({ topics: [deadLetterTopic(prefix, 'cache', name)] }).catch(() => undefined);
  await admin.close();
  await pool?.end();
  await db?.drop();
  releaseRedis?.();
});

describe('parity cache commands', () => {
  it('runs, cuts over, refuses a stale cutover, dead-letters garbage and inspects, as CLI commands', async () => {
    run = spawn(process.execPath, [BIN, 'cache', 'run', '--spec', spec.path, '--status-port', '0'], { env });
    let runErr = '';
    run.stderr?.on('data', (d: Buffer) => (runErr += d.toString()));
    const exited = new Promise<number | null>((resolve) => run?.on('exit', (code) => resolve(code)));

    await stream.send(
      Array.from({ length: 10 }, (_, i) => change(i + 1, 1, 0x1000n + BigInt(i))),
      'orders',
    );
    await stream.sendRaw(Buffer.from('not a registry-framed change event'));
    await waitFor(
      'v2 entries',
      async () => (await redis.exists(...Array.from({ length: 10 }, (_, i) => `${prefix}:order:v2:${i + 1}`))) === 10,
    );
    expect(await redis.exists(`${prefix}:order:v1:10`)).toBe(1);

    const statusUrl = await waitFor('the status server line', async () => /"status":"(http:[^"]+)"/.exec(runErr)?.[1]);
    const health = await fetch(`${statusUrl}/healthz`);
    expect(health.status).toBe(200);
    expect(await health.json()).toMatchObject({ ok: true, status: 'consuming' });
    const metrics = await waitFor('dead-letter metric', async () => {
      const text = await (await fetch(`${statusUrl}/metrics`)).text();
      return /parity_cache_dead_letters_total\{[^}]*\} 1/.test(text) && text;
    });
    expect(metrics).toMatch(/parity_cache_updates_applied_total\{[^}]*version="v2"[^}]*\} 10/);
    const dlq = await endOffsets(stream.admin, deadLetterTopic(prefix, 'cache', name));
    expect([...dlq.values()].reduce((a, b) => a + b, 0n)).toBe(1n);

    // Cut over to v2 only: reported, audited, and v1 stops being written.
    const cut = await parity(['cache', 'cutover', '--spec', spec.path, '--to', 'v2']);
    expect(cut.code, cut.stderr).toBe(0);
    const report = JSON.parse(cut.stdout) as {
      current: { read: string; populate: string[] };
      stoppedPopulating: string[];
      remaining: Array<{ version: string; estimate: number }>;
    };
    expect(report.current).toEqual({ read: 'v2', populate: ['v2'] });
    expect(report.stoppedPopulating).toEqual(['v1']);
    expect(report.remaining.find((r) => r.version === 'v1')?.estimate).toBe(10);
    expect(cut.stderr).toMatch(/old keys remaining: v1 ~10/);
    await sleep(1500);
    await stream.send([change(1, 2, 0x2000n)], 'orders');
    const v2 = await waitFor('v2:1 to take the change', async () => {
      const e = parseEntry(`${prefix}:order:v2:1`, await redis.hgetall(`${prefix}:order:v2:1`));
      return e?.position === encodePosition({ commitLsn: 0x2000n, ordinal: 0 }) && e;
    });
    expect(v2.kind).toBe('value');
    expect(parseEntry(`${prefix}:order:v1:1`, await redis.hgetall(`${prefix}:order:v1:1`))?.position).toBe(
      encodePosition({ commitLsn: 0x1000n, ordinal: 0 }),
    );

    const refused = await parity(['cache', 'cutover', '--spec', spec.path, '--to', 'v1']);
    expect(refused.code).toBe(2);
    expect(refused.stderr).toMatch(/PARITY_BAD_INPUT: cutover to v1 refused: v1 is not populated now/);
    const badFlag = await parity(['cache', 'cutover', '--spec', spec.path, '--to', 'v9']);
    expect(badFlag.code).toBe(2);
    expect(badFlag.stderr).toMatch(/version "v9" has no key template/);

    // The database holds what the stream said, except row 3, which changed without an event.
    await loadRows(pool, 'orders', [orderRow(1, 2), ...Array.from({ length: 9 }, (_, i) => orderRow(i + 2, 1))]);
    await pool.query(`UPDATE orders SET currency = 'CHF' WHERE id = 3`);
    const inspect = await parity(['cache', 'inspect', '--spec', spec.path, '--sample', '50', '--grace-ms', '300']);
    expect(inspect.code, inspect.stderr).toBe(1);
    const found = JSON.parse(inspect.stdout) as { sampled: number; stale: number; staleEntries: Array<{ key: string }> };
    expect(found).toMatchObject({ sampled: 10, stale: 1 });
    expect(found.staleEntries.map((s) => s.key)).toEqual([`${prefix}:order:v2:3`]);

    run.kill('SIGTERM');
    expect(await exited).toBe(0);
  });
});
