/**
 * The reconciler's tables in the control schema: verification runs, their segments (the
 * checkpoint: a segment is done exactly when its row says so), the keys found differing, and every
 * repair. Segments are claimed with FOR UPDATE SKIP LOCKED inside a transaction that stays open
 * while the segment is verified and commits together with its result, so a process killed at any
 * instant releases its segment and at most that one segment is done again; several processes,
 * on any machine, can share a run this way.
 */
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type pg from 'pg';
import { from as copyFrom } from 'pg-copy-streams';
import { ensureControlTables } from '../core/control.js';
import { ident } from '../core/sql.js';
import type { KeyTuple } from './key-range.js';
import type { KeyDifference } from './row-diff.js';
import type { Checksum } from './segment-hash.js';

type Queryable = Pick<pg.ClientBase, 'query'>;

export type MismatchStatus = 'suspect' | 'confirmed' | 'in-flight' | 'resolved';

export function tables(schema: string) {
  const s = ident(schema);
  return {
    runs: `${s}.verify_runs`,
    segments: `${s}.verify_segments`,
    attempts: `${s}.verify_attempts`,
    mismatches: `${s}.verify_mismatches`,
    repairs: `${s}.repairs`,
    stream: `${s}.reconcile_mismatches`,
  };
}

/** Columns added after the first version of `verify_mismatches` (see the end of ensureReconcilerTables). */
const SETTLING_COLUMNS: Record<string, string> = {
  first_seen: 'timestamptz NOT NULL DEFAULT clock_timestamp()',
  stable_since: 'timestamptz NOT NULL DEFAULT clock_timestamp()',
  next_check_at: 'timestamptz',
  unsettled: 'boolean NOT NULL DEFAULT false',
};

/** True when every table, index and column below already exists: one query instead of a dozen DDL statements and their locks. */
async function reconcilerTablesPresent(db: Queryable, schema: string): Promise<boolean> {
  const t = tables(schema);
  const s = ident(schema);
  const objects = [
    t.runs,
    t.segments,
    t.attempts,
    t.mismatches,
    t.repairs,
    t.stream,
    ...['verify_runs_one_active', 'verify_mismatches_suspects', 'repairs_run'].map((i) => `${s}.${ident(i)}`),
  ];
  const { rows } = await db.query(
    `SELECT bool_and(to_regclass(o) IS NOT NULL) AS objects,
            (SELECT count(*)::int FROM pg_attribute WHERE attrelid = to_regclass($2) AND attname = ANY($3) AND NOT attisdropped) AS columns
       FROM unnest($1::text[]) AS o`,
    [objects, t.mismatches, Object.keys(SETTLING_COLUMNS)],
  );
  return rows[0].objects === true && rows[0].columns === Object.keys(SETTLING_COLUMNS).length;
}

