/**
 * The replication connection's TLS in a worker thread (services/core/pg-tls-stream.ts, issue 16),
 * against a PostgreSQL with TLS on and scram-sha-256 (the secured stack's pg-source, started by this
 * test on a state dir and port of its own and stopped at the end; the shared stack is not touched):
 * - the CDC's ReplicationStream streams a backlog through the worker: every change arrives intact and
 *   in order; a consumer that stops taking messages stalls the walsender (nothing piles up in the
 *   connector) and the stream then carries on; stopping ends the worker thread;
 * - a paused transport holds at most its buffer and window, then delivers everything;
 * - the same faults fail with node-postgres' own messages and codes: an untrusted certificate, a
 *   host name the certificate does not name, a refused connection, a server without TLS;
 * - a process whose replication stream was stopped while its socket was paused exits by itself.
 */
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { subscribe, unsubscribe } from 'node:diagnostics_channel';
import { lookup } from 'node:dns/promises';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import type { Worker } from 'node:worker_threads';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type PgoutputMessage, ReplicationStream } from '../../../connectors/postgres-source/replication-stream.js';
import { NODE_FLAGS } from '../../../services/cli/node-flags.js';
import { silentLogger } from '../../../services/core/log.js';
import { WorkerTlsStream, workerTlsTransport } from '../../../services/core/pg-tls-stream.js';
import { type StackConfig, stackConfig, stackEnv } from '../../../services/stack/config.js';
import { stackDown, stackUp } from '../../../services/stack/stack.js';
import { STACK } from '../../support/stack.js';
import { STACK_SECURE } from '../../support/security.js';
import { ownStackEnv } from '../../support/own-stack.js';

const ROOT = fileURLToPath(new URL('../../../', import.meta.url));
// Below Linux's ephemeral range (32768-60999), clear of the other tests' own stacks.
const port = Number(process.env.PARITY_TEST_TLS_WORKER_PORT ?? 25900);
const dir = mkdtempSync(join(tmpdir(), 'parity-tls-worker-'));
const env = ownStackEnv(join(dir, 'state'), port);

let config: StackConfig;
/** The secured PostgreSQL: verify-full against the stack's CA. */
let url: string;
let otherCa: string;

/** Rows of the backlog: ~1 KB each, ~33 MB in all, more than loopback TCP's buffers can hold. */
const ROWS = 32_000;
const payload = (id: number) => createHash('md5').update(String(id)).digest('hex').repeat(32);
let backlogEnd: string;

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

async function sql<T extends pg.QueryResultRow>(text: string, values: unknown[] = []): Promise<T[]> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    return (await client.query<T>(text, values)).rows;
  } finally {
    await client.end();
  }
}

beforeAll(async () => {
  config = stackConfig(env, { secure: true });
  await stackUp({ services: ['pg-source'], replica: false }, config);
  url = stackEnv(stackConfig(env, { secure: true })).PARITY_SOURCE_URL;
  otherCa = join(config.stateDir, 'certs', 'other-ca.pem');
  await sql('CREATE TABLE IF NOT EXISTS tls_rows (id int PRIMARY KEY, payload text NOT NULL)');
  await sql('TRUNCATE tls_rows');
  await sql('DROP PUBLICATION IF EXISTS tls_pub');
  await sql('CREATE PUBLICATION tls_pub FOR TABLE tls_rows');
  // One slot per test, each created before the backlog is written: each streams all of it.
  for (const slot of ['tls_stream', 'tls_node', 'tls_exit']) {
    await sql('SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE slot_name = $1', [slot]);
    await sql("SELECT pg_create_logical_replication_slot($1, 'pgoutput')", [slot]);
  }
  // 16 transactions of 2,000 rows, written before anything streams: a backlog.
  for (let from = 1; from <= ROWS; from += 2_000)
    await sql(`INSERT INTO tls_rows SELECT g, repeat(md5(g::text), 32) FROM generate_series($1::int, $2::int) g`, [from, from + 1_999]);
  backlogEnd = (await sql<{ lsn: string }>('SELECT pg_current_wal_lsn()::text AS lsn'))[0]!.lsn;
}, 300_000);

