/**
 * What the reverse-sync tests share: a spec written to a file (the CLI child reads it), the phase
 * set to ramp, the reverse sync as a child process (so it can be SIGKILLed), a writer that follows the
 * cohort's write flag with a per-key sequence, and waits on the applied position.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { type AddressInfo, createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Redis } from 'ioredis';
import type pg from 'pg';
import { stringify } from 'yaml';
import { createFlagStore, type FlagStore } from '../../../services/coordinator/flag-store.js';
import { loadPhases, phasesTable } from '../../../services/coordinator/phase-store.js';
import { createRedis } from '../../../services/core/clients.js';
import { parseLsn } from '../../../services/core/lsn.js';
import { type LoadedSpec, parseSpec } from '../../../services/core/spec.js';
import { reconcilerVerifyReverse } from '../../../services/cli/reverse-verify.js';
import { silentLogger } from '../../../services/core/log.js';
import { createMetricsRegistry } from '../../../services/core/metrics.js';
import { type WindowCheck, checkWindow } from '../../../services/reverse-sync/window-evidence.js';
import { readPosition } from '../../../services/reverse-sync/window-store.js';
import { KAFKA_BROKERS, STACK, uniqueName } from '../../support/stack.js';

const ROOT = fileURLToPath(new URL('../../..', import.meta.url));
export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export interface WrittenSpec extends LoadedSpec {
  path: string;
}

export function writeSpec(doc: Record<string, unknown>): WrittenSpec {
  const full = {
    apiVersion: 'parity/v1',
    infra: { kafka: { brokers: KAFKA_BROKERS }, registry: { url: STACK.PARITY_REGISTRY_URL }, redis: { url: STACK.PARITY_REDIS_URL } },
    reconcile: { segmentRows: 400, bisectionThreshold: 25, settleMs: 300 },
    ...doc,
  };
  const text = stringify(full);
  const path = join(mkdtempSync(join(tmpdir(), 'parity-reverse-')), 'spec.yaml');
  writeFileSync(path, text);
  return { ...parseSpec(text, path, {}), path };
}

/** The migration every reverse-sync test runs: `orders.total_amount` -> `total_amount_minor` and `currency`. */
export const ORDERS_MAPPING = { total_amount_minor: 'total_amount::bigint', currency: "'USD'::text" };

/** Its way back: USD rows only (others are unrepresentable in the old shape). */
export const ORDERS_REVERSE = {
  mapping: { total_amount: "CASE WHEN currency = 'USD' THEN total_amount_minor::integer END" },
  representable: "currency = 'USD'",
};

/** The old table `public.orders` with keys 1..`rows`, each holding `amount` (an SQL expression over the key `g`). */
export function ordersTableSql(rows: number, amount: 'g' | '0' = '0'): string {
  return `CREATE TABLE public.orders (id int PRIMARY KEY, total_amount int);
    INSERT INTO public.orders SELECT g, ${amount} FROM generate_series(1, ${rows}) g`;
}

/** The new table `public.orders_v2` with keys 1..`rows`, each holding `amount` USD minor units. */
export function ordersV2TableSql(rows: number, amount: 'g' | '0' = '0'): string {
  return `CREATE TABLE public.orders_v2 (id int PRIMARY KEY, total_amount_minor bigint, currency text);
    INSERT INTO public.orders_v2 SELECT g, ${amount}, 'USD' FROM generate_series(1, ${rows}) g`;
}

/**
 * A spec of the orders migration, written to a file: a unique name (from `prefix`) that also names its
 * slot, publication and topics, key `id`, {@link ORDERS_MAPPING} and {@link ORDERS_REVERSE}; `doc` adds
 * the source, the target and anything else, and overrides any of these.
 */
export function ordersSpec(prefix: string, doc: Record<string, unknown>): WrittenSpec {
  const name = uniqueName(prefix).replace(/_/g, '-');
  const slot = name.replace(/-/g, '_');
  return writeSpec({
    name,
    key: ['id'],
    mapping: ORDERS_MAPPING,
    reverse: ORDERS_REVERSE,
    cdc: { slot, publication: slot, topicPrefix: name },
    ...doc,
  });
}

