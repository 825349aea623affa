/**
 * `parity cutover` and `parity rollback`, per cohort, under the coordinator's lock.
 *
 * Cutover: with the cohort's reads already on the new path (phase ramp or later), create the reverse
 * slot on the new representation *before* writes move (so every write made only to the new side is
 * captured), open the window and record the cohort as cut over in one fenced transaction, then flip
 * the cohort's flags to write=new, read=new at 100%. Forward repairs pause (kill-repair) while any
 * cohort is cut over. Rows the old shape cannot hold refuse the cutover when reverse.unrepresentable
 * is `refuse`.
 *
 * Rollback: flip the cohort's flags back (write=old, read=old) first, so no new write goes to the new
 * side only; write a flip marker into the WAL; wait, within the lease, until reverse sync has applied
 * everything up to that marker; then record the cohort as rolled back (fenced). If reverse sync does
 * not get there in time, the flags are put back to the cutover values and nothing is recorded: the
 * rollback failed, nothing was lost. Forward sync resumes with the old flags (dual writes, repairs).
 */
import type pg from 'pg';
import type { Redis } from 'ioredis';
import { ParityError } from '../core/errors.js';
import type { Logger } from '../core/log.js';
import { type Lsn, formatLsn, parseLsn } from '../core/lsn.js';
import { ident } from '../core/sql.js';
import type { Spec } from '../core/spec.js';
import { createSlot, ensurePublication, slotInfo } from '../../connectors/postgres-source/slot.js';
import { createFlagStore } from '../coordinator/flag-store.js';
import { acquireLock, type Lease } from '../coordinator/lock.js';
import { appendAudit, loadPhases } from '../coordinator/phase-store.js';
import { atLeast } from '../coordinator/phases.js';
import { FLIP_PREFIX, assertWindowKind, reversePublication, reverseSlot, windowTables } from './names.js';
import { ensureWindowTables, openWindow, readCohorts, readPosition, readWindow, setCohort, setPausedRepairs } from './window-store.js';

/** The application flags reader's cache TTL (services/coordinator/flags-reader.ts default). */
export const FLAGS_READER_TTL_MS = 1_000;

export interface CutoverDeps {
  spec: Spec;
  /** The old representation's database (the source): window state, fences, positions. */
  db: pg.Pool;
  /**
   * The new representation's database, where the reverse slot and publication are created and the
   * rollback's flip marker is written (the WAL reverse sync streams). Absent: `db` (same-table and
   * shadow-table migrations); the target database for other-database migrations.
   */
  newDb?: pg.Pool;
  /** The control database (phases, audit). */
  control: pg.Pool;
  redis: Redis;
  logger: Logger;
  keyPrefix?: string;
  sleep?: (ms: number) => Promise<void>;
}

export interface CutoverResult {
  migration: string;
  cohort: string;
  slot: string;
  /** The reverse slot's start: every change after it reaches the old side. */
  fromLsn: string;
  token: string;
}

export interface RollbackResult {
  migration: string;
  cohort: string;
  /** The flip marker's position; reverse sync had applied past it when the rollback completed. */
  flipLsn: string;
  appliedLsn: string;
  waitedMs: number;
  token: string;
}

function cohortOf(spec: Spec, cohort: string | undefined): string {
  if (cohort === undefined || cohort === '') {
    if (spec.cohorts.length > 0)
      throw new ParityError('PARITY_BAD_INPUT', `${spec.name} rolls out per cohort (${spec.cohorts.join(', ')}); say which one`, {
        hint: `pass --cohort ${spec.cohorts[0]}`,
      });
    return '';
  }
  if (!spec.cohorts.includes(cohort))
    throw new ParityError('PARITY_BAD_INPUT', `unknown cohort "${cohort}"`, {
      hint: spec.cohorts.length > 0 ? `the spec's cohorts are ${spec.cohorts.join(', ')}` : 'this spec has no cohorts: drop --cohort',
    });
  return cohort;
}