afterAll(async () => {
  if (config) {
    await stackDown(['pg-source'], config);
    if (config.pgRoot.startsWith(tmpdir())) rmSync(config.pgRoot, { recursive: true, force: true });
  }
  rmSync(dir, { recursive: true, force: true });
}, 120_000);

/** Workers started while `fn` runs, and when each exited. */
async function watchWorkers<T>(fn: (workers: { worker: Worker; exited: boolean }[]) => Promise<T>): Promise<T> {
  const workers: { worker: Worker; exited: boolean }[] = [];
  const onWorker = (message: unknown) => {
    const entry = { worker: (message as { worker: Worker }).worker, exited: false };
    entry.worker.once('exit', () => {
      entry.exited = true;
    });
    workers.push(entry);
  };
  subscribe('worker_threads', onWorker);
  try {
    return await fn(workers);
  } finally {
    unsubscribe('worker_threads', onWorker);
  }
}

describe('the CDC replication stream over the worker transport', () => {
  it('streams the backlog intact and in order; a paused consumer stalls the walsender; stop ends the worker', async () => {
    const before = process.env.PARITY_REPLICATION_TLS;
    process.env.PARITY_REPLICATION_TLS = 'worker';
    try {
      await watchWorkers(async (workers) => {
        const ids: number[] = [];
        let corrupt = 0;
        let paused: { sent: [string, string]; ssl: boolean; maxQueued: number } | undefined;
        let done!: () => void;
        const all = new Promise<void>((resolve) => {
          done = resolve;
        });
        const stream: ReplicationStream = new ReplicationStream({
          connectionString: url,
          slot: 'tls_stream',
          publication: 'tls_pub',
          logger: silentLogger(),
          idle: () => true,
          onMessage: (message: PgoutputMessage) => {
            if (message.tag !== 'insert') return undefined;
            const id = Number(message.new[0]);
            ids.push(id);
            if (message.new[1] !== payload(id)) corrupt++;
            if (ids.length === ROWS) done();
            if (ids.length !== 2_000) return undefined;
            // Hold this message: the library pauses the socket, the worker's window fills, TLS stops
            // reading, TCP fills and the walsender waits: its sent position stops moving.
            return (async () => {
              stream.takeMaxQueued();
              const sentLsn = async () =>
                (
                  await sql<{ sent: string; ssl: boolean }>(
                    `SELECT r.sent_lsn::text AS sent, s.ssl FROM pg_stat_replication r JOIN pg_stat_ssl s USING (pid)
                      WHERE r.application_name = 'parity-cdc'`,
                  )
                )[0]!;
              await sleep(2_000);
              const first = await sentLsn();
              await sleep(1_500);
              const second = await sentLsn();
              paused = { sent: [first.sent, second.sent], ssl: first.ssl, maxQueued: stream.takeMaxQueued() };
            })();
          },
        });
        const running = stream.run();
        await Promise.race([all, running.then(() => undefined)]);
        await stream.stop();
        await running;

        expect(ids.length).toBe(ROWS);
        expect(ids.every((id, i) => id === i + 1)).toBe(true);
        expect(corrupt).toBe(0);
        expect(paused?.ssl).toBe(true);
        // The walsender was blocked short of the backlog's end while the consumer held a message.
        const [a, b] = paused!.sent;
        expect(a).toBe(b);
        const lsn = (text: string) => {
          const [hi, lo] = text.split('/');
          return (BigInt(`0x${hi}`) << 32n) + BigInt(`0x${lo}`);
        };
        expect(lsn(b)).toBeLessThan(lsn(backlogEnd));
        // What the connector held meanwhile: the transport's buffer and window, not the backlog.
        expect(paused!.maxQueued).toBeLessThan(ROWS / 4);
        // One worker, and it ended with the stream.
        expect(workers).toHaveLength(1);
        for (let i = 0; i < 100 && !workers[0]!.exited; i++) await sleep(100);
        expect(workers[0]!.exited).toBe(true);
      });
    } finally {
      if (before === undefined) delete process.env.PARITY_REPLICATION_TLS;
      else process.env.PARITY_REPLICATION_TLS = before;
    }
  });

  it('PARITY_REPLICATION_TLS=node-postgres streams without a worker', async () => {
    const before = process.env.PARITY_REPLICATION_TLS;
    process.env.PARITY_REPLICATION_TLS = 'node-postgres';
    try {
      await watchWorkers(async (workers) => {
        let seen = 0;
        let done!: () => void;
        const some = new Promise<void>((resolve) => {
          done = resolve;
        });
        const stream = new ReplicationStream({
          connectionString: url,
          slot: 'tls_node',
          publication: 'tls_pub',
          logger: silentLogger(),
          idle: () => true,
          onMessage: (message) => {
            if (message.tag === 'insert' && ++seen === 100) done();
            return undefined;
          },
        });
        const running = stream.run();
        await Promise.race([some, running.then(() => undefined)]);
        await stream.stop();
        await running;
        expect(seen).toBeGreaterThanOrEqual(100);
        expect(workers).toHaveLength(0);
      });
    } finally {
      if (before === undefined) delete process.env.PARITY_REPLICATION_TLS;
      else process.env.PARITY_REPLICATION_TLS = before;
    }
  });
});

