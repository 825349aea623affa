/**
 * What the catalog says about the cost of each backfilled row, checked once at the start and logged
 * as warnings (the run goes on): an update is HOT (heap-only: no new index entries, far less WAL)
 * only when no indexed column changes and the page has room for the new version. A same-table
 * backfill whose written columns are indexed, or whose table is at fillfactor 100, makes (nearly)
 * every row a non-HOT update. And with `wal_compression` off, every page first touched after a
 * checkpoint is logged whole (a full-page image, 8 KiB), which is much of a backfill's WAL.
 */
import type pg from 'pg';

export interface WriteCostFindings {
  /** Indexes of the written table covering a column the backfill writes. */
  indexesOnWrittenColumns: string[];
  /** The table's fillfactor (100 when not set). */
  fillfactor: number;
  walCompression: string;
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
            coalesce((SELECT array_agg(DISTINCT i.indexrelid::regclass::text ORDER BY i.indexrelid::regclass::text)
                        FROM pg_index i JOIN pg_attribute a ON a.attrelid = i.indrelid
                       WHERE i.indrelid = format('%I.%I', $1::text, $2::text)::regclass AND a.attname = ANY($3::text[])
                         AND (a.attnum = ANY(i.indkey::int2[])
                              OR pg_get_expr(i.indexprs, i.indrelid) ~ ('\\m' || a.attname || '\\M')
                              OR pg_get_expr(i.indpred, i.indrelid) ~ ('\\m' || a.attname || '\\M'))), '{}') AS indexes`,
    [schema, table, columns],
  );
  const r = rows[0] as { fillfactor: number; wal_compression: string; indexes: string[] };
  return { indexesOnWrittenColumns: r.indexes, fillfactor: Number(r.fillfactor), walCompression: r.wal_compression };
}

/** The warnings for people, one per finding (empty when the writes can be HOT and FPIs are compressed). */
export function writeCostWarnings(f: WriteCostFindings, table: string): string[] {
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
      "wal_compression is off: every page first written after a checkpoint goes to the WAL whole (8 KiB full-page images); wal_compression = lz4 (or pglz) usually halves a backfill's WAL",
    );
  }
  return out;
}
