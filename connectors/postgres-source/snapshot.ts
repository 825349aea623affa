/**
 * Snapshot reads: primary-key-ordered chunks read as text (keyset pagination, never OFFSET), and the
 * initial snapshot inside the slot's exported snapshot.
 *
 * Gap-free, duplicate-free handoff: the slot is created with `SNAPSHOT 'export'`; every chunk is read in
 * one REPEATABLE READ transaction that imported that snapshot, so the rows are exactly the state at the
 * slot's consistent point; streaming then starts at that point (the slot's confirmed position, which
 * nothing acknowledges during the snapshot). Each change is therefore either in the snapshot or in the
 * stream, never both and never neither.
 *
 * Resumable: each table's last emitted key is checkpointed once Kafka acknowledged its chunk. An
 * exported snapshot dies with its connection, so after a crash the remaining key range of each table is
 * read by the watermark method instead (incremental-snapshot.ts), which is consistent with the stream
 * without a snapshot.
 */
import type pg from 'pg';
import type { Row } from '../../services/core/change-event.js';
import { ident, qualified } from '../../services/core/sql.js';
import { type RelationState, columnValueError } from './change-builder.js';

type Queryable = Pick<pg.ClientBase, 'query'>;

/** Every column as its text output, whatever `pg.types` says. */
const TEXT_TYPES = { getTypeParser: () => (value: string) => value };

export interface Chunk {
  rows: { key: Row | null; row: Row }[];
  /** Key text of the last row read (the next chunk starts after it), or null when the chunk is empty. */
  lastKey: string[] | null;
}

/**
 * Reads up to `limit` rows with a key above `afterKey` (key texts, in key order), in key order. Values are
 * converted exactly as the stream converts them. Tables without a key are read whole in one chunk.
 */
export async function readChunk(db: Queryable, relation: RelationState, afterKey: string[] | null, limit: number): Promise<Chunk> {
  const cols = relation.columns.map((c) => ident(c.name)).join(', ');
  const keys = relation.keyColumns;
  const table = qualified(relation.schema, relation.table);
  let text: string;
  let values: unknown[] = [];
  if (keys.length === 0) {
    text = `SELECT ${cols} FROM ${table}`;
  } else {
    const keyList = keys.map(ident).join(', ');
    const where = afterKey ? `WHERE (${keyList}) > (${keys.map((_, i) => `$${i + 1}`).join(', ')})` : '';
    text = `SELECT ${cols} FROM ${table} ${where} ORDER BY ${keyList} LIMIT ${Math.max(1, Math.floor(limit))}`;
    values = afterKey ?? [];
  }
  const result = await db.query({ text, values, rowMode: 'array', types: TEXT_TYPES } as pg.QueryConfig);
  const keyIndexes = keys.map((k) => relation.columns.findIndex((c) => c.name === k));
  const rows: Chunk['rows'] = [];
  let lastKey: string[] | null = null;
  for (const raw of result.rows as (string | null)[][]) {
    const row: Row = {};
    relation.columns.forEach((c, i) => {
      const v = raw[i];
      try {
        row[c.name] = v === null || v === undefined ? null : c.convert(v);
      } catch (err) {
        throw columnValueError(err, relation.name, c.name);
      }
    });
    let key: Row | null = null;
    if (keys.length > 0) {
      key = {};
      for (const k of keys) key[k] = row[k] ?? null;
      lastKey = keyIndexes.map((i) => raw[i] as string);
    }
    rows.push({ key, row });
  }
  return { rows, lastKey: keys.length === 0 ? null : lastKey };
}

/** Opens a REPEATABLE READ READ ONLY transaction on `client` that sees the exported snapshot. */
export async function importSnapshot(client: Queryable, snapshotName: string): Promise<void> {
  await client.query('BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY');
  await client.query(`SET TRANSACTION SNAPSHOT '${snapshotName.replace(/'/g, "''")}'`);
}

export interface InitialSnapshotTable {
  relation: RelationState;
  /** "schema.table" */
  name: string;
}

export interface InitialSnapshotOptions {
  /** A connection inside the imported snapshot transaction. */
  reader: Queryable;
  tables: InitialSnapshotTable[];
  chunkRows: number;
  /** Sends a chunk's rows to Kafka; resolves once every one is acknowledged. */
  emit: (table: InitialSnapshotTable, rows: Chunk['rows']) => Promise<void>;
  /** Checkpoints a table after an acknowledged chunk. */
  checkpoint: (table: InitialSnapshotTable, lastKey: string[] | null, rows: number, done: boolean) => Promise<void>;
  signal?: AbortSignal;
}

/** Reads every table chunk by chunk inside the imported snapshot. Returns rows emitted per table. */
export async function runInitialSnapshot(options: InitialSnapshotOptions): Promise<Map<string, number>> {
  const counts = new Map<string, number>();
  for (const table of options.tables) {
    let afterKey: string[] | null = null;
    let rows = 0;
    await options.checkpoint(table, null, 0, false);
    for (;;) {
      if (options.signal?.aborted) throw new Error('snapshot aborted');
      const chunk = await readChunk(options.reader, table.relation, afterKey, options.chunkRows);
      if (chunk.rows.length > 0) await options.emit(table, chunk.rows);
      rows += chunk.rows.length;
      const done = chunk.rows.length < options.chunkRows || table.relation.keyColumns.length === 0;
      if (chunk.lastKey) afterKey = chunk.lastKey;
      await options.checkpoint(table, afterKey, rows, done);
      if (done) break;
    }
    counts.set(table.name, rows);
  }
  return counts;
}