describe('WorkerTlsStream', () => {
  it('a paused transport holds at most its buffer and window, then delivers every row', async () => {
    const t = workerTlsTransport(url)!;
    let socket: WorkerTlsStream | undefined;
    const client = new pg.Client({
      connectionString: t.connectionString,
      ssl: t.ssl,
      stream: () => {
        socket = t.stream() as WorkerTlsStream;
        return socket;
      },
    } as pg.ClientConfig);
    await client.connect();
    try {
      socket!.pause();
      const rows = client.query<{ id: number; payload: string }>('SELECT id, payload FROM tls_rows ORDER BY id');
      await sleep(2_000);
      // 256 KiB of readable buffer, 256 KiB of window, one chunk of slack; the result is ~33 MB.
      const held = socket!.readableLength;
      expect(held).toBeGreaterThan(0);
      expect(held).toBeLessThan(768 * 1024);
      socket!.resume();
      const result = await rows;
      expect(result.rows).toHaveLength(ROWS);
      expect(result.rows.every((r, i) => r.id === i + 1 && r.payload === payload(r.id))).toBe(true);
    } finally {
      await client.end();
    }
  });
});

/** The error of connecting `connectionString`, through node-postgres' TLS or the worker transport. */
async function connectError(connectionString: string, via: 'node-postgres' | 'worker'): Promise<Error & Record<string, unknown>> {
  const t = via === 'worker' ? workerTlsTransport(connectionString) : null;
  if (via === 'worker' && !t) throw new Error(`the worker transport does not take ${connectionString} over`);
  const settings: pg.ClientConfig & { replication: string } = {
    ...(t ? { connectionString: t.connectionString, ssl: t.ssl, stream: t.stream } : { connectionString }),
    replication: 'database',
    connectionTimeoutMillis: 10_000,
  };
  const client = new pg.Client(settings);
  client.on('error', () => undefined);
  try {
    await client.connect();
  } catch (err) {
    return err as Error & Record<string, unknown>;
  } finally {
    await client.end().catch(() => undefined);
  }
  throw new Error('the connection was accepted');
}

/** What a caller can see of an error: its message and its primitive properties. */
function visible(err: Error & Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = { name: err.name, message: err.message };
  for (const [key, value] of Object.entries(err)) if (value === null || typeof value !== 'object') out[key] = value;
  return out;
}