export async function ensureReconcilerTables(db: Queryable, schema: string): Promise<void> {
  const t = tables(schema);
  if (await reconcilerTablesPresent(db, schema)) return;
  await ensureControlTables(db, schema, [
    `CREATE TABLE IF NOT EXISTS ${t.runs} (
       id bigserial PRIMARY KEY,
       migration text NOT NULL,
       config_hash text NOT NULL,
       status text NOT NULL CHECK (status IN ('running', 'done', 'abandoned')),
       segments integer NOT NULL DEFAULT 0,
       settings jsonb NOT NULL,
       result jsonb,
       started_at timestamptz NOT NULL DEFAULT clock_timestamp(),
       finished_at timestamptz
     )`,
    // One active run per migration: processes that start together join it instead of racing.
    `CREATE UNIQUE INDEX IF NOT EXISTS verify_runs_one_active ON ${t.runs} (migration) WHERE status = 'running'`,
    `CREATE TABLE IF NOT EXISTS ${t.segments} (
       run_id bigint NOT NULL REFERENCES ${t.runs} (id) ON DELETE CASCADE,
       seg_no integer NOT NULL,
       lo jsonb,
       hi jsonb,
       sub_bounds jsonb NOT NULL DEFAULT '[]',
       status text NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'done')),
       source_rows bigint,
       target_rows bigint,
       source_sum1 numeric,
       source_sum2 numeric,
       target_sum1 numeric,
       target_sum2 numeric,
       differing_keys integer,
       drift_rows bigint,
       bisections integer,
       fetched_rows bigint,
       source_position text,
       target_position text,
       worker text,
       duration_ms integer,
       finished_at timestamptz,
       PRIMARY KEY (run_id, seg_no)
     )`,
    `CREATE TABLE IF NOT EXISTS ${t.attempts} (
       run_id bigint NOT NULL,
       seg_no integer NOT NULL,
       worker text NOT NULL,
       started_at timestamptz NOT NULL DEFAULT clock_timestamp()
     )`,
    // No foreign key to the runs and no (run_id, status) index: dense drift stores a row per differing
    // key, and a per-row foreign-key check plus a second index cost more than half of that insert.
    // Only the verifier writes these rows, for a run it holds; the primary key serves per-run scans.
    // (Tables made by older versions keep both; they are correct, only slower.)
    `CREATE TABLE IF NOT EXISTS ${t.mismatches} (
       run_id bigint NOT NULL,
       kt text NOT NULL,
       seg_no integer NOT NULL,
       key jsonb NOT NULL,
       kind text NOT NULL,
       status text NOT NULL,
       updated_rows integer NOT NULL,
       exclusive_source integer NOT NULL,
       exclusive_target integer NOT NULL,
       source_hashes text[] NOT NULL,
       target_hashes text[] NOT NULL,
       expected jsonb,
       actual jsonb,
       source_position text,
       checks integer NOT NULL DEFAULT 0,
       reason text,
       observed_at timestamptz NOT NULL DEFAULT clock_timestamp(),
       PRIMARY KEY (run_id, kt)
     )`,
    // Rechecks claim the oldest suspects a page at a time: without this, every page sorts all of them.
    `CREATE INDEX IF NOT EXISTS verify_mismatches_suspects ON ${t.mismatches} (run_id, observed_at) WHERE status = 'suspect'`,
    `CREATE TABLE IF NOT EXISTS ${t.repairs} (
       id bigserial PRIMARY KEY,
       migration text NOT NULL,
       origin text NOT NULL,
       run_id bigint,
       key jsonb NOT NULL,
       action text NOT NULL,
       outcome text NOT NULL,
       fence_token bigint,
       detail text,
       at timestamptz NOT NULL DEFAULT clock_timestamp()
     )`,
    `CREATE INDEX IF NOT EXISTS repairs_run ON ${t.repairs} (migration, run_id)`,
    `CREATE TABLE IF NOT EXISTS ${t.stream} (
       id bigserial PRIMARY KEY,
       migration text NOT NULL,
       key jsonb NOT NULL,
       position text,
       expected jsonb,
       actual jsonb,
       reason text NOT NULL,
       at timestamptz NOT NULL DEFAULT clock_timestamp()
     )`,
  ]);
  // Settling without a CDC slot (recheck.ts): since when the observation is unchanged, when to look
  // again (backoff), and whether an in-flight key never settled. Tables made by older versions get
  // them too; ALTER only when missing, since it takes a table lock even when there is nothing to add.
  const settling = SETTLING_COLUMNS;
  const { rows } = await db.query(`SELECT attname FROM pg_attribute WHERE attrelid = $1::regclass AND attnum > 0 AND NOT attisdropped`, [
    t.mismatches,
  ]);
  const present = new Set(rows.map((r) => String(r.attname)));
  for (const [column, type] of Object.entries(settling)) {
    if (!present.has(column)) await db.query(`ALTER TABLE ${t.mismatches} ADD COLUMN IF NOT EXISTS ${column} ${type}`);
  }
}

export interface RunRow {
  id: number;
  migration: string;
  configHash: string;
  status: 'running' | 'done' | 'abandoned';
  segments: number;
  settings: Record<string, unknown>;
  result: Record<string, unknown> | null;
  startedAt: Date;
  finishedAt: Date | null;
}

function toRun(r: Record<string, unknown>): RunRow {
  return {
    id: Number(r.id),
    migration: String(r.migration),
    configHash: String(r.config_hash),
    status: r.status as RunRow['status'],
    segments: Number(r.segments),
    settings: r.settings as Record<string, unknown>,
    result: (r.result as Record<string, unknown> | null) ?? null,
    startedAt: r.started_at as Date,
    finishedAt: (r.finished_at as Date | null) ?? null,
  };
}

export async function activeRun(db: Queryable, schema: string, migration: string): Promise<RunRow | null> {
  const { rows } = await db.query(`SELECT * FROM ${tables(schema).runs} WHERE migration = $1 AND status = 'running'`, [migration]);
  return rows[0] ? toRun(rows[0]) : null;
}

export async function getRun(db: Queryable, schema: string, id: number): Promise<RunRow | null> {
  const { rows } = await db.query(`SELECT * FROM ${tables(schema).runs} WHERE id = $1`, [id]);
  return rows[0] ? toRun(rows[0]) : null;
}

