/** The reverse apply statements' shape: typed key arrays, conditional writes, quoted identifiers. */
import { describe, expect, it } from 'vitest';
import { applyStatements, crossDatabaseStatements, type ApplyShape } from '../../../services/reverse-sync/apply-sql.js';

const base: ApplyShape = {
  kind: 'same-table',
  from: { schema: 'public', table: 'orders' },
  to: { schema: 'public', table: 'orders' },
  key: [
    { name: 'tenant', type: 'text' },
    { name: 'id', type: 'bigint' },
  ],
  columns: [{ name: 'total_amount', type: 'integer', expr: "CASE WHEN currency = 'USD' THEN total_amount_minor::integer END" }],
  unrepresentableTable: '"parity"."reverse_unrepresentable"',
};

describe('applyStatements', () => {
  it('same table: one conditional UPDATE over the typed key arrays, nothing to delete', () => {
    const st = applyStatements(base);
    expect(st.write).toContain('UPDATE "public"."orders" AS parity_row SET "total_amount" = ((CASE WHEN');
    expect(st.write).toContain('unnest($1::text[], $2::bigint[]) AS parity_k(parity_k0, parity_k1)');
    expect(st.write).toContain('parity_row."tenant" = parity_k.parity_k0 AND parity_row."id" = parity_k.parity_k1');
    // Only rows that differ are written (a replay or an echo writes nothing).
    expect(st.write).toMatch(/IS DISTINCT FROM/);
    expect(st.remove).toBeNull();
    expect(st.clearUnrepresentable).toBeNull();
  });

  it('shadow table: an upsert that only updates differing rows, and a delete of rows gone from the new side', () => {
    const st = applyStatements({ ...base, kind: 'shadow-table', from: { schema: 'public', table: 'orders_v2' } });
    expect(st.write).toContain('INSERT INTO "public"."orders" AS parity_old ("tenant", "id", "total_amount")');
    expect(st.write).toContain('FROM "public"."orders_v2" AS parity_row JOIN unnest(');
    expect(st.write).toContain('ON CONFLICT ("tenant", "id") DO UPDATE SET "total_amount" = EXCLUDED."total_amount"');
    expect(st.write).toMatch(/WHERE \(parity_old\."total_amount", NULL\) IS DISTINCT FROM \(EXCLUDED\."total_amount", NULL\)/);
    expect(st.remove).toContain('NOT EXISTS (SELECT 1 FROM "public"."orders_v2" AS parity_row');
  });

  it('with representable: writes only representable rows and records the others', () => {
    const st = applyStatements({ ...base, representable: "currency = 'USD'" });
    expect(st.write).toContain("coalesce((currency = 'USD'), false)");
    expect(st.recordUnrepresentable).toContain('INSERT INTO "parity"."reverse_unrepresentable" (migration, key, commit_lsn)');
    expect(st.recordUnrepresentable).toContain("WHERE NOT coalesce((currency = 'USD'), false)");
    expect(st.recordUnrepresentable).toContain('$3, jsonb_build_array(parity_row."tenant", parity_row."id"), $4::pg_lsn');
    expect(st.clearUnrepresentable).toContain('u.migration = $3');
  });

  it('quotes identifiers from the spec', () => {
    const st = applyStatements({
      ...base,
      to: { schema: 'we"ird', table: 'or ders' },
      columns: [{ name: 'A"b', type: 'integer', expr: '1' }],
    });
    expect(st.write).toContain('"we""ird"."or ders"');
    expect(st.write).toContain('"A""b" = ((1)::integer)');
  });

  it('cross-database: the new rows are fetched as text on the new side, then upserted and deleted on the old side from text arrays', () => {
    const st = crossDatabaseStatements({
      ...base,
      kind: 'other-database',
      from: { schema: 'public', table: 'orders_v2' },
      representable: "currency = 'USD'",
    });
    // The fetch reads only the new side (the reverse expressions run there) and flags representable rows.
    expect(st.fetch).toContain('parity_row."tenant"::text AS parity_k0, parity_row."id"::text AS parity_k1');
    expect(st.fetch).toContain("((CASE WHEN currency = 'USD' THEN total_amount_minor::integer END)::integer)::text AS parity_c0");
    expect(st.fetch).toContain("coalesce((currency = 'USD'), false) AS parity_rep");
    expect(st.fetch).toContain('FROM "public"."orders_v2" AS parity_row JOIN unnest($1::text[], $2::bigint[])');
    // The old side's statements never name the new table (it is in another database).
    for (const sql of [st.write, st.remove, st.clearUnrepresentable!, st.recordUnrepresentable!]) expect(sql).not.toContain('orders_v2');
    expect(st.write).toContain('FROM unnest($1::text[], $2::text[], $3::text[]) AS parity_v(v0, v1, c0)');
    expect(st.write).toContain('parity_v.v1::bigint, parity_v.c0::integer');
    expect(st.write).toMatch(/IS DISTINCT FROM/);
    // Deleted: the batch's keys that the fetch did not return.
    expect(st.remove).toContain('NOT EXISTS (SELECT 1 FROM unnest($3::text[], $4::bigint[]) AS parity_p(p0, p1)');
    expect(st.recordUnrepresentable).toContain('SELECT $3, jsonb_build_array(parity_k.parity_k0, parity_k.parity_k1), $4::pg_lsn');
  });
});