describe('the same faults fail as with node-postgres', () => {
  const withParams = (base: string, params: Record<string, string>) => {
    const u = new URL(base);
    for (const [k, v] of Object.entries(params)) u.searchParams.set(k, v);
    return u.toString();
  };

  it('an untrusted certificate (sslrootcert of another CA)', async () => {
    const wrongCa = withParams(url, { sslrootcert: otherCa });
    const theirs = await connectError(wrongCa, 'node-postgres');
    const ours = await connectError(wrongCa, 'worker');
    expect(theirs.code).toMatch(/SELF_SIGNED_CERT_IN_CHAIN|UNABLE_TO_VERIFY_LEAF_SIGNATURE/);
    expect(visible(ours)).toEqual(visible(theirs));
  });

  it('a host name the certificate does not name (verify-full checks it)', async (ctx) => {
    // The machine's own name, when it resolves to the loopback address PostgreSQL listens on; the
    // stack's certificate names 127.0.0.1 and localhost only.
    const name = hostname();
    const address = await lookup(name, { family: 4 }).then(
      (a) => a.address,
      () => undefined,
    );
    if (address !== '127.0.0.1' || name === 'localhost') ctx.skip();
    const u = new URL(url);
    u.hostname = name;
    const theirs = await connectError(u.toString(), 'node-postgres');
    const ours = await connectError(u.toString(), 'worker');
    expect(theirs.code).toBe('ERR_TLS_CERT_ALTNAME_INVALID');
    expect(visible(ours)).toEqual(visible(theirs));
  });

  it('a refused connection', async () => {
    const server = createServer();
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const free = (server.address() as { port: number }).port;
    await new Promise((resolve) => server.close(resolve));
    const u = new URL(url);
    u.port = String(free);
    const theirs = await connectError(u.toString(), 'node-postgres');
    const ours = await connectError(u.toString(), 'worker');
    expect(theirs.code).toBe('ECONNREFUSED');
    expect(visible(ours)).toEqual(visible(theirs));
  });

  it.skipIf(STACK_SECURE)('a server without TLS (the shared plaintext stack)', async () => {
    const plain = withParams(STACK.PARITY_SOURCE_URL, { sslmode: 'verify-full', sslrootcert: otherCa });
    const theirs = await connectError(plain, 'node-postgres');
    const ours = await connectError(plain, 'worker');
    expect(theirs.message).toBe('The server does not support SSL connections');
    expect(visible(ours)).toEqual(visible(theirs));
  });
});

describe('a stopped replication stream lets its process exit', () => {
  it('stopped from inside a handler (the socket paused), under the bin V8 flags: the process ends by itself', () => {
    const module = (path: string) => JSON.stringify(pathToFileURL(join(ROOT, path)).href);
    const script = `(async () => {
      const { ReplicationStream } = await import(${module('connectors/postgres-source/replication-stream.ts')});
      const { silentLogger } = await import(${module('services/core/log.ts')});
      let seen = 0;
      const stream = new ReplicationStream({
        connectionString: process.env.TLS_WORKER_URL, slot: 'tls_exit', publication: 'tls_pub',
        logger: silentLogger(), idle: () => true,
        onMessage: (m) => { if (m.tag === 'insert' && ++seen === 500) return stream.stop(); return undefined; },
      });
      await stream.run();
      console.log('stopped after', seen);
    })().catch((err) => { console.error(err); process.exitCode = 1; });`;
    // With the V8 flags parity's processes run with (a worker given them explicitly refuses them).
    const r = spawnSync(process.execPath, [...NODE_FLAGS, '--import', 'tsx', '-e', script], {
      cwd: ROOT,
      env: { ...process.env, TLS_WORKER_URL: url, PARITY_REPLICATION_TLS: 'worker' },
      encoding: 'utf8',
      timeout: 60_000,
    });
    expect(r.signal, r.stderr).toBeNull();
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/stopped after 5\d\d/);
  });
});
