import { describe, expect, it } from 'vitest';
import {
  cleanSql,
  isTransactional,
  parseCreateIndex,
  planPhase,
  splitTopLevel,
  tableName,
} from '../../../services/coordinator/ddl-statement.js';

describe('DDL statements', () => {
  it('strips comments outside quotes, collapses whitespace and reads allow directives', () => {
    const { sql, allow } = cleanSql(
      "ALTER TABLE t  -- note\n  ADD COLUMN c text DEFAULT 'a  -- b' /* parity:allow type-change, volatile-default */ ;",
    );
    expect(sql).toBe("ALTER TABLE t ADD COLUMN c text DEFAULT 'a  -- b'");
    expect([...allow]).toEqual(['type-change', 'volatile-default']);
  });

  it('splits actions at top-level commas only', () => {
    expect(splitTopLevel("ADD COLUMN a numeric(10,2), ADD COLUMN b text DEFAULT 'x,y'")).toEqual([
      'ADD COLUMN a numeric(10,2)',
      "ADD COLUMN b text DEFAULT 'x,y'",
    ]);
  });

  it('resolves table names like PostgreSQL', () => {
    expect(tableName('Orders')).toBe('public.orders');
    expect(tableName('shop."Orders"')).toBe('shop.Orders');
  });

  it('parses index builds', () => {
    expect(parseCreateIndex('CREATE UNIQUE INDEX CONCURRENTLY IF NOT EXISTS "o_ref" ON ONLY shop.orders (ref)')).toEqual({
      unique: true,
      concurrently: true,
      name: '"o_ref"',
      table: 'shop.orders',
    });
    expect(parseCreateIndex('create index on orders (id)')).toEqual({
      unique: false,
      concurrently: false,
      name: undefined,
      table: 'orders',
    });
  });

  it('plans index builds and drops CONCURRENTLY, outside transactions', () => {
    const [build, drop] = planPhase('expand', [
      { name: 'idx', sql: 'CREATE UNIQUE INDEX o_ref ON orders (ref);' },
      { name: 'drop', sql: 'DROP INDEX IF EXISTS o_old' },
    ]);
    expect(build).toMatchObject({
      sql: 'CREATE UNIQUE INDEX CONCURRENTLY o_ref ON orders (ref)',
      transactional: false,
      index: { name: 'o_ref', table: 'orders' },
      rewrittenFrom: 'CREATE UNIQUE INDEX o_ref ON orders (ref)',
    });
    expect(drop).toMatchObject({ sql: 'DROP INDEX CONCURRENTLY IF EXISTS o_old', transactional: false });
  });

  it('splits a CHECK or FOREIGN KEY constraint into NOT VALID and VALIDATE', () => {
    const plan = planPhase('enforce', [
      {
        name: 'fk',
        sql: 'ALTER TABLE IF EXISTS orders ADD CONSTRAINT orders_customer_fk FOREIGN KEY (customer_id) REFERENCES customers (id)',
      },
    ]);
    expect(plan.map((a) => [a.name, a.sql, a.transactional])).toEqual([
      [
        'fk',
        'ALTER TABLE IF EXISTS orders ADD CONSTRAINT orders_customer_fk FOREIGN KEY (customer_id) REFERENCES customers (id) NOT VALID',
        true,
      ],
      ['fk (validate)', 'ALTER TABLE orders VALIDATE CONSTRAINT orders_customer_fk', true],
    ]);
    const already = planPhase('enforce', [{ name: 'c', sql: 'ALTER TABLE orders ADD CONSTRAINT c CHECK (x > 0) NOT VALID' }]);
    expect(already).toHaveLength(1);
    expect(already[0]?.rewrittenFrom).toBeUndefined();
  });
});

describe('the plan, classified by the parser', () => {
  it('runs a DO block exactly as written, in a transaction', () => {
    const body = "DO $$\nBEGIN\n  -- it's a comment with a quote\n  RAISE NOTICE 'CONCURRENTLY';\nEND\n$$;";
    const [action] = planPhase('expand', [{ name: 'do', sql: body }]);
    expect(action).toMatchObject({ sql: body.replace(/;$/, ''), transactional: true });
  });

  it('is not fooled by CONCURRENTLY or CREATE INDEX inside a string literal', () => {
    const [action] = planPhase('expand', [
      { name: 'c', sql: "ALTER TABLE orders ADD COLUMN note text DEFAULT 'CREATE INDEX CONCURRENTLY x ON y'" },
    ]);
    expect(action).toMatchObject({ transactional: true });
    expect(action?.rewrittenFrom).toBeUndefined();
    expect(isTransactional('REINDEX TABLE CONCURRENTLY orders')).toBe(false);
    expect(isTransactional('VACUUM orders')).toBe(false);
    expect(isTransactional("COMMENT ON TABLE orders IS 'built CONCURRENTLY'")).toBe(true);
  });
});