/** The latest finished run of a migration, or null. */
export async function latestDoneRun(db: Queryable, schema: string, migration: string): Promise<RunRow | null> {
  const { rows } = await db.query(
    `SELECT * FROM ${tables(schema).runs} WHERE migration = $1 AND status = 'done' ORDER BY finished_at DESC, id DESC LIMIT 1`,
    [migration],
  );
  return rows[0] ? toRun(rows[0]) : null;
}

/** Finished runs of a migration, oldest first, for drift-over-time charts. */
export async function runHistory(db: Queryable, schema: string, migration: string, limit = 50): Promise<RunRow[]> {
  const { rows } = await db.query(
    `SELECT * FROM (SELECT * FROM ${tables(schema).runs} WHERE migration = $1 AND status = 'done' ORDER BY finished_at DESC LIMIT $2) r ORDER BY finished_at`,
    [migration, limit],
  );
  return rows.map(toRun);
}

export async function abandonRun(db: Queryable, schema: string, id: number): Promise<void> {
  await db.query(
    `UPDATE ${tables(schema).runs} SET status = 'abandoned', finished_at = clock_timestamp() WHERE id = $1 AND status = 'running'`,
    [id],
  );
}

export async function createRun(
  db: Queryable,
  schema: string,
  migration: string,
  configHash: string,
  settings: Record<string, unknown>,
): Promise<number> {
  const { rows } = await db.query(
    `INSERT INTO ${tables(schema).runs} (migration, config_hash, status, settings) VALUES ($1, $2, 'running', $3) RETURNING id`,
    [migration, configHash, JSON.stringify(settings)],
  );
  return Number(rows[0].id);
}

export interface SegmentPlan {
  no: number;
  lo: KeyTuple | null;
  hi: KeyTuple | null;
  subBounds: KeyTuple[];
}

export async function insertSegments(db: Queryable, schema: string, runId: number, segments: SegmentPlan[]): Promise<void> {
  if (segments.length === 0) return;
  await db.query(
    `INSERT INTO ${tables(schema).segments} (run_id, seg_no, lo, hi, sub_bounds)
     SELECT $1, s.no, s.lo, s.hi, s.sub FROM jsonb_to_recordset($2::jsonb) AS s(no integer, lo jsonb, hi jsonb, sub jsonb)`,
    [runId, JSON.stringify(segments.map((s) => ({ no: s.no, lo: s.lo, hi: s.hi, sub: s.subBounds })))],
  );
}

export async function setRunSegments(db: Queryable, schema: string, runId: number, count: number): Promise<void> {
  await db.query(`UPDATE ${tables(schema).runs} SET segments = $2 WHERE id = $1`, [runId, count]);
}

/**
 * Claims the next pending segment. Must run inside a transaction that the caller keeps open until
 * `completeSegment`; the row lock is the claim.
 */
export async function claimSegment(db: Queryable, schema: string, runId: number): Promise<SegmentPlan | null> {
  const { rows } = await db.query(
    `SELECT seg_no, lo, hi, sub_bounds FROM ${tables(schema).segments}
      WHERE run_id = $1 AND status = 'pending' ORDER BY seg_no LIMIT 1 FOR UPDATE SKIP LOCKED`,
    [runId],
  );
  const r = rows[0];
  if (!r) return null;
  return { no: Number(r.seg_no), lo: r.lo ?? null, hi: r.hi ?? null, subBounds: r.sub_bounds ?? [] };
}

/** Logged outside the claim transaction (autocommit), so a killed attempt still leaves its trace. */
export async function recordAttempt(db: Queryable, schema: string, runId: number, segNo: number, worker: string): Promise<void> {
  await db.query(`INSERT INTO ${tables(schema).attempts} (run_id, seg_no, worker) VALUES ($1, $2, $3)`, [runId, segNo, worker]);
}

export interface SegmentResult {
  source: Checksum;
  target: Checksum;
  differingKeys: number;
  driftRows: number;
  bisections: number;
  fetchedRows: number;
  sourcePosition: string;
  targetPosition: string;
  worker: string;
  durationMs: number;
}

