/**
 * `ALTER ... SET NOT NULL` mid-stream under the Debezium encoding (Avro through the registry), with the
 * value subject's compatibility level at BACKWARD or FULL set through the registry's REST API. Debezium
 * itself makes the column's field required, which both levels refuse, and its stream stops; parity keeps
 * a field the subject already registered as optional optional (a NOT NULL column simply never carries
 * null), so the next events arrive without operator action, a later version (a column added) is
 * registered with the field still optional, and nothing is lost.
 */
import { describe, expect, it } from 'vitest';
import { comparePositions } from '../../../services/core/lsn.js';
import { STACK } from '../../support/stack.js';
import { readTopic, replayState, setCompatibility, streamedTable, streamFrom, waitForSlotCatchUp } from './support.js';

const REGISTRY_JSON = { 'content-type': 'application/vnd.schemaregistry.v1+json' };

async function registry<T>(path: string, init: RequestInit = {}): Promise<{ status: number; body: T }> {
  const res = await fetch(`${STACK.PARITY_REGISTRY_URL}${path}`, { ...init, headers: REGISTRY_JSON });
  const text = await res.text();
  return { status: res.status, body: (text ? JSON.parse(text) : null) as T };
}

interface AvroField {
  name: string;
  type: unknown;
}

/** The row record's fields of a registered Debezium envelope (the `before` branch). */
function rowFields(envelope: { fields: AvroField[] }): AvroField[] {
  const before = envelope.fields.find((f) => f.name === 'before')!;
  return ((before.type as unknown[]).find((b) => typeof b === 'object') as { fields: AvroField[] }).fields;
}

async function latest(subject: string): Promise<{ version: number; id: number; schema: { fields: AvroField[] } }> {
  const { status, body } = await registry<{ version: number; id: number; schema: string }>(
    `/subjects/${encodeURIComponent(subject)}/versions/latest`,
  );
  expect(status).toBe(200);
  return { version: body.version, id: body.id, schema: JSON.parse(body.schema) as { fields: AvroField[] } };
}

for (const level of ['BACKWARD', 'FULL'] as const) {
  describe(`SET NOT NULL under the Debezium encoding (${level})`, () => {
    const t = streamedTable(`notnull_${level.toLowerCase()}`, 'orders', '(id int PRIMARY KEY, amount int)');
    const { slot, topic } = t;
    const subject = `${topic}-value`;

    it('keeps streaming across SET NOT NULL: the field stays optional, later versions register, nothing lost', async () => {
      const { running, c } = await streamFrom(t, { encoding: 'debezium', format: 'avro' });
      try {
        await c.query('INSERT INTO orders VALUES (1, 100)');
        await readTopic(topic, (x) => x.length >= 1, 30_000);
        await setCompatibility(subject, level);

        // Expand: a nullable column, registered as optional.
        await c.query('ALTER TABLE orders ADD COLUMN currency text');
        await c.query(`INSERT INTO orders VALUES (2, 200, NULL), (3, 300, 'EUR')`);
        await readTopic(topic, (x) => x.length >= 3, 30_000);
        const expanded = await latest(subject);
        expect(rowFields(expanded.schema).find((f) => f.name === 'currency')!.type).toEqual(['null', 'string']);

        // What Debezium would register after SET NOT NULL (the field required) is refused at this level:
        // without parity keeping the field optional the stream would stop here.
        const narrowed = JSON.parse(JSON.stringify(expanded.schema)) as { fields: AvroField[] };
        const currency = rowFields(narrowed).find((f) => f.name === 'currency')!;
        currency.type = 'string';
        delete (currency as { default?: unknown }).default;
        const check = await registry<{ is_compatible: boolean }>(`/compatibility/subjects/${encodeURIComponent(subject)}/versions/latest`, {
          method: 'POST',
          body: JSON.stringify({ schema: JSON.stringify(narrowed) }),
        });
        expect(check.status).toBe(200);
        expect(check.body.is_compatible).toBe(false);

        // Enforce, mid-stream (rows 1 and 2 filled first): the next events arrive under the same, still optional, field.
        await c.query(`UPDATE orders SET currency = 'USD' WHERE currency IS NULL`);
        await c.query('ALTER TABLE orders ALTER COLUMN currency SET NOT NULL');
        await c.query(`INSERT INTO orders VALUES (4, 400, 'USD')`);
        await c.query(`UPDATE orders SET amount = 301 WHERE id = 3`);
        const afterEnforce = await readTopic(topic, (x) => x.length >= 7, 60_000);
        expect(afterEnforce.length).toBe(7);
        expect(running.connector.health().status).toBe('streaming');
        const enforced = await latest(subject);
        expect(enforced.id).toBe(expanded.id);
        expect(rowFields(enforced.schema).find((f) => f.name === 'currency')!.type).toEqual(['null', 'string']);

        // A later change registers a new version, in which the field is still optional.
        await c.query(`ALTER TABLE orders ADD COLUMN region text NOT NULL DEFAULT 'eu'`);
        await c.query(`INSERT INTO orders VALUES (5, 500, 'USD', 'us')`);
        await c.query('DELETE FROM orders WHERE id = 1');
        const all = await readTopic(topic, (x) => x.length >= 9, 60_000);
        const grown = await latest(subject);
        expect(grown.version).toBeGreaterThan(enforced.version);
        const fields = rowFields(grown.schema);
        expect(fields.find((f) => f.name === 'currency')!.type).toEqual(['null', 'string']);
        // A column added NOT NULL is required from its first version (nothing registered it optional).
        expect(fields.find((f) => f.name === 'region')!.type).toMatchObject({ type: 'string' });

        // Nothing lost: every change, in order, and the replayed topic equals the table.
        await waitForSlotCatchUp(c, slot);
        const ops = [...all].sort((a, b) => comparePositions(a.position, b.position)).map((x) => `${x.envelope.op}${x.key!.id}`);
        expect(ops).toEqual(['c1', 'c2', 'c3', 'u1', 'u2', 'c4', 'u3', 'c5', 'd1']);
        const { rows } = await c.query('SELECT id, amount, currency, region FROM orders ORDER BY id');
        const state = replayState(all);
        expect([...state.keys()].sort()).toEqual(rows.map((r) => String(r.id)));
        // Rows last written before region existed carry no region; row 5 does.
        for (const { region, ...r } of rows) expect(state.get(String(r.id))).toEqual(r.id === 5 ? { ...r, region } : r);
        expect(running.connector.health().status).toBe('streaming');
      } finally {
        await c.end();
        await running.stop();
      }
    });
  });
}