/** Puts every cohort's phase at ramp (reads on the new path), as the coordinator would after its gates. */
export async function phasesAtRamp(pool: pg.Pool, loaded: LoadedSpec): Promise<void> {
  const { spec } = loaded;
  await loadPhases(pool, spec.control.schema, spec.name, spec.cohorts, 'test');
  await pool.query(`UPDATE ${phasesTable(spec.control.schema)} SET phase = 'ramp' WHERE migration = $1`, [spec.name]);
}

/**
 * One window check (reverse segment verification, stream counts, evidence), as `reverse-sync check`
 * runs it. `old` holds the window, `control` the evidence, `newSide` the reverse slot (default `old`).
 */
export function reverseCheck(loaded: LoadedSpec, dbs: { old: pg.Pool; control?: pg.Pool; newSide?: pg.Pool }): Promise<WindowCheck> {
  return checkWindow(
    loaded.spec,
    { old: dbs.old, control: dbs.control ?? dbs.old, ...(dbs.newSide ? { new: dbs.newSide } : {}) },
    reconcilerVerifyReverse(loaded, { logger: silentLogger(), registry: createMetricsRegistry({ defaultMetrics: false }) }),
  );
}

/** Every seventh write of a key deletes it; the next one inserts it again (shadow-table and cross-database writers). */
export const deletes = (seq: number): boolean => seq % 7 === 0;

/** Upserts `seq` into the new table `public.orders_v2`, or deletes the key when `deletes(seq)`. */
export async function upsertNew(db: pg.Pool, key: number, seq: number): Promise<void> {
  if (deletes(seq)) await db.query('DELETE FROM public.orders_v2 WHERE id = $1', [key]);
  else
    await db.query(
      `INSERT INTO public.orders_v2 (id, total_amount_minor, currency) VALUES ($1, $2, 'USD')
       ON CONFLICT (id) DO UPDATE SET total_amount_minor = EXCLUDED.total_amount_minor, currency = 'USD'`,
      [key, seq],
    );
}

/** Upserts `seq` into the old table `public.orders`, or deletes the key when `deletes(seq)` (a writer before cutover). */
export async function upsertOld(db: pg.Pool, key: number, seq: number): Promise<void> {
  if (deletes(seq)) await db.query('DELETE FROM public.orders WHERE id = $1', [key]);
  else
    await db.query(
      'INSERT INTO public.orders (id, total_amount) VALUES ($1, $2) ON CONFLICT (id) DO UPDATE SET total_amount = EXCLUDED.total_amount',
      [key, seq],
    );
}

/**
 * The old table `public.orders` holds, for each key the writer wrote, its last sequence number, or
 * no row when that write deleted it; returns what differs (empty: nothing lost).
 */
export async function oldTableDifferences(old: pg.Pool, writer: FlagFollowingWriter, keys: number[]): Promise<string[]> {
  const { rows } = await old.query('SELECT id, total_amount FROM public.orders');
  const have = new Map(rows.map((r) => [r.id as number, r.total_amount as number]));
  const wrong: string[] = [];
  for (const key of keys) {
    const seq = writer.last.get(key);
    if (seq === undefined) continue;
    const want = deletes(seq) ? undefined : seq;
    if (have.get(key) !== want) wrong.push(`${key}: old ${have.get(key)}, expected ${want ?? 'absent'}`);
  }
  return wrong;
}

export interface ReverseProcess {
  child: ChildProcess;
  output: () => string;
  exited: Promise<number | null>;
}

/** `parity reverse-sync run` as a child (its status server on any free port unless `extra` names one); resolves once it streams. */
export async function startReverseSync(specPath: string, extra: string[] = []): Promise<ReverseProcess> {
  const child = spawn(
    process.execPath,
    [
      join(ROOT, 'services/cli/bin/parity.js'),
      'reverse-sync',
      'run',
      '--spec',
      specPath,
      ...(extra.includes('--status-port') ? [] : ['--status-port', '0']),
      ...extra,
    ],
    { env: { ...process.env, PARITY_LOG_LEVEL: 'info' }, stdio: ['ignore', 'pipe', 'pipe'] },
  );
  let out = '';
  child.stdout?.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr?.on('data', (d: Buffer) => (out += d.toString()));
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  const deadline = Date.now() + 30_000;
  while (!out.includes('reverse sync streaming')) {
    if (child.exitCode !== null) throw new Error(`reverse sync exited ${child.exitCode}:\n${out}`);
    if (Date.now() > deadline) throw new Error(`reverse sync did not start streaming:\n${out}`);
    await sleep(50);
  }
  return { child, output: () => out, exited };
}