export async function completeSegment(db: Queryable, schema: string, runId: number, segNo: number, r: SegmentResult): Promise<void> {
  await db.query(
    `UPDATE ${tables(schema).segments} SET status = 'done', source_rows = $3, target_rows = $4, source_sum1 = $5, source_sum2 = $6,
            target_sum1 = $7, target_sum2 = $8, differing_keys = $9, drift_rows = $10, bisections = $11, fetched_rows = $12,
            source_position = $13, target_position = $14, worker = $15, duration_ms = $16, finished_at = clock_timestamp()
      WHERE run_id = $1 AND seg_no = $2`,
    [
      runId,
      segNo,
      r.source.rows.toString(),
      r.target.rows.toString(),
      r.source.sum1,
      r.source.sum2,
      r.target.sum1,
      r.target.sum2,
      r.differingKeys,
      r.driftRows,
      r.bisections,
      r.fetchedRows,
      r.sourcePosition,
      r.targetPosition,
      r.worker,
      r.durationMs,
    ],
  );
}

export async function segmentProgress(
  db: Queryable,
  schema: string,
  runId: number,
): Promise<{ total: number; done: number; rows: number }> {
  const { rows } = await db.query(
    `SELECT count(*)::int AS total, count(*) FILTER (WHERE status = 'done')::int AS done, coalesce(sum(greatest(source_rows, target_rows)), 0)::text AS rows
       FROM ${tables(schema).segments} WHERE run_id = $1`,
    [runId],
  );
  return { total: rows[0].total, done: rows[0].done, rows: Number(rows[0].rows) };
}

export function mismatchKind(d: Pick<KeyDifference, 'updated' | 'exclusiveSource' | 'exclusiveTarget'>): string {
  if (d.updated > 0) return 'updated';
  return d.exclusiveSource > 0 ? 'exclusive-source' : 'exclusive-target';
}

function valuesObject(columns: string[], values: Array<string | null> | null): Record<string, string | null> | null {
  if (!values) return null;
  return Object.fromEntries(columns.map((c, i) => [c, values[i] ?? null]));
}

/** Stores differing keys found in a segment (inside the segment's claim transaction). */
export async function insertSuspects(
  db: Queryable,
  schema: string,
  runId: number,
  segNo: number,
  columns: string[],
  diffs: KeyDifference[],
  sourcePosition: string,
): Promise<void> {
  await insertMismatches(
    db,
    schema,
    runId,
    segNo,
    columns,
    diffs.map((d) => ({ d, status: 'suspect', reason: null, checks: 0 })),
    sourcePosition,
  );
}

/** A differing key with its status already decided (a segment rechecked as a whole, see recheck.ts). */
export interface DecidedMismatch {
  d: KeyDifference;
  status: MismatchStatus;
  reason: string | null;
  checks: number;
}

/** Stores differing keys of a segment with their statuses (inside the segment's claim transaction). */
export async function insertMismatches(
  db: Queryable,
  schema: string,
  runId: number,
  segNo: number,
  columns: string[],
  rows: DecidedMismatch[],
  sourcePosition: string,
): Promise<void> {
  if (rows.length === 0) return;
  // Parallel arrays through unnest: far cheaper per row than a JSON recordset (dense drift stores
  // every row of a segment). Row hashes never contain a space, so a list of them travels as one text.
  const col = <T>(f: (r: DecidedMismatch) => T): T[] => rows.map(f);
  await db.query(
    `INSERT INTO ${tables(schema).mismatches} (run_id, kt, seg_no, key, kind, status, reason, checks, updated_rows, exclusive_source, exclusive_target,
                                               source_hashes, target_hashes, expected, actual, source_position)
     SELECT $1, p.kt, $2, p.key::jsonb, p.kind, p.st, p.rs, p.ck, p.u, p.es, p.et,
            string_to_array(p.sh, ' '), string_to_array(p.th, ' '), p.ex::jsonb, p.ac::jsonb, $3
       FROM unnest($4::text[], $5::text[], $6::text[], $7::text[], $8::text[], $9::int[], $10::int[], $11::int[], $12::int[], $13::text[], $14::text[], $15::text[], $16::text[])
            AS p(kt, key, kind, st, rs, ck, u, es, et, sh, th, ex, ac)
     ON CONFLICT (run_id, kt) DO NOTHING`,
    [
      runId,
      segNo,
      sourcePosition,
      col((r) => r.d.kt),
      col((r) => JSON.stringify(r.d.key)),
      col((r) => mismatchKind(r.d)),
      col((r) => r.status),
      col((r) => r.reason),
      col((r) => r.checks),
      col((r) => r.d.updated),
      col((r) => r.d.exclusiveSource),
      col((r) => r.d.exclusiveTarget),
      col((r) => r.d.sourceHashes.join(' ')),
      col((r) => r.d.targetHashes.join(' ')),
      col((r) => jsonOrNull(valuesObject(columns, r.d.sourceValues))),
      col((r) => jsonOrNull(valuesObject(columns, r.d.targetValues))),
    ],
  );
}

