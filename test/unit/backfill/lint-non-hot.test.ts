import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { lintContext, lintDdl } from '../../../services/coordinator/lint.js';
import { parseSpec } from '../../../services/core/spec.js';

// The worked example: a same-table backfill of orders writing total_amount_minor and currency.
const example = parseSpec(
  readFileSync(new URL('../../../schemas/examples/orders-multicurrency.yaml', import.meta.url), 'utf8'),
  'example',
  {
    PARITY_SOURCE_URL: 'postgres://u@127.0.0.1:5432/db',
  },
).spec;
const context = lintContext(example);
type Steps = { name: string; sql: string }[];
const step = (sql: string) => ({ name: sql.slice(0, 30), sql });
const warnings = (ddl: { expand?: Steps; enforce?: Steps }) =>
  lintDdl({ expand: ddl.expand ?? [], enforce: ddl.enforce ?? [], contract: [] }, context).findings.filter((f) => f.severity === 'warning');

describe('lint: backfill-non-hot (the backfill could not update rows in place)', () => {
  it('warns when an expand index covers a column the backfill writes, and names it', () => {
    const w = warnings({ expand: [step('CREATE INDEX CONCURRENTLY orders_currency ON public.orders (currency)')] });
    expect(w.map((f) => f.rule)).toEqual(['backfill-non-hot']);
    expect(w[0]?.message).toMatch(
      /^the index covers currency, which the backfill writes in every row of public\.orders, so every backfilled row is a non-HOT update/,
    );
    expect(w[0]?.alternative).toMatch(/ddl\.enforce/);
    // In an expression, a partial index's predicate, or INCLUDE.
    expect(warnings({ expand: [step('CREATE INDEX CONCURRENTLY o1 ON orders (lower(currency))')] })).toHaveLength(1);
    expect(warnings({ expand: [step('CREATE INDEX CONCURRENTLY o2 ON orders (customer_id) WHERE total_amount_minor > 0')] })).toHaveLength(
      1,
    );
    expect(warnings({ expand: [step('CREATE INDEX CONCURRENTLY o3 ON orders (customer_id) INCLUDE (currency)')] })).toHaveLength(1);
  });

  it('is quiet for indexes on other columns or tables, and for indexes built after the backfill', () => {
    expect(warnings({ expand: [step('CREATE INDEX CONCURRENTLY o4 ON orders (customer_id)')] })).toEqual([]);
    expect(warnings({ expand: [step('CREATE INDEX CONCURRENTLY o5 ON other.orders (currency)')] })).toEqual([]);
    expect(warnings({ enforce: [step('CREATE INDEX CONCURRENTLY o6 ON orders (currency)')] })).toEqual([]);
  });

  it('warns when the DDL sets the table to fillfactor 100, not for a lower one', () => {
    const w = warnings({ expand: [step('ALTER TABLE orders SET (fillfactor = 100)')] });
    expect(w.map((f) => f.rule)).toEqual(['backfill-non-hot']);
    expect(w[0]?.message).toMatch(/^fillfactor 100 leaves no room/);
    expect(warnings({ expand: [step('ALTER TABLE orders SET (fillfactor = 90)')] })).toEqual([]);
  });

  it('a warning never counts as an error', () => {
    const r = lintDdl(
      { expand: [step('CREATE INDEX CONCURRENTLY orders_currency ON orders (currency)')], enforce: [], contract: [] },
      context,
    );
    expect(r.errors).toBe(0);
  });
});
