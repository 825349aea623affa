/**
 * Arrays of `box` on real PostgreSQL through the CDC. array_out separates elements with the element
 * type's typdelim, which for `box` is `;` (a box's own text holds commas: `(1,1),(0,0)`); read with a
 * comma, a 1-D box[] silently became the halves of its boxes and a 2-D one was refused. Snapshot and
 * stream events must carry, element for element, what PostgreSQL itself says each element is
 * (`a[i]::text`, `a[i][j]::text`), for a box[] column and for an array of a domain over box.
 */
import pg from 'pg';
import { describe, expect, it } from 'vitest';
import { readTopic, streamedTable, streamFrom, waitForSlotCatchUp } from './support.js';

/**
 * PostgreSQL's own element texts of an array as JSON (nested for 2-D), subscript by subscript, so the
 * expectation never goes through array text or parity's parser.
 */
const ELEMENTS_FUNCTION = `
  CREATE FUNCTION elements(a anyarray) RETURNS json LANGUAGE sql IMMUTABLE AS $$
    SELECT CASE
      WHEN a IS NULL THEN NULL
      WHEN array_ndims(a) IS NULL THEN '[]'::json
      WHEN array_ndims(a) = 1 THEN (SELECT json_agg(a[i]::text ORDER BY i) FROM generate_subscripts(a, 1) i)
      ELSE (SELECT json_agg((SELECT json_agg(a[i][j]::text ORDER BY j) FROM generate_subscripts(a, 2) j) ORDER BY i)
              FROM generate_subscripts(a, 1) i)
    END $$`;

// Snapshot rows (1-3) and streamed rows (4-6): 1-D, 2-D, NULL elements, explicit bounds, empty, NULL.
const SNAPSHOT_ROWS = `
  INSERT INTO boxes (id, b, d) VALUES
    (1, ARRAY[box '(1,1),(0,0)', box '(3,3),(2,2)'], ARRAY[box '(5,5),(4,4)']::boxd[]),
    (2, ARRAY[[box '(1,1),(0,0)', NULL], [box '(2.5,2),(-1,-1.5)', box '(4,4),(3,3)']], NULL),
    (3, '{}', '[2:3]={(1,1),(0,0);NULL}')`;
const STREAM_ROWS = `
  INSERT INTO boxes (id, b, d) VALUES
    (4, ARRAY[box '(10,10),(9,9)', NULL, box '(0,0),(0,0)'], ARRAY[[box '(1,2),(0,0)'], [box '(3,4),(1,2)']]::boxd[]),
    (5, '[0:1]={(1e-5,2),(0,0);(7,7),(6,6)}', '{}'),
    (6, NULL, ARRAY[NULL, box '(8,8),(7,7)']::boxd[])`;

describe('box[] through the CDC (elements separated by ;)', () => {
  const t = streamedTable('box_array', 'boxes', '(id int PRIMARY KEY, b box[])');

  it('snapshot and stream events hold each box element as PostgreSQL does, 1-D and 2-D, for box[] and an array of a box domain', async () => {
    const setup = new pg.Client({ connectionString: t.db.url });
    await setup.connect();
    try {
      await setup.query('CREATE DOMAIN boxd AS box');
      await setup.query('ALTER TABLE boxes ADD COLUMN d boxd[]');
      await setup.query(ELEMENTS_FUNCTION);
      await setup.query(SNAPSHOT_ROWS);
    } finally {
      await setup.end();
    }
    // exact-text in JSON: Avro has no multi-dimensional arrays.
    const { running, c } = await streamFrom(t, { snapshot: 'initial', encoding: 'exact-text', format: 'json' });
    try {
      await c.query(STREAM_ROWS);
      await c.query(`UPDATE boxes SET b = ARRAY[box '(2,2),(1,1)'], d = b WHERE id = 1`);
      await waitForSlotCatchUp(c, t.slot);
      const changes = await readTopic(t.topic, (x) => x.length >= 7, 60_000);
      expect(changes.length).toBe(7);
      expect(running.connector.health().status).toBe('streaming');

      const { rows } = await c.query<{ id: number; b: unknown; d: unknown }>(
        'SELECT id, elements(b) AS b, elements(d) AS d FROM boxes ORDER BY id',
      );
      // The expectation is not vacuous: the rows hold what this test wrote (PostgreSQL's normalised text).
      expect(rows.find((r) => r.id === 2)!.b).toEqual([
        ['(1,1),(0,0)', null],
        ['(2.5,2),(-1,-1.5)', '(4,4),(3,3)'],
      ]);
      expect(rows.find((r) => r.id === 5)!.b).toEqual(['(1e-05,2),(0,0)', '(7,7),(6,6)']);

      const ops = changes.map((x) => `${x.envelope.op}${x.key!.id}`).sort();
      expect(ops).toEqual(['c4', 'c5', 'c6', 'r1', 'r2', 'r3', 'u1']);
      // The last event per key is the row's present state; each earlier snapshot read equals what was written.
      const last = new Map<number, Record<string, unknown>>();
      for (const change of changes) last.set(Number(change.key!.id), change.envelope.after as Record<string, unknown>);
      for (const row of rows) expect(last.get(row.id)).toEqual({ id: row.id, b: row.b, d: row.d });
      const snapshotOfOne = changes.find((x) => x.envelope.op === 'r' && Number(x.key!.id) === 1)!.envelope.after;
      expect(snapshotOfOne).toEqual({ id: 1, b: ['(1,1),(0,0)', '(3,3),(2,2)'], d: ['(5,5),(4,4)'] });
    } finally {
      await c.end();
      await running.stop();
    }
  });
});
