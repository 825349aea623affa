/**
 * Replication slot and publication management, with the checks that decide whether CDC can run at all:
 * wal_level, the replication privilege, and each table's REPLICA IDENTITY (which decides how complete
 * before-images are). Slot and publication names are validated and quoted here, because the
 * replication library puts them into its START_REPLICATION command unescaped.
 */
import pg from 'pg';
import { ParityError } from '../../services/core/errors.js';
import { type Lsn, parseLsn } from '../../services/core/lsn.js';
import { ident, literal, qualified } from '../../services/core/sql.js';
import { type TableInfo, tableInfo } from './catalog.js';

type Queryable = Pick<pg.ClientBase, 'query'>;

export interface TableRef {
  schema: string;
  table: string;
}

/** PostgreSQL allows only lower-case letters, digits and "_" in slot names. */
export function validateSlotName(slot: string): void {
  if (!/^[a-z0-9_]{1,63}$/.test(slot)) {
    throw new ParityError('PARITY_BAD_INPUT', `cdc.slot "${slot}" is not a valid replication slot name`, {
      hint: 'use only lower-case letters, digits and "_" (no "-"), at most 63 characters',
    });
  }
}

/** The publication name travels inside a quoted option of START_REPLICATION, so `'` cannot be allowed. */
export function validatePublicationName(publication: string): void {
  if (publication.includes("'") || publication.includes('\u0000')) {
    throw new ParityError('PARITY_BAD_INPUT', `cdc.publication "${publication}" contains a quote`, {
      hint: 'choose a publication name without quotes',
    });
  }
}

/** The `publication_names` option value: the name as a quoted identifier (case and commas kept). */
export function publicationOption(publication: string): string {
  return `"${publication.replaceAll('"', '""')}"`;
}

export interface SourceCheck {
  tables: TableInfo[];
  /** Things that work but deserve attention (incomplete before-images). */
  warnings: string[];
}

export interface CheckOptions {
  /** Run `ALTER TABLE ... REPLICA IDENTITY FULL` on tables that need it instead of failing/warning. */
  setReplicaIdentityFull?: boolean;
  lockTimeoutMs?: number;
}

/**
 * Checks that the source can feed CDC: wal_level=logical, a role with REPLICATION (or superuser), every
 * table present, and a usable REPLICA IDENTITY. A table that cannot identify its rows (NOTHING, or
 * DEFAULT without a primary key) is refused: once in a publication, its UPDATEs and DELETEs would fail
 * on the source. Tables without full before-images are reported as warnings.
 */
export async function checkSource(db: Queryable, tables: TableRef[], options: CheckOptions = {}): Promise<SourceCheck> {
  const wal = await db.query<{ wal_level: string }>('SHOW wal_level');
  if (wal.rows[0]?.wal_level !== 'logical') {
    throw new ParityError('PARITY_WAL_LEVEL', `wal_level is ${wal.rows[0]?.wal_level ?? 'unknown'}, CDC needs logical`, {
      hint: 'set wal_level = logical in postgresql.conf (ALTER SYSTEM SET wal_level = logical) and restart PostgreSQL',
    });
  }
  const role = await db.query<{ rolname: string; ok: boolean }>(
    'SELECT rolname, (rolreplication OR rolsuper) AS ok FROM pg_catalog.pg_roles WHERE rolname = current_user',
  );
  if (!role.rows[0]?.ok) {
    throw new ParityError(
      'PARITY_REPLICATION_PRIVILEGE',
      `role ${role.rows[0]?.rolname ?? '(current user)'} has no REPLICATION privilege`,
      {
        hint: `ALTER ROLE ${role.rows[0]?.rolname ?? '<role>'} WITH REPLICATION (and grant it SELECT on the captured tables)`,
      },
    );
  }
  const infos: TableInfo[] = [];
  const warnings: string[] = [];
  for (const ref of tables) {
    let info = await tableInfo(db, ref.schema, ref.table);
    if (!info) {
      throw new ParityError('PARITY_BAD_INPUT', `table ${ref.schema}.${ref.table} does not exist on the source`, {
        hint: 'check source.schema/source.table and cdc.tables in the spec',
      });
    }
    const name = `${ref.schema}.${ref.table}`;
    const unusable = info.replicaIdentity === 'n' || (info.replicaIdentity === 'd' && info.primaryKey.length === 0);
    const partial = info.replicaIdentity === 'd' || info.replicaIdentity === 'i';
    if ((unusable || partial) && options.setReplicaIdentityFull) {
      await setReplicaIdentityFull(db, ref, options.lockTimeoutMs ?? 2_000);
      info = (await tableInfo(db, ref.schema, ref.table))!;
    } else if (unusable) {
      throw new ParityError(
        'PARITY_BAD_INPUT',
        `${name} has REPLICA IDENTITY ${info.replicaIdentity === 'n' ? 'NOTHING' : 'DEFAULT and no primary key'}: its UPDATEs and DELETEs would fail on the source once it is published`,
        {
          hint: `add a primary key, or rerun with --set-replica-identity-full (ALTER TABLE ${qualified(ref.schema, ref.table)} REPLICA IDENTITY FULL)`,
        },
      );
    } else if (partial) {
      warnings.push(
        `${name} has REPLICA IDENTITY ${info.replicaIdentity === 'd' ? 'DEFAULT' : 'USING INDEX'}: update events carry no before-image, delete events carry only the key columns, and an unchanged TOASTed value arrives as the placeholder "__debezium_unavailable_value"; rerun with --set-replica-identity-full for complete before-images`,
      );
    }
    infos.push(info);
  }
  return { tables: infos, warnings };
}