/** One field of COPY's text format: backslash, tab, newline and carriage return escaped; null is \N. */
export function copyField(v: string | number | null): string {
  if (v === null) return '\\N';
  if (typeof v === 'number') return String(v);
  return COPY_SPECIAL.test(v) ? v.replace(COPY_SPECIALS, (c) => COPY_ESCAPES[c]!) : v;
}

const COPY_SPECIAL = /[\\\t\n\r]/;
const COPY_SPECIALS = /[\\\t\n\r]/g;
const COPY_ESCAPES: Record<string, string> = { '\\': '\\\\', '\t': '\\t', '\n': '\\n', '\r': '\\r' };

/** A text[] literal: every element double-quoted, quotes and backslashes escaped. */
export function textArrayLiteral(items: string[]): string {
  if (items.length === 0) return '{}';
  // Row hashes never hold a quote or a backslash: one test for the whole list instead of one replace per item.
  const joined = items.join('","');
  if (!/["\\]/.test(joined)) return `{"${joined}"}`;
  return `{${items.map((i) => `"${i.replace(/["\\]/g, (c) => `\\${c}`)}"`).join(',')}}`;
}

/**
 * Stores a segment's decided keys like `insertMismatches`, through COPY: dense drift stores a row
 * per key of a segment, and COPY takes them several times faster than an INSERT of parameter
 * arrays. Runs inside the caller's transaction (`db` must be in one); should a key already be
 * stored for the run, the COPY is undone to a savepoint and the rows go through
 * `insertMismatches`, which skips the keys already there.
 */
export async function copyMismatches(
  db: pg.ClientBase,
  schema: string,
  runId: number,
  segNo: number,
  columns: string[],
  rows: DecidedMismatch[],
  sourcePosition: string,
): Promise<void> {
  if (rows.length === 0) return;
  const lines = function* (): Generator<string> {
    const run = copyField(runId);
    const seg = copyField(segNo);
    const position = copyField(sourcePosition);
    // Statuses and reasons repeat across a segment's keys: escaped once each.
    const escaped = new Map<string | null, string>();
    const once = (v: string | null): string => {
      let e = escaped.get(v);
      if (e === undefined) {
        e = copyField(v);
        escaped.set(v, e);
      }
      return e;
    };
    let chunk = '';
    for (let i = 0; i < rows.length; i++) {
      const r = rows[i]!;
      const d = r.d;
      const expected = d.sourceValues ? copyField(JSON.stringify(valuesObject(columns, d.sourceValues))) : '\\N';
      const actual = d.targetValues ? copyField(JSON.stringify(valuesObject(columns, d.targetValues))) : '\\N';
      chunk += `${run}\t${copyField(d.kt)}\t${seg}\t${copyField(JSON.stringify(d.key))}\t${mismatchKind(d)}\t${once(r.status)}\t${once(r.reason)}\t${r.checks}\t${d.updated}\t${d.exclusiveSource}\t${d.exclusiveTarget}\t${copyField(textArrayLiteral(d.sourceHashes))}\t${copyField(textArrayLiteral(d.targetHashes))}\t${expected}\t${actual}\t${position}\n`;
      if (i % 1000 === 999) {
        yield chunk;
        chunk = '';
      }
    }
    if (chunk) yield chunk;
  };
  await db.query('SAVEPOINT parity_copy_mismatches');
  try {
    const sink = db.query(
      copyFrom(
        `COPY ${tables(schema).mismatches} (run_id, kt, seg_no, key, kind, status, reason, checks, updated_rows, exclusive_source, exclusive_target,
                                            source_hashes, target_hashes, expected, actual, source_position) FROM STDIN`,
      ),
    );
    await pipeline(Readable.from(lines()), sink);
    await db.query('RELEASE SAVEPOINT parity_copy_mismatches');
  } catch (err) {
    if ((err as { code?: string }).code !== '23505') throw err;
    await db.query('ROLLBACK TO SAVEPOINT parity_copy_mismatches');
    for (let i = 0; i < rows.length; i += 5000)
      await insertMismatches(db, schema, runId, segNo, columns, rows.slice(i, i + 5000), sourcePosition);
  }
}

function jsonOrNull(v: unknown): string | null {
  return v === null ? null : JSON.stringify(v);
}