async function withLease<T>(deps: CutoverDeps, fn: (lease: Lease) => Promise<T>): Promise<T> {
  const lease = await acquireLock({
    redis: deps.redis,
    fenceDb: deps.db,
    fenceSchema: deps.spec.control.schema,
    migration: deps.spec.name,
    settings: deps.spec.lock,
    ...(deps.keyPrefix ? { keyPrefix: deps.keyPrefix } : {}),
    ...(deps.sleep ? { sleep: deps.sleep } : {}),
    logger: deps.logger,
  });
  try {
    return await fn(lease);
  } finally {
    await lease.release();
  }
}

/** Rows of the new representation outside reverse.representable (0 when every row is representable). */
export async function countUnrepresentableRows(db: Pick<pg.ClientBase, 'query'>, spec: Spec): Promise<number> {
  const rep = spec.reverse?.representable;
  if (rep === undefined) return 0;
  const { from } = windowTables(spec);
  const { rows } = await db.query(
    `SELECT count(*)::bigint AS n FROM ${ident(from.schema)}.${ident(from.table)} WHERE NOT coalesce((${rep}), false)`,
  );
  return Number(rows[0]?.n ?? 0);
}

/**
 * What would break once writes go to the new representation only. Same table: an old column that is
 * NOT NULL without a default refuses every INSERT that writes only the new columns. Shadow table:
 * an old-table column that is NOT NULL without a default and that reverse does not rebuild refuses
 * reverse sync's inserts. Each is a step to add (e.g. in ddl.enforce: ALTER COLUMN ... DROP NOT NULL).
 */
export async function insertBlockers(db: Pick<pg.ClientBase, 'query'>, spec: Spec): Promise<string[]> {
  const { to } = windowTables(spec);
  const rebuilt = Object.keys(spec.reverse?.mapping ?? {});
  const { rows } = await db.query<{ name: string }>(
    `SELECT a.attname AS name
       FROM pg_catalog.pg_attribute a JOIN pg_catalog.pg_class c ON c.oid = a.attrelid JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
      WHERE n.nspname = $1 AND c.relname = $2 AND a.attnum > 0 AND NOT a.attisdropped
        AND a.attnotnull AND NOT a.atthasdef AND a.attidentity = '' AND a.attgenerated = ''
        AND NOT (a.attname = ANY($3::text[]))`,
    [to.schema, to.table, spec.key],
  );
  const names = rows.map((r) => r.name);
  if (spec.target.kind === 'same-table')
    return names
      .filter((c) => rebuilt.includes(c))
      .map((c) => `${to.table}.${c} is NOT NULL without a default: an application writing only the new columns cannot insert a row`);
  return names
    .filter((c) => !rebuilt.includes(c))
    .map(
      (c) =>
        `${to.table}.${c} is NOT NULL without a default and reverse does not rebuild it: reverse sync cannot insert the rows created on the new side`,
    );
}