async function setReplicaIdentityFull(db: Queryable, ref: TableRef, lockTimeoutMs: number): Promise<void> {
  // Short lock_timeout: ALTER TABLE takes an exclusive lock and must not queue behind long transactions.
  await db.query('BEGIN');
  try {
    await db.query(`SET LOCAL lock_timeout = ${Math.max(1, Math.floor(lockTimeoutMs))}`);
    await db.query(`ALTER TABLE ${qualified(ref.schema, ref.table)} REPLICA IDENTITY FULL`);
    await db.query('COMMIT');
  } catch (err) {
    await db.query('ROLLBACK').catch(() => undefined);
    if ((err as { code?: string }).code === '55P03') {
      throw new ParityError(
        'PARITY_LOCK_TIMEOUT',
        `could not lock ${ref.schema}.${ref.table} to set REPLICA IDENTITY FULL within ${lockTimeoutMs} ms`,
        {
          cause: err,
          hint: 'a long transaction holds the table; retry when it is done',
        },
      );
    }
    throw err;
  }
}

/**
 * Creates the publication for `tables`, or adds the missing ones to an existing publication (never
 * removes tables someone else added).
 */
export async function ensurePublication(db: Queryable, publication: string, tables: TableRef[]): Promise<void> {
  validatePublicationName(publication);
  const existing = await db.query('SELECT 1 FROM pg_catalog.pg_publication WHERE pubname = $1', [publication]);
  const list = tables.map((t) => qualified(t.schema, t.table)).join(', ');
  if (existing.rows.length === 0) {
    try {
      await db.query(`CREATE PUBLICATION ${ident(publication)} FOR TABLE ${list}`);
      return;
    } catch (err) {
      // Another process created it concurrently: fall through and add what is missing.
      if ((err as { code?: string }).code !== '42710') throw err;
    }
  }
  const { rows } = await db.query<{ schemaname: string; tablename: string }>(
    'SELECT schemaname, tablename FROM pg_catalog.pg_publication_tables WHERE pubname = $1',
    [publication],
  );
  const have = new Set(rows.map((r) => `${r.schemaname}.${r.tablename}`));
  const missing = tables.filter((t) => !have.has(`${t.schema}.${t.table}`));
  if (missing.length > 0) {
    await db.query(`ALTER PUBLICATION ${ident(publication)} ADD TABLE ${missing.map((t) => qualified(t.schema, t.table)).join(', ')}`);
  }
}

export interface SlotInfo {
  slot: string;
  plugin: string;
  database: string;
  active: boolean;
  activePid: number | null;
  restartLsn: Lsn | null;
  confirmedFlushLsn: Lsn | null;
  walStatus: string | null;
  safeWalSize: number | null;
}

export async function slotInfo(db: Queryable, slot: string): Promise<SlotInfo | null> {
  const { rows } = await db.query(
    `SELECT slot_name, plugin, database, active, active_pid, restart_lsn::text, confirmed_flush_lsn::text, wal_status, safe_wal_size
       FROM pg_catalog.pg_replication_slots WHERE slot_name = $1`,
    [slot],
  );
  const r = rows[0];
  if (!r) return null;
  return {
    slot: r.slot_name,
    plugin: r.plugin,
    database: r.database,
    active: r.active,
    activePid: r.active_pid,
    restartLsn: r.restart_lsn ? parseLsn(r.restart_lsn) : null,
    confirmedFlushLsn: r.confirmed_flush_lsn ? parseLsn(r.confirmed_flush_lsn) : null,
    walStatus: r.wal_status,
    safeWalSize: r.safe_wal_size === null ? null : Number(r.safe_wal_size),
  };
}

/** Refuses a slot that exists for another plugin or database: it belongs to someone else. */
export async function assertSlotUsable(db: Queryable, info: SlotInfo): Promise<void> {
  const { rows } = await db.query<{ db: string }>('SELECT current_database() AS db');
  if (info.plugin !== 'pgoutput' || info.database !== rows[0]?.db) {
    throw new ParityError(
      'PARITY_BAD_INPUT',
      `replication slot ${info.slot} exists for plugin ${info.plugin} in database ${info.database}`,
      {
        hint: 'one slot per pipeline: choose another cdc.slot name (sharing a slot silently loses data)',
      },
    );
  }
}

export interface ExportedSlot {
  consistentPoint: Lsn;
  snapshotName: string;
  /**
   * Closes the replication connection. The exported snapshot is valid only until then, so import it
   * (`SET TRANSACTION SNAPSHOT`) in every reader first.
   */
  release(): Promise<void>;
}

