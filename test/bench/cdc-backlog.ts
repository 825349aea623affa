/**
 * The CDC benchmark's table and backlog, shared by bench:cdc and the Debezium side-by-side bench so
 * both drain exactly the same changes: ~200-byte rows, inserts then updates in `batch`-row
 * transactions, then one `bigTx`-row transaction.
 */
import type pg from 'pg';

export const BENCH_TP_COLUMNS =
  'id bigint PRIMARY KEY, seq int NOT NULL, amount numeric(12,2) NOT NULL, status text NOT NULL, note text NOT NULL, updated_at timestamptz NOT NULL DEFAULT now()';

/** The ~110-byte note column that makes a row about 200 bytes. */
export const BENCH_NOTE = 'n'.repeat(110);

export interface Backlog {
  /** Changes written: `changes` plus the big transaction's rows. */
  total: number;
  /** pg_current_wal_lsn() after the last commit. */
  endLsn: string;
}

/** Writes the backlog into public.bench_tp (created with BENCH_TP_COLUMNS). */
export async function writeBacklog(
  c: pg.ClientBase,
  o: { changes: number; batch: number; bigTx: number; log: (msg: string) => void },
): Promise<Backlog> {
  const note = BENCH_NOTE;
  const inserts = Math.floor(o.changes / 2);
  const updates = o.changes - inserts;
  o.log(`writing backlog: ${inserts} inserts + ${updates} updates in ${o.batch}-row transactions + one ${o.bigTx}-row transaction`);
  const tw = Date.now();
  const insert = `INSERT INTO public.bench_tp (id, seq, amount, status, note) SELECT g, 1, g * 1.25, $4, $2 FROM generate_series($1::bigint, $1::bigint + $3 - 1) g`;
  for (let i = 0; i < inserts; i += o.batch) {
    await c.query(insert, [i + 1, note, Math.min(o.batch, inserts - i), 'new']);
  }
  for (let i = 0; i < updates; i += o.batch) {
    const n = Math.min(o.batch, updates - i);
    await c.query(`UPDATE public.bench_tp SET seq = seq + 1, status = 'paid', updated_at = now() WHERE id >= $1 AND id < $1 + $2`, [
      (i % inserts) + 1,
      n,
    ]);
  }
  await c.query(insert, [10_000_000, note, o.bigTx, 'big']);
  const { rows } = await c.query<{ lsn: string }>('SELECT pg_current_wal_lsn()::text AS lsn');
  const total = o.changes + o.bigTx;
  const endLsn = rows[0]!.lsn;
  o.log(`backlog written in ${((Date.now() - tw) / 1000).toFixed(1)} s, ${total} changes, end ${endLsn}`);
  return { total, endLsn };
}