export interface MismatchRow {
  kt: string;
  segNo: number;
  key: KeyTuple;
  kind: string;
  status: MismatchStatus;
  updated: number;
  exclusiveSource: number;
  exclusiveTarget: number;
  sourceHashes: string[];
  targetHashes: string[];
  expected: Record<string, string | null> | null;
  actual: Record<string, string | null> | null;
  sourcePosition: string | null;
  checks: number;
  reason: string | null;
  observedAt: Date;
  /** In flight because it never stayed unchanged long enough without a CDC slot (never confirmed). */
  unsettled: boolean;
  /** Milliseconds since the key was first seen differing, and since its observation last changed (as of the read). */
  ageMs: number;
  stableMs: number;
}

export function toMismatchRow(r: Record<string, unknown>): MismatchRow {
  return {
    kt: String(r.kt),
    segNo: Number(r.seg_no),
    key: r.key as KeyTuple,
    kind: String(r.kind),
    status: r.status as MismatchStatus,
    updated: Number(r.updated_rows),
    exclusiveSource: Number(r.exclusive_source),
    exclusiveTarget: Number(r.exclusive_target),
    sourceHashes: r.source_hashes as string[],
    targetHashes: r.target_hashes as string[],
    expected: (r.expected as Record<string, string | null> | null) ?? null,
    actual: (r.actual as Record<string, string | null> | null) ?? null,
    sourcePosition: (r.source_position as string | null) ?? null,
    checks: Number(r.checks),
    reason: (r.reason as string | null) ?? null,
    observedAt: r.observed_at as Date,
    unsettled: r.unsettled === true,
    ageMs: Number(r.age_ms ?? 0),
    stableMs: Number(r.stable_ms ?? 0),
  };
}

/** Mismatches of a run with the given status, in key order, after `afterKt` (keyset pagination). */
export async function mismatchesByStatus(
  db: Queryable,
  schema: string,
  runId: number,
  status: MismatchStatus,
  limit: number,
  afterKt = '',
): Promise<MismatchRow[]> {
  const { rows } = await db.query(
    `SELECT * FROM ${tables(schema).mismatches} WHERE run_id = $1 AND status = $2 AND kt COLLATE "C" > $3 ORDER BY kt COLLATE "C" LIMIT $4`,
    [runId, status, afterKt, limit],
  );
  return rows.map(toMismatchRow);
}

export async function sampleMismatches(db: Queryable, schema: string, runId: number, limit: number): Promise<MismatchRow[]> {
  const { rows } = await db.query(
    `SELECT * FROM ${tables(schema).mismatches} WHERE run_id = $1 AND status IN ('confirmed', 'in-flight')
      ORDER BY status, seg_no, kt COLLATE "C" LIMIT $2`,
    [runId, limit],
  );
  return rows.map(toMismatchRow);
}

export interface MismatchUpdate {
  kt: string;
  status: MismatchStatus;
  reason: string | null;
  /** A fresh observation (null keeps the previous one). */
  observation: KeyDifference | null;
  sourcePosition: string | null;
  /** The observation differs from the previous one: it is stable from now on only. */
  changed?: boolean;
  /** Look again no sooner than this (backoff without a CDC slot); absent: the recheck wait decides. */
  nextCheckInMs?: number;
  unsettled?: boolean;
}

export async function updateMismatches(
  db: Queryable,
  schema: string,
  runId: number,
  columns: string[],
  updates: MismatchUpdate[],
): Promise<void> {
  if (updates.length === 0) return;
  const payload = updates.map((u) => ({
    kt: u.kt,
    st: u.status,
    rs: u.reason,
    obs: u.observation !== null,
    kind: u.observation ? mismatchKind(u.observation) : null,
    u: u.observation?.updated ?? 0,
    es: u.observation?.exclusiveSource ?? 0,
    et: u.observation?.exclusiveTarget ?? 0,
    sh: u.observation?.sourceHashes ?? [],
    th: u.observation?.targetHashes ?? [],
    ex: u.observation ? valuesObject(columns, u.observation.sourceValues) : null,
    ac: u.observation ? valuesObject(columns, u.observation.targetValues) : null,
    pos: u.sourcePosition,
    chg: u.changed ?? false,
    nx: u.nextCheckInMs ?? null,
    un: u.unsettled ?? false,
  }));
  await db.query(
    `UPDATE ${tables(schema).mismatches} AS m SET
            status = p.st, reason = p.rs, checks = m.checks + 1,
            kind = CASE WHEN p.obs THEN p.kind ELSE m.kind END,
            updated_rows = CASE WHEN p.obs THEN p.u ELSE m.updated_rows END,
            exclusive_source = CASE WHEN p.obs THEN p.es ELSE m.exclusive_source END,
            exclusive_target = CASE WHEN p.obs THEN p.et ELSE m.exclusive_target END,
            source_hashes = CASE WHEN p.obs THEN ARRAY(SELECT jsonb_array_elements_text(p.sh)) ELSE m.source_hashes END,
            target_hashes = CASE WHEN p.obs THEN ARRAY(SELECT jsonb_array_elements_text(p.th)) ELSE m.target_hashes END,
            expected = CASE WHEN p.obs THEN p.ex ELSE m.expected END,
            actual = CASE WHEN p.obs THEN p.ac ELSE m.actual END,
            source_position = coalesce(p.pos, m.source_position),
            observed_at = CASE WHEN p.obs THEN clock_timestamp() ELSE m.observed_at END,
            stable_since = CASE WHEN p.chg THEN clock_timestamp() ELSE m.stable_since END,
            next_check_at = CASE WHEN p.nx IS NULL THEN NULL ELSE clock_timestamp() + p.nx * interval '1 millisecond' END,
            unsettled = p.un
       FROM jsonb_to_recordset($2::jsonb) AS p(kt text, st text, rs text, obs boolean, kind text, u integer, es integer, et integer, sh jsonb, th jsonb, ex jsonb, ac jsonb, pos text,
                                               chg boolean, nx integer, un boolean)
      WHERE m.run_id = $1 AND m.kt = p.kt`,
    [runId, JSON.stringify(payload)],
  );
}

