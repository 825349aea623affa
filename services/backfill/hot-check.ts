/**
 * What the catalog says about the cost of each backfilled row, checked once at the start and logged
 * as warnings (the run goes on): an update is HOT (heap-only: no new index entries, far less WAL)
 * only when no indexed column changes and the page has room for the new version. A same-table
 * backfill whose written columns are indexed, or whose table is at fillfactor 100, makes (nearly)
 * every row a non-HOT update. And with `wal_compression` off, every page first touched after a
 * checkpoint is logged whole (a full-page image, 8 KiB), which is much of a backfill's WAL. And
 * WAL segments: after a checkpoint the server keeps old 16 MiB segment files for reuse (at least
 * `min_wal_size`, more when the last checkpoint cycles wrote more); a backfill that writes more WAL
 * than that in a cycle makes the server create each further segment on the spot (zero-filled and
 * synced, inside the WAL write that a foreground commit waits for: `IO:WALInitWrite`/`IO:WALInitSync`
 * waits, tens of milliseconds each on a small disk), until checkpoints have seen the new rate.
 * Replication slots that hold back more WAL than `max_wal_size` (a stale or lagging consumer) keep
 * every segment since their restart position, so no segment is ever recycled and every new one is
 * created that way, for as long as they lag.
 */
import type pg from 'pg';

export interface WriteCostFindings {
  /** Indexes of the written table covering a column the backfill writes. */
  indexesOnWrittenColumns: string[];
  /** The table's fillfactor (100 when not set). */
  fillfactor: number;
  walCompression: string;
  /** `min_wal_size` in bytes and `checkpoint_timeout` in seconds. */
  minWalSizeBytes: number;
  checkpointTimeoutSeconds: number;
  /** Replication slots (any database of the cluster) holding back more WAL than `max_wal_size`, most first. */
  slotsHoldingWal: { name: string; bytes: number }[];
  /** `max_wal_size` in bytes. */
  maxWalSizeBytes: number;
}

/** Reads the findings for `schema.table` written in `columns` (same-table backfills). */
export async function writeCostFindings(
  db: Pick<pg.ClientBase, 'query'>,
  schema: string,
  table: string,
  columns: string[],
): Promise<WriteCostFindings> {
  const { rows } = await db.query(
    `SELECT coalesce((SELECT substring(o FROM 'fillfactor=(\\d+)')::int FROM pg_class c, unnest(c.reloptions) o
                       WHERE c.oid = format('%I.%I', $1::text, $2::text)::regclass AND o LIKE 'fillfactor=%'), 100) AS fillfactor,
            current_setting('wal_compression') AS wal_compression,
            pg_size_bytes(current_setting('min_wal_size'))::float8 AS min_wal_size,
            extract(epoch FROM current_setting('checkpoint_timeout')::interval)::float8 AS checkpoint_timeout,
            pg_size_bytes(current_setting('max_wal_size'))::float8 AS max_wal_size,
            coalesce((SELECT json_agg(json_build_object('name', s.slot_name, 'bytes', s.bytes) ORDER BY s.bytes DESC)
                        FROM (SELECT slot_name, pg_wal_lsn_diff(pg_current_wal_insert_lsn(), restart_lsn)::float8 AS bytes
                                FROM pg_replication_slots WHERE restart_lsn IS NOT NULL) s
                       WHERE s.bytes > pg_size_bytes(current_setting('max_wal_size'))), '[]'::json) AS slots,
            coalesce((SELECT array_agg(DISTINCT i.indexrelid::regclass::text ORDER BY i.indexrelid::regclass::text)
                        FROM pg_index i JOIN pg_attribute a ON a.attrelid = i.indrelid
                       WHERE i.indrelid = format('%I.%I', $1::text, $2::text)::regclass AND a.attname = ANY($3::text[])
                         AND (a.attnum = ANY(i.indkey::int2[])
                              OR pg_get_expr(i.indexprs, i.indrelid) ~ ('\\m' || a.attname || '\\M')
                              OR pg_get_expr(i.indpred, i.indrelid) ~ ('\\m' || a.attname || '\\M'))), '{}') AS indexes`,
    [schema, table, columns],
  );
  const r = rows[0] as {
    fillfactor: number;
    wal_compression: string;
    indexes: string[];
    min_wal_size: number;
    checkpoint_timeout: number;
    max_wal_size: number;
    slots: { name: string; bytes: number }[];
  };
  return {
    indexesOnWrittenColumns: r.indexes,
    fillfactor: Number(r.fillfactor),
    walCompression: r.wal_compression,
    minWalSizeBytes: Number(r.min_wal_size),
    checkpointTimeoutSeconds: Number(r.checkpoint_timeout),
    slotsHoldingWal: r.slots.map((x) => ({ name: x.name, bytes: Number(x.bytes) })),
    maxWalSizeBytes: Number(r.max_wal_size),
  };
}

