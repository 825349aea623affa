/**
 * Drift repair: writes the expected new representation, computed from the source of truth, for
 * keys whose drift is confirmed. Each write is a compare-and-set in one statement (the target row
 * must still hash to what verification observed; for same-table migrations the old columns must
 * too), so a live write that landed after the observation is never overwritten. Each write runs in
 * a target-database transaction that first checks the fencing token (`assertFence`): once the
 * coordinator has handed out a newer token, a stale repairer writes nothing. Every attempt is
 * recorded in the control schema's `repairs` table, dry runs included.
 */
import type pg from 'pg';
import { fromPgError, isParityError } from '../core/errors.js';
import { assertFence, ensureFenceTable, issueToken } from '../core/fence.js';
import type { Logger } from '../core/log.js';
import { ident } from '../core/sql.js';
import type { Spec } from '../core/spec.js';
import { mismatchesByStatus, recordRepair, repairedKeys, type MismatchRow, type RepairRecord } from './control-store.js';
import { Params, keyIn, type KeyTuple } from './key-range.js';
import type { Projection } from './projection.js';
import type { ReconcilerMetrics } from './metrics.js';

type Queryable = Pick<pg.ClientBase, 'query'>;

export type RepairAction = 'update' | 'insert' | 'delete';

export type RepairOutcome =
  | 'applied'
  | 'dry-run'
  | 'skipped-changed'
  | 'skipped-source-changed'
  | 'skipped-duplicate-key'
  | 'skipped-kill-switch'
  | 'stale-fence'
  | 'failed';

/** A confirmed difference to repair, as observed by verification (or stream verification). */
export interface RepairItem {
  key: KeyTuple;
  kind: string;
  /** Row hashes observed on each side for this key (exactly one per side for repairable keys). */
  sourceHashes: string[];
  targetHashes: string[];
}

export interface RepairContext {
  spec: Spec;
  projection: Projection;
  /** Read-write session on the source database (reads only; same-table repairs write here). */
  source: pg.Client;
  /** Read-write session on the target database: the fence check and the write happen here. */
  target: pg.Client;
  control: Queryable;
  /** The control database is the target database: the repair record joins the write's transaction. */
  controlIsTarget: boolean;
  logger: Logger;
  metrics?: ReconcilerMetrics;
  /** The coordinator's kill-repair flag, read before every write; on means write nothing. */
  killSwitch?: () => Promise<boolean>;
}

export interface RepairOptions {
  apply: boolean;
  token: bigint | null;
  origin: 'verify' | 'reconcile';
  runId: number | null;
  /** Test hook: runs after the source was read and before the target write. */
  beforeWrite?: (item: RepairItem) => Promise<void>;
}

export interface RepairSummary {
  planned: number;
  outcomes: Record<RepairOutcome, number>;
  token: string | null;
  tokenAcquired: boolean;
}

export function actionFor(kind: string): RepairAction {
  return kind === 'exclusive-source' ? 'insert' : kind === 'exclusive-target' ? 'delete' : 'update';
}

/**
 * Obtains the fencing token: the given one, or a fresh one from the target database (which fences
 * out the previous holder: the caller is told so).
 */
export async function resolveToken(
  target: Queryable,
  schema: string,
  scope: string,
  given: bigint | null,
  holder: string,
): Promise<{ token: bigint; acquired: boolean }> {
  await ensureFenceTable(target, schema);
  if (given !== null) return { token: given, acquired: false };
  return { token: await issueToken(target, schema, scope, holder), acquired: true };
}

function emptyOutcomes(): Record<RepairOutcome, number> {
  return {
    applied: 0,
    'dry-run': 0,
    'skipped-changed': 0,
    'skipped-source-changed': 0,
    'skipped-duplicate-key': 0,
    'skipped-kill-switch': 0,
    'stale-fence': 0,
    failed: 0,
  };
}