export interface RunTotals {
  segments: number;
  sourceRows: number;
  targetRows: number;
  confirmedKeys: number;
  confirmedDrift: number;
  updated: number;
  exclusiveSource: number;
  exclusiveTarget: number;
  inFlightKeys: number;
  inFlight: number;
  /** Keys in flight because they never settled without a CDC slot (part of inFlightKeys). */
  unsettledKeys: number;
  resolved: number;
  /** Source rows involved in a remaining difference (confirmed or in flight). */
  sourceDiffRows: number;
  minSourcePosition: string | null;
  maxSourcePosition: string | null;
  minTargetPosition: string | null;
  maxTargetPosition: string | null;
}

/** Totals of a run from its segments and mismatches (drift counted in rows). */
export async function runTotals(db: Queryable, schema: string, runId: number): Promise<RunTotals> {
  const t = tables(schema);
  const seg = await db.query(
    `SELECT count(*)::int AS segments, coalesce(sum(source_rows), 0)::text AS source_rows, coalesce(sum(target_rows), 0)::text AS target_rows,
            min(source_position::pg_lsn)::text AS min_sp, max(source_position::pg_lsn)::text AS max_sp,
            min(target_position::pg_lsn)::text AS min_tp, max(target_position::pg_lsn)::text AS max_tp
       FROM ${t.segments} WHERE run_id = $1`,
    [runId],
  );
  const mm = await db.query(
    `SELECT count(*) FILTER (WHERE status = 'confirmed')::int AS confirmed_keys,
            coalesce(sum(updated_rows + exclusive_source + exclusive_target) FILTER (WHERE status = 'confirmed'), 0)::int AS confirmed_rows,
            coalesce(sum(updated_rows) FILTER (WHERE status = 'confirmed'), 0)::int AS updated,
            coalesce(sum(exclusive_source) FILTER (WHERE status = 'confirmed'), 0)::int AS exclusive_source,
            coalesce(sum(exclusive_target) FILTER (WHERE status = 'confirmed'), 0)::int AS exclusive_target,
            count(*) FILTER (WHERE status IN ('in-flight', 'suspect'))::int AS in_flight_keys,
            coalesce(sum(updated_rows + exclusive_source + exclusive_target) FILTER (WHERE status IN ('in-flight', 'suspect')), 0)::int AS in_flight_rows,
            count(*) FILTER (WHERE status = 'in-flight' AND unsettled)::int AS unsettled_keys,
            count(*) FILTER (WHERE status = 'resolved')::int AS resolved,
            coalesce(sum(updated_rows + exclusive_source) FILTER (WHERE status <> 'resolved'), 0)::int AS source_diff_rows
       FROM ${t.mismatches} WHERE run_id = $1`,
    [runId],
  );
  const s = seg.rows[0];
  const m = mm.rows[0];
  return {
    segments: s.segments,
    sourceRows: Number(s.source_rows),
    targetRows: Number(s.target_rows),
    confirmedKeys: m.confirmed_keys,
    confirmedDrift: m.confirmed_rows,
    updated: m.updated,
    exclusiveSource: m.exclusive_source,
    exclusiveTarget: m.exclusive_target,
    inFlightKeys: m.in_flight_keys,
    inFlight: m.in_flight_rows,
    unsettledKeys: m.unsettled_keys,
    resolved: m.resolved,
    sourceDiffRows: m.source_diff_rows,
    minSourcePosition: s.min_sp,
    maxSourcePosition: s.max_sp,
    minTargetPosition: s.min_tp,
    maxTargetPosition: s.max_tp,
  };
}