/**
 * Creates the slot on a replication connection with an exported snapshot: rows read under that snapshot
 * plus the changes streamed from `consistentPoint` form a gap-free, duplicate-free history.
 */
export async function createSlotWithSnapshot(connectionString: string, slot: string): Promise<ExportedSlot> {
  validateSlotName(slot);
  const client = new pg.Client({ connectionString, replication: 'database', application_name: 'parity-cdc-slot' } as pg.ClientConfig);
  client.on('error', () => undefined);
  await client.connect();
  try {
    const { rows } = await client.query(`CREATE_REPLICATION_SLOT ${ident(slot)} LOGICAL pgoutput (SNAPSHOT 'export')`);
    const row = rows[0] as { consistent_point: string; snapshot_name: string };
    return {
      consistentPoint: parseLsn(row.consistent_point),
      snapshotName: row.snapshot_name,
      release: () => client.end().catch(() => undefined),
    };
  } catch (err) {
    await client.end().catch(() => undefined);
    throw slotError(err, slot);
  }
}

/** Creates the slot without a snapshot (cdc.snapshot: never). Returns its consistent point. */
export async function createSlot(db: Queryable, slot: string): Promise<Lsn> {
  validateSlotName(slot);
  try {
    const { rows } = await db.query<{ lsn: string }>(
      `SELECT lsn::text FROM pg_catalog.pg_create_logical_replication_slot($1, 'pgoutput')`,
      [slot],
    );
    return parseLsn(rows[0]!.lsn);
  } catch (err) {
    throw slotError(err, slot);
  }
}

function slotError(err: unknown, slot: string): ParityError {
  const code = (err as { code?: string }).code;
  if (code === '42710')
    return new ParityError('PARITY_CONFLICT', `replication slot ${slot} already exists`, { cause: err, retriable: true });
  if (code === '53400') {
    return new ParityError('PARITY_BAD_INPUT', `no free replication slot for ${slot}: ${(err as Error).message}`, {
      cause: err,
      hint: 'raise max_replication_slots (and max_wal_senders), or drop unused slots with parity cdc drop-slot',
    });
  }
  return new ParityError('PARITY_CONNECTION', `cannot create replication slot ${slot}: ${(err as Error).message}`, { cause: err });
}

export interface DropResult {
  slotDropped: boolean;
  publicationDropped: boolean;
}

/**
 * Drops the slot (releasing the WAL it pins) and the publication. An active slot is refused unless
 * `force`, which terminates the walsender using it first.
 */
export async function dropSlotAndPublication(db: Queryable, slot: string, publication: string, force = false): Promise<DropResult> {
  const info = await slotInfo(db, slot);
  let slotDropped = false;
  if (info) {
    if (info.active) {
      if (!force) {
        throw new ParityError('PARITY_SLOT_IN_USE', `replication slot ${slot} is in use by PID ${info.activePid}`, {
          retriable: false,
          hint: 'stop `parity cdc run` first, or pass --force to terminate the process streaming from it',
        });
      }
      await db.query('SELECT pg_terminate_backend($1)', [info.activePid]);
      for (let i = 0; i < 50; i++) {
        const again = await slotInfo(db, slot);
        if (!again?.active) break;
        await new Promise((r) => setTimeout(r, 100));
      }
    }
    await db.query('SELECT pg_catalog.pg_drop_replication_slot($1)', [slot]);
    slotDropped = true;
  }
  const pub = await db.query('SELECT 1 FROM pg_catalog.pg_publication WHERE pubname = $1', [publication]);
  if (pub.rows.length > 0) await db.query(`DROP PUBLICATION IF EXISTS ${ident(publication)}`);
  return { slotDropped, publicationDropped: pub.rows.length > 0 };
}

export interface SlotLag {
  currentLsn: Lsn;
  confirmedFlushLsn: Lsn | null;
  /** WAL written since the slot's confirmed position (what a restart would re-read at most). */
  lagBytes: number;
  /** WAL the slot pins (current - restart_lsn). */
  retainedBytes: number;
}

export async function slotLag(db: Queryable, slot: string): Promise<SlotLag | null> {
  const { rows } = await db.query(
    `SELECT pg_current_wal_lsn()::text AS current,
            confirmed_flush_lsn::text AS confirmed,
            COALESCE(pg_wal_lsn_diff(pg_current_wal_lsn(), confirmed_flush_lsn), 0)::float8 AS lag,
            COALESCE(pg_wal_lsn_diff(pg_current_wal_lsn(), restart_lsn), 0)::float8 AS retained
       FROM pg_catalog.pg_replication_slots WHERE slot_name = ${literal(slot)}`,
  );
  const r = rows[0];
  if (!r) return null;
  return {
    currentLsn: parseLsn(r.current),
    confirmedFlushLsn: r.confirmed ? parseLsn(r.confirmed) : null,
    lagBytes: Math.max(0, Number(r.lag)),
    retainedBytes: Math.max(0, Number(r.retained)),
  };
}
