/**
 * Fixtures for the backfill integration tests: an `orders` table like the worked example, specs
 * written both as objects (programmatic runs) and as files (CLI runs), the CLI as a child process,
 * and invariant checks over the checkpoint log.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import { parseSpec, type Spec } from '../../../services/core/spec.js';

export const ROOT = fileURLToPath(new URL('../../..', import.meta.url));

export interface OrdersOptions {
  rows: number;
  /** Leave out the primary key (the "no index on the key" case). */
  noKeyIndex?: boolean;
}

/**
 * `public.<table>(id bigint PK, customer_id, total_amount int, status, total_amount_minor bigint,
 * currency text)`. Always in `public`: the stack's role is named `parity` like the control schema, so
 * once that schema exists, an unqualified CREATE TABLE would land in it (search_path "$user", public).
 */
export async function createOrders(url: string, options: OrdersOptions, name = 'orders'): Promise<void> {
  const table = `public.${name}`;
  const c = new pg.Client({ connectionString: url });
  await c.connect();
  try {
    await c.query(`CREATE TABLE ${table} (
      id bigint NOT NULL ${options.noKeyIndex ? '' : 'PRIMARY KEY'},
      customer_id integer NOT NULL,
      total_amount integer NOT NULL,
      status text NOT NULL DEFAULT 'paid',
      total_amount_minor bigint,
      currency text)`);
    await c.query(
      `INSERT INTO ${table} (id, customer_id, total_amount) SELECT g, g % 997, ((g::bigint * 7919) % 100000)::int FROM generate_series(1, $1) g`,
      [options.rows],
    );
    await c.query(`ANALYZE ${table}`);
  } finally {
    await c.end();
  }
}

export interface SpecOptions {
  name: string;
  sourceUrl: string;
  table?: string;
  target?: string;
  mapping?: Record<string, string>;
  key?: string[];
  control?: string;
  backfill?: string;
  /** Functions the spec's SQL may call although parity refuses them by default (e.g. pg_sleep to slow a probe). */
  allowFunctions?: string[];
}

/** A spec as YAML text; `backfill` is an indented YAML block placed under `backfill:`. */
export function specYaml(o: SpecOptions): string {
  const mapping = o.mapping ?? { total_amount_minor: 'total_amount::bigint', currency: "'USD'::text" };
  return [
    'apiVersion: parity/v1',
    `name: ${o.name}`,
    'source:',
    `  database: ${o.sourceUrl}`,
    `  table: ${o.table ?? 'orders'}`,
    'target:',
    o.target ?? '  kind: same-table',
    `key: [${(o.key ?? ['id']).join(', ')}]`,
    'mapping:',
    ...Object.entries(mapping).map(([k, v]) => `  ${k}: ${JSON.stringify(v)}`),
    ...(o.allowFunctions ? [`allowFunctions: [${o.allowFunctions.join(', ')}]`] : []),
    ...(o.control ? ['control:', o.control] : []),
    'infra:',
    '  kafka: { brokers: ["127.0.0.1:19092"] }',
    '  registry: { url: "http://127.0.0.1:18081/apis/ccompat/v7" }',
    '  redis: { url: "redis://127.0.0.1:16379" }',
    'cdc:',
    `  slot: ${o.name.replace(/-/g, '_')}_slot`,
    `  publication: ${o.name.replace(/-/g, '_')}_pub`,
    '  topicPrefix: test',
    ...(o.backfill ? ['backfill:', o.backfill] : []),
    '',
  ].join('\n');
}

export function makeSpec(o: SpecOptions): { spec: Spec; file: string } {
  const text = specYaml(o);
  const dir = mkdtempSync(join(tmpdir(), 'parity-backfill-'));
  const file = join(dir, `${o.name}.yaml`);
  writeFileSync(file, text);
  return { spec: parseSpec(text, file).spec, file };
}

/** Rows whose new columns differ from the mapping of their old columns (0 when exact). */
export async function mismatches(db: pg.ClientBase, table = 'orders'): Promise<number> {
  const { rows } = await db.query(
    `SELECT count(*)::int AS n FROM ${table} WHERE (total_amount_minor, currency) IS DISTINCT FROM (total_amount::bigint, 'USD'::text)`,
  );
  return rows[0].n;
}