/** The expected new values of one key, read from the source (as text, to be cast on the target). */
async function readExpected(ctx: RepairContext, item: RepairItem): Promise<{ hash: string; values: Array<string | null> } | null> {
  const side = ctx.projection.source;
  const params = new Params();
  const where = keyIn(side, [item.key], params);
  const sql = `SELECT ${side.rowHash} AS h, ${side.values.map((v, i) => `(${v.expr})::text AS v${i}`).join(', ')} FROM ${side.from} WHERE ${where}`;
  let rows: Array<Record<string, string | null>>;
  try {
    ({ rows } = await ctx.source.query(sql, params.values));
  } catch (err) {
    throw fromPgError(err, 'reading the expected values from the source');
  }
  if (rows.length !== 1) return null;
  const r = rows[0]!;
  return { hash: r.h!, values: side.values.map((_, i) => r[`v${i}`] ?? null) };
}

/** Builds the one compare-and-set statement for an item. */
function writeStatement(
  ctx: RepairContext,
  item: RepairItem,
  action: RepairAction,
  expected: Array<string | null> | null,
): { sql: string; values: unknown[] } {
  const { projection } = ctx;
  const t = projection.target;
  const params = new Params();
  if (ctx.spec.target.kind === 'same-table') {
    // Old and new columns share the row: recompute the new ones from the old ones in place, but
    // only while both still hash as observed.
    const sets = t.values.map((v, i) => `${ident(v.column)} = (${projection.source.values[i]!.expr})`);
    const where = keyIn(t, [item.key], params);
    const th = params.add(item.targetHashes[0]);
    const sh = params.add(item.sourceHashes[0]);
    return {
      sql: `UPDATE ${t.from} SET ${sets.join(', ')} WHERE ${where} AND ${t.rowHash} = ${th} AND ${projection.source.rowHash} = ${sh}`,
      values: params.values,
    };
  }
  if (action === 'delete') {
    const where = keyIn(t, [item.key], params);
    const th = params.add(item.targetHashes[0]);
    return { sql: `DELETE FROM ${t.from} WHERE ${where} AND ${t.rowHash} = ${th}`, values: params.values };
  }
  const vals = t.values.map((v, i) => `${params.add(expected![i])}::${v.type.castName}`);
  if (action === 'update') {
    const sets = t.values.map((v, i) => `${ident(v.column)} = ${vals[i]}`);
    const where = keyIn(t, [item.key], params);
    const th = params.add(item.targetHashes[0]);
    return { sql: `UPDATE ${t.from} SET ${sets.join(', ')} WHERE ${where} AND ${t.rowHash} = ${th}`, values: params.values };
  }
  const keys = t.keys.map((k, i) => `${params.add(item.key[i])}::${k.type.castName}`);
  const absent = keyIn(t, [item.key], params);
  const cols = [...t.keys.map((k) => ident(k.name)), ...t.values.map((v) => ident(v.column))];
  return {
    sql: `INSERT INTO ${t.from} (${cols.join(', ')}) SELECT ${[...keys, ...vals].join(', ')} WHERE NOT EXISTS (SELECT 1 FROM ${t.from} WHERE ${absent}) ON CONFLICT DO NOTHING`,
    values: params.values,
  };
}

/**
 * Repairs one item. Returns its outcome; throws PARITY_STALE_FENCE (after recording it) when the
 * token is no longer current, since every further write would be refused too.
 */