export async function cutover(deps: CutoverDeps, input: { cohort?: string; actor: string; reason: string }): Promise<CutoverResult> {
  const { spec, db } = deps;
  const newDb = deps.newDb ?? db;
  assertWindowKind(spec);
  const cohort = cohortOf(spec, input.cohort);
  const schema = spec.control.schema;
  const where = `${spec.name}${cohort ? ` (cohort ${cohort})` : ''}`;
  const phases = await loadPhases(deps.control, schema, spec.name, spec.cohorts, input.actor);
  const row = phases.find((r) => r.cohort === cohort);
  if (!row || !atLeast(row.phase, 'ramp'))
    throw new ParityError(
      'PARITY_PHASE',
      `${where} is in ${row?.phase ?? 'no phase'}; cutover needs phase ramp or later (reads on the new path)`,
      {
        hint: 'advance through dark-reads and ramp first (parity migrate advance)',
      },
    );
  await ensureWindowTables(db, schema);
  const window = await readWindow(db, schema, spec.name);
  if (window?.state === 'closed')
    throw new ParityError('PARITY_PHASE', `${spec.name}'s reverse window was closed by the contract step; there is nothing to cut over`);
  if (spec.reverse!.unrepresentable === 'refuse') {
    const n = await countUnrepresentableRows(newDb, spec);
    if (n > 0)
      throw new ParityError(
        'PARITY_GATE_FAILED',
        `${n} rows of the new representation are outside reverse.representable; the old shape cannot hold them, so the cutover is refused`,
        {
          hint: 'fix those rows, widen reverse.representable, or set reverse.unrepresentable: record (parity spec check-roundtrip lists them)',
        },
      );
  }
  const blockers = await insertBlockers(db, spec);
  if (blockers.length > 0)
    throw new ParityError(
      'PARITY_GATE_FAILED',
      `the old representation would refuse writes during the window:\n${blockers.map((b) => `  ${b}`).join('\n')}`,
      {
        hint: 'relax those columns first (e.g. a ddl.enforce step ALTER TABLE ... ALTER COLUMN ... DROP NOT NULL, or a DEFAULT), then cut over',
      },
    );
  const slot = reverseSlot(spec);
  const { from } = windowTables(spec);
  return withLease(deps, async (lease) => {
    // The slot comes first, outside any transaction (PostgreSQL refuses to create one in a transaction that wrote).
    await ensurePublication(newDb, reversePublication(spec), [from]);
    const existing = await slotInfo(newDb, slot);
    const fromLsn: Lsn = existing ? (existing.confirmedFlushLsn ?? 0n) : await createSlot(newDb, slot);
    await lease.fenced(db, async (tx) => {
      await openWindow(tx, schema, spec.name, slot, fromLsn);
      await setCohort(tx, schema, spec.name, cohort, 'cut-over', lease.token, null);
    });
    const flags = createFlagStore({ redis: deps.redis, migration: spec.name, ...(deps.keyPrefix ? { keyPrefix: deps.keyPrefix } : {}) });
    lease.assertHeld();
    // Forward repairs write the new side from the old one: during the window they would undo writes
    // made to the new side before reverse sync brings them over. Pause them (migration-wide, as the
    // reconciler reads the flag), and remember that the window did it.
    if (!(await flags.read()).flags.killRepair) {
      await flags.set({
        values: [['kill-repair', 'on']],
        actor: input.actor,
        reason: `cutover of ${where}: forward repairs pause during the window`,
      });
      await setPausedRepairs(db, schema, spec.name, true);
    }
    const { changed } = await flags.set({
      ...(cohort ? { cohort } : {}),
      values: [
        ['read', 'new'],
        ['read-percent', '100'],
        ['write', 'new'],
      ],
      actor: input.actor,
      reason: `cutover: ${input.reason}`,
    });
    await appendAudit(deps.control, schema, {
      migration: spec.name,
      cohort,
      action: 'cutover',
      fromPhase: row.phase,
      toPhase: row.phase,
      actor: input.actor,
      reason: input.reason,
      evidence: { slot, fromLsn: formatLsn(fromLsn), token: lease.token.toString(), flagsChanged: changed },
    });
    deps.logger.info(
      { migration: spec.name, cohort, slot },
      'cut over: writes go to the new representation, reverse sync keeps the old one',
    );
    return { migration: spec.name, cohort, slot, fromLsn: formatLsn(fromLsn), token: lease.token.toString() };
  });
}