export async function finishRun(db: Queryable, schema: string, runId: number, result: Record<string, unknown>): Promise<void> {
  await db.query(`UPDATE ${tables(schema).runs} SET status = 'done', result = $2, finished_at = clock_timestamp() WHERE id = $1`, [
    runId,
    JSON.stringify(result),
  ]);
}

export interface SegmentRow {
  no: number;
  lo: KeyTuple | null;
  hi: KeyTuple | null;
  status: string;
  sourceRows: number;
  targetRows: number;
  source: { sum1: string; sum2: string };
  target: { sum1: string; sum2: string };
  differingKeys: number;
  driftRows: number;
  bisections: number;
  fetchedRows: number;
  sourcePosition: string | null;
  targetPosition: string | null;
  durationMs: number | null;
}

export async function runSegments(db: Queryable, schema: string, runId: number): Promise<SegmentRow[]> {
  const { rows } = await db.query(`SELECT * FROM ${tables(schema).segments} WHERE run_id = $1 ORDER BY seg_no`, [runId]);
  return rows.map((r) => ({
    no: Number(r.seg_no),
    lo: r.lo ?? null,
    hi: r.hi ?? null,
    status: String(r.status),
    sourceRows: Number(r.source_rows ?? 0),
    targetRows: Number(r.target_rows ?? 0),
    source: { sum1: String(r.source_sum1 ?? '0'), sum2: String(r.source_sum2 ?? '0') },
    target: { sum1: String(r.target_sum1 ?? '0'), sum2: String(r.target_sum2 ?? '0') },
    differingKeys: Number(r.differing_keys ?? 0),
    driftRows: Number(r.drift_rows ?? 0),
    bisections: Number(r.bisections ?? 0),
    fetchedRows: Number(r.fetched_rows ?? 0),
    sourcePosition: r.source_position ?? null,
    targetPosition: r.target_position ?? null,
    durationMs: r.duration_ms === null || r.duration_ms === undefined ? null : Number(r.duration_ms),
  }));
}

/** Confirmed drift per segment (for the drift-over-key-range chart). */
export async function confirmedBySegment(db: Queryable, schema: string, runId: number): Promise<Map<number, number>> {
  const { rows } = await db.query(
    `SELECT seg_no, sum(updated_rows + exclusive_source + exclusive_target)::int AS n FROM ${tables(schema).mismatches}
      WHERE run_id = $1 AND status = 'confirmed' GROUP BY seg_no`,
    [runId],
  );
  return new Map(rows.map((r) => [Number(r.seg_no), Number(r.n)]));
}

export interface RepairRecord {
  migration: string;
  origin: 'verify' | 'reconcile';
  runId: number | null;
  key: KeyTuple;
  action: string;
  outcome: string;
  fenceToken: bigint | null;
  detail: string | null;
}

export async function recordRepair(db: Queryable, schema: string, r: RepairRecord): Promise<void> {
  await db.query(
    `INSERT INTO ${tables(schema).repairs} (migration, origin, run_id, key, action, outcome, fence_token, detail) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)`,
    [
      r.migration,
      r.origin,
      r.runId,
      JSON.stringify(r.key),
      r.action,
      r.outcome,
      r.fenceToken === null ? null : r.fenceToken.toString(),
      r.detail,
    ],
  );
}

export async function repairCounts(
  db: Queryable,
  schema: string,
  migration: string,
  runId: number | null,
): Promise<Record<string, number>> {
  const { rows } = await db.query(
    `SELECT outcome, count(*)::int AS n FROM ${tables(schema).repairs} WHERE migration = $1 AND ($2::bigint IS NULL OR run_id = $2) GROUP BY outcome`,
    [migration, runId],
  );
  return Object.fromEntries(rows.map((r) => [String(r.outcome), Number(r.n)]));
}

/** Keys of a run already repaired successfully (so a second --repair does not repeat them). */
export async function repairedKeys(db: Queryable, schema: string, migration: string, runId: number): Promise<Set<string>> {
  const { rows } = await db.query(
    `SELECT key FROM ${tables(schema).repairs} WHERE migration = $1 AND run_id = $2 AND outcome = 'applied'`,
    [migration, runId],
  );
  return new Set(rows.map((r) => JSON.stringify(r.key)));
}