/**
 * The warnings for people, one per finding (empty when the writes can be HOT and FPIs are
 * compressed). With `walBytesPerSecond` (the paced run's WAL budget) also the WAL segments one.
 */
export function writeCostWarnings(f: WriteCostFindings, table: string, walBytesPerSecond?: number): string[] {
  const out: string[] = [];
  if (f.indexesOnWrittenColumns.length > 0) {
    out.push(
      `index(es) ${f.indexesOnWrittenColumns.join(', ')} cover columns the backfill writes: every backfilled row of ${table} is a non-HOT update (new entries in every index, more WAL); build them after the backfill (ddl.enforce)`,
    );
  }
  if (f.fillfactor >= 100) {
    out.push(
      `${table} has fillfactor ${f.fillfactor}: full pages leave no room for a row's new version, so most backfilled rows move to another page (non-HOT); ALTER TABLE ... SET (fillfactor = 90) helps pages written or vacuumed after it`,
    );
  }
  if (f.walCompression === 'off') {
    out.push(
      "wal_compression is off: every page first written after a checkpoint goes to the WAL whole (8 KiB full-page images); wal_compression = lz4 (or pglz) on the server, or GRANT SET ON PARAMETER wal_compression to the backfill's role (pace.walCompression: auto then compresses its own batches), cuts a backfill's WAL by about a quarter",
    );
  }
  const perCycle = walBytesPerSecond === undefined ? 0 : walBytesPerSecond * f.checkpointTimeoutSeconds;
  if (walBytesPerSecond !== undefined && f.minWalSizeBytes < perCycle) {
    const mib = (b: number) => `${Math.round(b / 1048576).toLocaleString('en-US')} MiB`;
    out.push(
      `min_wal_size is ${mib(f.minWalSizeBytes)} but at ${(walBytesPerSecond / 1048576).toFixed(1)} MiB/s the backfill writes ${mib(perCycle)} of WAL per checkpoint_timeout (${f.checkpointTimeoutSeconds} s): until checkpoints have seen that rate the server creates new 16 MiB WAL segments on the spot, each inside a WAL write that foreground commits wait for (IO:WALInitWrite/WALInitSync); min_wal_size = ${mib(perCycle)} keeps that much WAL for reuse after each checkpoint once written`,
    );
  }
  if (f.slotsHoldingWal.length > 0) {
    const gib = (b: number) => `${(b / 2 ** 30).toFixed(1)} GiB`;
    const names = f.slotsHoldingWal.slice(0, 5).map((x) => `${x.name} (${gib(x.bytes)})`);
    out.push(
      `replication slot(s) ${names.join(', ')}${f.slotsHoldingWal.length > 5 ? ` and ${f.slotsHoldingWal.length - 5} more` : ''} hold back more WAL than max_wal_size (${gib(f.maxWalSizeBytes)}): no WAL segment since their restart position can be recycled, so the server creates every new 16 MiB segment on the spot, inside a WAL write that foreground commits wait for (IO:WALInitWrite/WALInitSync), for as long as they lag; let their consumers catch up or drop the stale ones (pg_drop_replication_slot)`,
    );
  }
  return out;
}