export async function rollback(
  deps: CutoverDeps,
  input: { cohort?: string; actor: string; reason: string; pollMs?: number; flagsTtlMs?: number },
): Promise<RollbackResult> {
  const { spec, db } = deps;
  assertWindowKind(spec);
  const cohort = cohortOf(spec, input.cohort);
  const schema = spec.control.schema;
  const where = `${spec.name}${cohort ? ` (cohort ${cohort})` : ''}`;
  const window = await readWindow(db, schema, spec.name);
  if (!window || window.state !== 'open')
    throw new ParityError(
      'PARITY_PHASE',
      `${spec.name} has no open reverse window (${window ? 'closed by contract' : 'no cutover ran'}); nothing to roll back`,
    );
  const state = (await readCohorts(db, schema, spec.name)).find((c) => c.cohort === cohort);
  if (state?.state !== 'cut-over')
    throw new ParityError('PARITY_PHASE', `${where} is not cut over (${state ? state.state : 'never cut over'}); nothing to roll back`, {
      hint: 'parity reverse-sync status --spec FILE shows each cohort',
    });
  const flags = createFlagStore({ redis: deps.redis, migration: spec.name, ...(deps.keyPrefix ? { keyPrefix: deps.keyPrefix } : {}) });
  const sleep = deps.sleep ?? ((ms: number) => new Promise<void>((r) => setTimeout(r, ms)));
  return withLease(deps, async (lease) => {
    const started = performance.now();
    // One lease: the deadline is the lease's validity now, not as renewals keep extending it.
    const deadline = lease.validUntil;
    const before = await flags.read(cohort || undefined);
    // Writes move back first: from here on the new side gets no write the old side lacks.
    await flags.set({
      ...(cohort ? { cohort } : {}),
      values: [
        ['write', 'old'],
        ['read', 'old'],
      ],
      actor: input.actor,
      reason: `rollback of the cutover: ${input.reason}`,
    });
    // Applications read flags through a cache (the flags reader's TTL): wait it out, so that every
    // write still routed to the new side by a stale cache commits before the flip marker.
    await sleep(input.flagsTtlMs ?? FLAGS_READER_TTL_MS);
    // In the WAL reverse sync streams (the new side's database): its position is comparable with the applied one.
    const { rows } = await (deps.newDb ?? db).query('SELECT pg_logical_emit_message(true, $1, $2)::text AS lsn', [FLIP_PREFIX, spec.name]);
    const flip = parseLsn(rows[0].lsn);
    let applied: Lsn = 0n;
    for (;;) {
      const position = await readPosition(db, schema, spec.name);
      applied = position?.commitLsn ?? 0n;
      if (applied >= flip) break;
      if (!lease.held || performance.now() > deadline - 2 * (input.pollMs ?? 50)) {
        // Not drained within the lease: put routing back as it was and record nothing.
        await flags.set({
          ...(cohort ? { cohort } : {}),
          values: [
            ['write', before.flags.write],
            ['read', before.flags.read],
          ],
          actor: input.actor,
          reason: 'rollback of the cutover abandoned: reverse sync did not reach the flip within one lease',
        });
        throw new ParityError(
          'PARITY_ABORTED',
          `${where}: reverse sync had applied up to ${formatLsn(applied)}, not the flip at ${formatLsn(flip)}, within one lease; routing is back on the new representation, nothing was lost`,
          { hint: 'check that parity reverse-sync run is running and not lagging (parity reverse-sync status), then roll back again' },
        );
      }
      await sleep(input.pollMs ?? 50);
    }
    await lease.fenced(db, async (tx) => setCohort(tx, schema, spec.name, cohort, 'rolled-back', lease.token, flip));
    // The last cohort back on the old side: forward repairs resume, if the window was what paused them.
    const stillCut = (await readCohorts(db, schema, spec.name)).some((c) => c.state === 'cut-over');
    if (!stillCut && (await readWindow(db, schema, spec.name))?.pausedRepairs) {
      await flags.set({
        values: [['kill-repair', 'off']],
        actor: input.actor,
        reason: 'no cohort is cut over any more: forward repairs resume',
      });
      await setPausedRepairs(db, schema, spec.name, false);
    }
    const waitedMs = Math.round(performance.now() - started);
    await appendAudit(deps.control, schema, {
      migration: spec.name,
      cohort,
      action: 'cutover-rollback',
      fromPhase: null,
      toPhase: null,
      actor: input.actor,
      reason: input.reason,
      evidence: { flipLsn: formatLsn(flip), appliedLsn: formatLsn(applied), waitedMs, token: lease.token.toString() },
    });
    deps.logger.info(
      { migration: spec.name, cohort, flip: formatLsn(flip), waitedMs },
      'rolled back: the old representation is written again',
    );
    return {
      migration: spec.name,
      cohort,
      flipLsn: formatLsn(flip),
      appliedLsn: formatLsn(applied),
      waitedMs,
      token: lease.token.toString(),
    };
  });
}
