import { describe, expect, it } from 'vitest';
import {
  batchBoundsSql,
  batchWriteSql,
  crossUpsertSql,
  rangePredicate,
  sameTableUpdateSql,
  shadowUpsertSql,
  type BatchShape,
} from '../../../services/backfill/batch-sql.js';
import { chooseRangeRows, sameKey } from '../../../services/backfill/run-plan.js';

const shape: BatchShape = {
  source: { schema: 'public', table: 'Orders"x' },
  target: { schema: 'v2', table: 'orders' },
  key: { columns: ['tenant', 'id'], types: ['integer', 'bigint'] },
  targetKey: [
    { name: 'tenant', expression: 'tenant', type: 'integer' },
    { name: 'id', expression: 'id', type: 'bigint' },
  ],
  columns: [{ name: 'amount minor', expression: 'total_amount::bigint', type: 'bigint' }],
};

describe('batch SQL', () => {
  it('ranges are (lo, hi] by row comparison, with typed text parameters', () => {
    expect(rangePredicate(shape.key, ['1', '10'], ['2', '5'])).toEqual({
      text: '("tenant", "id") > ($1::integer, $2::bigint) AND ("tenant", "id") <= ($3::integer, $4::bigint)',
      values: ['1', '10', '2', '5'],
    });
    expect(rangePredicate(shape.key, null, ['2', '5']).text).toBe('("tenant", "id") <= ($1::integer, $2::bigint)');
    expect(rangePredicate(shape.key, null, null).text).toBe('TRUE');
  });

  it('batch bounds walk the key with LIMIT, never OFFSET, and quote identifiers', () => {
    const q = batchBoundsSql(shape, ['1', '10'], ['9', '9'], 500);
    expect(q.text).not.toMatch(/OFFSET/i);
    expect(q.text).toMatch(/FROM "public"\."Orders""x"/);
    expect(q.text).toMatch(/ORDER BY "tenant", "id" LIMIT \$5\) s/);
    expect(q.text).toMatch(/ORDER BY s\."tenant" DESC, s\."id" DESC LIMIT 1\) b$/);
    expect(q.text).toMatch(/^SELECT b\."tenant"::text AS k0, b\."id"::text AS k1, b\.n FROM/);
    expect(q.values).toEqual(['1', '10', '9', '9', 500]);
  });

  it('a single-column key of a type with max: bounds are max and count of the walk, no window and no sort', () => {
    for (const type of ['bigint', 'integer', 'text', 'numeric(12,2)', 'timestamp(3) with time zone', 'date']) {
      const one: BatchShape = { ...shape, key: { columns: ['Id'], types: [type] } };
      const q = batchBoundsSql(one, ['10'], ['90'], 500);
      expect(q.text).toMatch(/SELECT max\(s\."Id"\) AS "Id", count\(\*\) AS n\s+FROM \(SELECT "Id" FROM "public"\."Orders""x"/);
      expect(q.text).toMatch(/ORDER BY "Id" LIMIT \$3\) s HAVING count\(\*\) > 0\) b$/);
      expect(q.text).not.toMatch(/OVER|OFFSET|DESC/);
      expect(batchWriteSql(one, 'same-table', ['10'], ['90'], 500).text).toMatch(/WITH parity_bounds AS \(SELECT max\(s\."Id"\)/);
    }
    // uuid has no max; varchar's max is text's (a cast): both keep the window form.
    for (const type of ['uuid', 'character varying(20)', 'bigint[]']) {
      const q = batchBoundsSql({ ...shape, key: { columns: ['Id'], types: [type] } }, null, ['90'], 500);
      expect(q.text).toMatch(/count\(\*\) OVER \(\) AS n/);
      expect(q.text).not.toMatch(/max\(/);
    }
  });

  it('same-table: one UPDATE that only touches rows whose new value differs', () => {
    const q = sameTableUpdateSql(shape, null, ['3', '4']);
    expect(q.text).toMatch(/^UPDATE "public"\."Orders""x" SET \("amount minor"\) = ROW\(\(\(total_amount::bigint\)\)::bigint\)/);
    expect(q.text).toMatch(/AND ROW\("amount minor"\) IS DISTINCT FROM ROW\(\(\(total_amount::bigint\)\)::bigint\)$/);
  });

  it('shadow table: INSERT ... SELECT ... FOR SHARE ON CONFLICT DO UPDATE WHERE distinct', () => {
    const q = shadowUpsertSql(shape, ['1', '1'], ['3', '4']);
    expect(q.text).toMatch(/INSERT INTO "v2"\."orders" AS parity_target \("tenant", "id", "amount minor"\)/);
    expect(q.text).toMatch(/FOR SHARE\s+ON CONFLICT \("tenant", "id"\) DO UPDATE SET \("amount minor"\) = ROW\(EXCLUDED\."amount minor"\)/);
    expect(q.text).toMatch(/WHERE ROW\(parity_target\."amount minor"\) IS DISTINCT FROM ROW\(EXCLUDED\."amount minor"\)/);
  });

  it('a batch is one statement: its bounds, then the write over (lo, last key of the bounds]', () => {
    const q = batchWriteSql(shape, 'same-table', ['1', '10'], ['9', '9'], 500);
    expect(q.text).not.toMatch(/OFFSET/i);
    expect(q.text).toMatch(/WITH parity_bounds AS \(/);
    expect(q.text).toMatch(/ORDER BY "tenant", "id" LIMIT \$5\) s/);
    // The write reuses the lo parameters and takes its upper bound from the bounds, not a parameter.
    expect(q.text).toMatch(/parity_write AS \(UPDATE "public"\."Orders""x" SET/);
    expect(q.text).toMatch(
      /WHERE \("tenant", "id"\) > \(\$1::integer, \$2::bigint\) AND \("tenant", "id"\) <= \(SELECT b\."tenant", b\."id" FROM parity_bounds b\) AND ROW/,
    );
    expect(q.text).toMatch(/IS DISTINCT FROM ROW\(\(\(total_amount::bigint\)\)::bigint\) RETURNING 1\)/);
    expect(q.text).toMatch(
      /SELECT b\."tenant"::text AS k0, b\."id"::text AS k1, b\.n, \(SELECT count\(\*\) FROM parity_write\)::int AS changed FROM parity_bounds b$/,
    );
    expect(q.values).toEqual(['1', '10', '9', '9', 500]);
    const first = batchWriteSql(shape, 'shadow-table', null, ['9', '9'], 7);
    expect(first.text).toMatch(
      /WHERE \("tenant", "id"\) <= \(SELECT b\."tenant", b\."id" FROM parity_bounds b\) ORDER BY "tenant", "id" FOR SHARE/,
    );
    expect(first.text).toMatch(/parity_write AS \(INSERT INTO "v2"\."orders" AS parity_target/);
    expect(first.values).toEqual(['9', '9', 7]);
  });

  it('other database: upsert from text arrays cast to the target types', () => {
    const q = crossUpsertSql(shape, [['1'], ['2'], [null]]);
    expect(q.text).toMatch(
      /SELECT u\.v0::integer, u\.v1::bigint, u\.v2::bigint\s+FROM unnest\(\$1::text\[\], \$2::text\[\], \$3::text\[\]\)/,
    );
    expect(q.values).toEqual([['1'], ['2'], [null]]);
  });

  it('a target with only key columns does nothing on conflict', () => {
    expect(shadowUpsertSql({ ...shape, columns: [] }, null, ['1', '1']).text).toMatch(/ON CONFLICT \("tenant", "id"\) DO NOTHING/);
  });
});

describe('range planning', () => {
  it('sizes ranges for the workers, within [minBatchSize, 4 x maxBatchSize]', () => {
    expect(chooseRangeRows(1_000_000, 1, 100, 50_000)).toBe(200_000);
    expect(chooseRangeRows(1_000_000, 2, 100, 50_000)).toBe(125_000);
    expect(chooseRangeRows(100_000, 2, 500, 500)).toBe(2_000);
    expect(chooseRangeRows(-1, 2, 100, 50_000)).toBe(200_000);
    expect(chooseRangeRows(50, 4, 100, 1_000)).toBe(100);
  });

  it('compares keys by every component', () => {
    expect(sameKey(['1', '2'], ['1', '2'])).toBe(true);
    expect(sameKey(['1', '2'], ['1', '3'])).toBe(false);
    expect(sameKey(null, null)).toBe(true);
    expect(sameKey(null, ['1'])).toBe(false);
  });
});
