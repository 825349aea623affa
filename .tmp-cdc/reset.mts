import pg from 'pg';
import { readFileSync } from 'node:fs';
const p = JSON.parse(readFileSync('/work/main/.tmp-cdc/prof.json', 'utf8'));
const c = new pg.Client({ connectionString: p.db }); await c.connect();
// Rewind: recreate the slot at the current point and write a fresh backlog.
await c.query('SELECT pg_drop_replication_slot($1)', [p.slot]);
await c.query(`SELECT pg_create_logical_replication_slot($1, 'pgoutput')`, [p.slot]);
await c.query('TRUNCATE public.bench_tp');
const note = 'n'.repeat(110);
for (let i = 0; i < 100000; i += 2000) await c.query(`INSERT INTO public.bench_tp (id, seq, amount, status, note) SELECT g, 1, g * 1.25, 'new', $2 FROM generate_series($1::bigint, $1::bigint + 1999) g`, [i + 1, note]);
await c.end();