export async function repairItem(
  ctx: RepairContext,
  item: RepairItem,
  options: RepairOptions,
  token: bigint | null,
): Promise<RepairOutcome> {
  const { spec } = ctx;
  const schema = spec.control.schema;
  const action = actionFor(item.kind);
  const record = async (db: Queryable, outcome: RepairOutcome, detail: string | null): Promise<void> => {
    const r: RepairRecord = {
      migration: spec.name,
      origin: options.origin,
      runId: options.runId,
      key: item.key,
      action,
      outcome,
      fenceToken: token,
      detail,
    };
    await recordRepair(db, schema, r);
    ctx.metrics?.repairs.inc({ outcome: outcome.replace(/-/g, '_') });
  };

  if (item.sourceHashes.length > 1 || item.targetHashes.length > 1) {
    await record(ctx.control, 'skipped-duplicate-key', 'the key has duplicate rows; repair it by hand');
    return 'skipped-duplicate-key';
  }
  if (!options.apply) {
    await record(ctx.control, 'dry-run', `would ${action}`);
    return 'dry-run';
  }
  if (ctx.killSwitch && (await ctx.killSwitch())) {
    await record(
      ctx.control,
      'skipped-kill-switch',
      'the kill-repair flag is on; `parity flags set --spec FILE kill-repair=off` allows repairs again',
    );
    return 'skipped-kill-switch';
  }

  let expected: Array<string | null> | null = null;
  if (spec.target.kind !== 'same-table' && action !== 'delete') {
    const current = await readExpected(ctx, item);
    if (!current || current.hash !== item.sourceHashes[0]) {
      // The source moved since the observation: that change is in flight and the stream will carry it.
      await record(ctx.control, 'skipped-source-changed', 'the source row changed since it was observed');
      return 'skipped-source-changed';
    }
    expected = current.values;
  }
  await options.beforeWrite?.(item);

  const stmt = writeStatement(ctx, item, action, expected);
  const db = ctx.target;
  await db.query('BEGIN');
  let done = false;
  try {
    await assertFence(db, schema, spec.name, token!);
    const res = await db.query(stmt.sql, stmt.values);
    const outcome: RepairOutcome = (res.rowCount ?? 0) === 1 ? 'applied' : 'skipped-changed';
    const detail = outcome === 'applied' ? `${action} applied` : 'the target changed since it was observed; left as it is';
    if (ctx.controlIsTarget) await record(db, outcome, detail);
    await db.query('COMMIT');
    done = true;
    if (!ctx.controlIsTarget) await record(ctx.control, outcome, detail);
    return outcome;
  } catch (err) {
    if (!done) await db.query('ROLLBACK').catch(() => undefined);
    if (isParityError(err, 'PARITY_STALE_FENCE')) {
      await record(ctx.control, 'stale-fence', err.message);
      throw err;
    }
    const e = isParityError(err) ? err : fromPgError(err, `repairing key ${JSON.stringify(item.key)}`);
    await record(ctx.control, 'failed', e.message);
    ctx.logger.error({ key: item.key, code: e.code }, 'repair failed');
    return 'failed';
  }
}

function fromMismatch(m: MismatchRow): RepairItem {
  return { key: m.key, kind: m.kind, sourceHashes: m.sourceHashes, targetHashes: m.targetHashes };
}

/** Repairs the confirmed drift of a verification run (keys already repaired are skipped). */
export async function repairRun(
  ctx: RepairContext,
  runId: number,
  options: Omit<RepairOptions, 'runId' | 'origin'>,
  holder: string,
): Promise<RepairSummary> {
  const schema = ctx.spec.control.schema;
  const summary: RepairSummary = { planned: 0, outcomes: emptyOutcomes(), token: null, tokenAcquired: false };
  let token: bigint | null = null;
  if (options.apply) {
    const t = await resolveToken(ctx.target, schema, ctx.spec.name, options.token, holder);
    token = t.token;
    summary.token = t.token.toString();
    summary.tokenAcquired = t.acquired;
  }
  const done = await repairedKeys(ctx.control, schema, ctx.spec.name, runId);
  let after = '';
  for (;;) {
    const page = await mismatchesByStatus(ctx.control, schema, runId, 'confirmed', 200, after);
    if (page.length === 0) break;
    after = page[page.length - 1]!.kt;
    for (const m of page) {
      if (done.has(JSON.stringify(m.key))) continue;
      summary.planned++;
      const outcome = await repairItem(ctx, fromMismatch(m), { ...options, origin: 'verify', runId }, token);
      summary.outcomes[outcome]++;
    }
  }
  return summary;
}