/**
 * Waits until reverse sync has applied every transaction committed so far (its position passes the WAL end now).
 * `pool` holds the window (the source database); `wal` is the database reverse sync streams (cross-database: the target).
 */
export async function waitForApplied(pool: pg.Pool, loaded: LoadedSpec, timeoutMs = 30_000, wal: pg.Pool = pool): Promise<void> {
  // A marker transaction gives the stream something to commit past, even when the table is quiet.
  const { rows } = await wal.query(`SELECT pg_logical_emit_message(true, 'parity.reverse.flip', $1)::text AS lsn`, [loaded.spec.name]);
  const target = parseLsn(rows[0].lsn);
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const p = await readPosition(pool, loaded.spec.control.schema, loaded.spec.name);
    if (p && p.commitLsn >= target) return;
    if (Date.now() > deadline)
      throw new Error(`reverse sync did not reach ${rows[0].lsn} (at ${p ? p.commitLsn.toString(16) : 'nothing'})`);
    await sleep(50);
  }
}

export interface Ack {
  key: number;
  seq: number;
  path: 'new' | 'old';
}

/**
 * Writers that follow the cohort's `write` flag (cached for 100 ms, like an application's flags
 * client): write=new writes the new representation only; write=old dual-writes, as before cutover.
 * Keys are split between workers, so each key's writes are sequential and its sequence only rises.
 */
export class FlagFollowingWriter {
  readonly acks: Ack[] = [];
  readonly last = new Map<number, number>();
  private running = false;
  private workers: Promise<void>[] = [];
  private readonly flags: FlagStore;
  private readonly cache = new Map<string, { at: number; write: 'old' | 'new' }>();
  private seq = 0;
  private failure: unknown = null;

  constructor(
    private readonly pool: pg.Pool,
    private readonly options: {
      migration: string;
      keys: number[];
      cohortOf: (key: number) => string;
      writeNew: (db: pg.Pool, key: number, seq: number) => Promise<void>;
      writeOld: (db: pg.Pool, key: number, seq: number) => Promise<void>;
      workers?: number;
    },
  ) {
    this.redis = createRedis(STACK.PARITY_REDIS_URL);
    this.flags = createFlagStore({ redis: this.redis, migration: options.migration });
  }

  private readonly redis: Redis;

  private async path(cohort: string): Promise<'old' | 'new'> {
    const hit = this.cache.get(cohort);
    if (hit && Date.now() - hit.at < 100) return hit.write;
    const write = (await this.flags.read(cohort || undefined)).flags.write;
    this.cache.set(cohort, { at: Date.now(), write });
    return write;
  }

  start(): void {
    this.running = true;
    const n = this.options.workers ?? 3;
    for (let w = 0; w < n; w++) {
      const mine = this.options.keys.filter((_, i) => i % n === w);
      this.workers.push(
        (async () => {
          while (this.running && !this.failure) {
            const key = mine[Math.floor(Math.random() * mine.length)]!;
            const seq = ++this.seq;
            const path = await this.path(this.options.cohortOf(key));
            if (path === 'new') await this.options.writeNew(this.pool, key, seq);
            else await this.options.writeOld(this.pool, key, seq);
            this.acks.push({ key, seq, path });
            this.last.set(key, seq);
          }
        })().catch((err: unknown) => {
          this.failure = err;
        }),
      );
    }
  }

  /** Stops the writers; throws the first write that failed (the test must not pass on a broken writer). */
  async stop(): Promise<void> {
    this.running = false;
    await Promise.all(this.workers);
    this.workers = [];
    if (this.failure) throw this.failure;
  }

  async close(): Promise<void> {
    await this.stop();
    this.redis.disconnect();
  }
}

/** A TCP port free right now (for a child's status server whose URL the test must know). */
export async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}