export interface CliRun {
  child: ChildProcess;
  stdout: () => string;
  stderr: () => string;
  exit: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  /** SIGKILL to the whole process group (the CLI and anything it started). */
  kill(): void;
}

/** Runs the built `parity` CLI (services/cli/bin/parity.js, as `npx parity` would) in its own process group. */
export function cli(args: string[], env: NodeJS.ProcessEnv = {}): CliRun {
  const child = spawn(process.execPath, [join(ROOT, 'services', 'cli', 'bin', 'parity.js'), ...args], {
    cwd: ROOT,
    env: { ...process.env, PARITY_LOG_LEVEL: 'info', ...env },
    detached: true,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  let err = '';
  child.stdout?.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr?.on('data', (d: Buffer) => (err += d.toString()));
  const exit = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.on('exit', (code, signal) => resolve({ code, signal })),
  );
  return {
    child,
    stdout: () => out,
    stderr: () => err,
    exit,
    kill: () => {
      try {
        process.kill(-(child.pid as number), 'SIGKILL');
      } catch {
        // Already gone.
      }
    },
  };
}

export interface LoggedBatch {
  rangeNo: number;
  batchNo: number;
  lo: string[] | null;
  hi: string[];
  rows: number;
  worker: string;
}

export interface LogAudit {
  batches: number;
  rows: number;
  /** Batches whose key interval overlaps an earlier batch of the same range: work done twice. */
  redone: number;
  /** Places where a range's batches do not continue exactly where the previous one ended. */
  gaps: number;
  /** Ranges whose batches came from more than one worker. */
  rangesWithSeveralWorkers: number;
}

const cmp = (a: string[], b: string[]): number => {
  for (let i = 0; i < a.length; i++) {
    const x = BigInt(a[i] as string);
    const y = BigInt(b[i] as string);
    if (x !== y) return x < y ? -1 : 1;
  }
  return 0;
};

/** Audits the checkpoint log of a run with integer keys: coverage, overlaps, gaps, owners. */
export async function auditLog(db: pg.ClientBase, runId: number, schema = 'parity'): Promise<LogAudit> {
  const ranges = (await db.query(`SELECT range_no, lo, hi FROM ${schema}.backfill_ranges WHERE run_id = $1 ORDER BY range_no`, [runId]))
    .rows;
  const batches: LoggedBatch[] = (
    await db.query(
      `SELECT range_no, batch_no, lo, hi, rows, worker FROM ${schema}.backfill_batches WHERE run_id = $1 ORDER BY range_no, batch_no`,
      [runId],
    )
  ).rows.map((r) => ({ rangeNo: r.range_no, batchNo: r.batch_no, lo: r.lo, hi: r.hi, rows: Number(r.rows), worker: r.worker }));
  let redone = 0;
  let gaps = 0;
  let several = 0;
  for (const range of ranges) {
    const mine = batches.filter((b) => b.rangeNo === range.range_no).sort((a, b) => cmp(a.hi, b.hi));
    if (new Set(mine.map((b) => b.worker)).size > 1) several++;
    let cursor: string[] | null = range.lo;
    for (const b of mine) {
      const startsAtCursor = (b.lo === null && cursor === null) || (b.lo !== null && cursor !== null && cmp(b.lo, cursor) === 0);
      if (!startsAtCursor) {
        if (cursor !== null && (b.lo === null || cmp(b.lo, cursor) < 0)) redone++;
        else gaps++;
      }
      cursor = b.hi;
    }
    if (mine.length > 0 && cursor !== null && cmp(cursor, range.hi) !== 0) gaps++;
  }
  return { batches: batches.length, rows: batches.reduce((n, b) => n + b.rows, 0), redone, gaps, rangesWithSeveralWorkers: several };
}

export async function waitFor<T>(what: string, fn: () => Promise<T | undefined | false>, timeoutMs = 60_000, everyMs = 50): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn();
    if (v !== undefined && v !== false) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, everyMs));
  }
}
