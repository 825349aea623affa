import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { lintContext, lintDdl, lintSpec } from '../../../services/coordinator/lint.js';
import { parseSpec } from '../../../services/core/spec.js';

type Steps = { name: string; sql: string }[];
const example = parseSpec(
  readFileSync(new URL('../../../schemas/examples/orders-multicurrency.yaml', import.meta.url), 'utf8'),
  'example',
  { PARITY_SOURCE_URL: 'postgres://u@127.0.0.1:5432/db' },
).spec;
const context = lintContext(example);
const lint = (ddl: { expand?: Steps; enforce?: Steps; contract?: Steps }) =>
  lintDdl({ expand: ddl.expand ?? [], enforce: ddl.enforce ?? [], contract: ddl.contract ?? [] }, context);
const errors = (ddl: { expand?: Steps; enforce?: Steps; contract?: Steps }) =>
  lint(ddl)
    .findings.filter((f) => f.severity === 'error')
    .map((f) => f.rule);
const step = (sql: string, name = sql.slice(0, 30)) => ({ name, sql });

describe('DDL lint on the parse tree: the new rules', () => {
  it('passes the worked example with its context', () => {
    expect(lintSpec(example)).toEqual({ findings: [], errors: 0 });
  });

  it('dml: DELETE, MERGE and UPDATE without a key bound; an UPDATE bounded by key passes', () => {
    expect(errors({ expand: [step('DELETE FROM orders WHERE total_amount < 0')] })).toEqual(['dml']);
    expect(errors({ expand: [step("UPDATE orders SET currency = 'USD'")] })).toEqual(['dml']);
    expect(errors({ expand: [step("UPDATE orders SET currency = 'USD' WHERE id > 10")] })).toEqual(['dml']);
    expect(errors({ expand: [step("UPDATE orders SET currency = 'USD' WHERE id BETWEEN 1 AND 1000")] })).toEqual([]);
    expect(errors({ expand: [step("UPDATE orders SET currency = 'USD' WHERE id >= 1 AND id < 1000 AND currency IS NULL")] })).toEqual([]);
    expect(errors({ expand: [step("UPDATE orders SET currency = 'USD' WHERE id IN (1, 2, 3)")] })).toEqual([]);
    expect(errors({ expand: [step('DELETE FROM orders_audit WHERE id = 1 /* parity:allow dml */')] })).toEqual([]);
  });

  it('data-modifying-cte: a WITH clause that writes', () => {
    expect(errors({ expand: [step('WITH gone AS (DELETE FROM orders RETURNING id) SELECT count(*) FROM gone')] })).toEqual([
      'data-modifying-cte',
    ]);
    expect(errors({ expand: [step('WITH recent AS (SELECT id FROM orders) SELECT count(*) FROM recent')] })).toEqual([]);
  });

  it('lock-table: LOCK TABLE', () => {
    expect(errors({ expand: [step('LOCK TABLE orders IN ACCESS EXCLUSIVE MODE')] })).toEqual(['lock-table']);
    expect(errors({ expand: [step('ALTER TABLE orders ADD COLUMN note text')] })).toEqual([]);
  });

  it('set-logged: ALTER TABLE ... SET UNLOGGED / SET LOGGED', () => {
    expect(errors({ expand: [step('ALTER TABLE orders SET UNLOGGED', 'a'), step('ALTER TABLE orders SET LOGGED', 'b')] })).toEqual([
      'set-logged',
      'set-logged',
    ]);
    expect(errors({ expand: [step('ALTER TABLE orders SET (fillfactor = 90)')] })).toEqual([]);
  });

  it('type-change (a table rewrite by a column type change) is read from the tree, quoted names included', () => {
    expect(errors({ expand: [step('ALTER TABLE "orders" ALTER "total_amount" TYPE numeric(12,2)')] })).toEqual(['type-change']);
    expect(errors({ expand: [step('ALTER TABLE orders ALTER COLUMN total_amount SET DEFAULT 0')] })).toEqual([]);
  });

  it('drop-still-read: the target, its key and mapped columns, and (before contract) what the mapping reads', () => {
    const contract = lint({
      contract: [
        step('ALTER TABLE public.orders DROP COLUMN total_amount_minor', 'a'),
        step('ALTER TABLE orders DROP COLUMN id', 'b'),
        step('DROP TABLE public.orders', 'c'),
      ],
    });
    expect(contract.findings.map((f) => f.rule)).toEqual(['drop-still-read', 'drop-still-read', 'drop-still-read']);
    expect(contract.findings[0]?.message).toMatch(/mapping target/);
    // The old column the mapping reads may go in contract (the worked example does so) ...
    expect(errors({ contract: [step('ALTER TABLE public.orders DROP COLUMN total_amount')] })).toEqual([]);
    // ... but not before: it is still read by the mapping.
    const early = lint({ enforce: [step('ALTER TABLE orders DROP COLUMN total_amount')] });
    expect(early.findings.map((f) => f.rule)).toEqual(['drop-still-read']);
    expect(early.findings[0]?.message).toMatch(/read by the mapping of total_amount_minor/);
    expect(errors({ contract: [step('DROP SCHEMA public CASCADE')] })).toEqual(['drop-still-read']);
    expect(errors({ contract: [step('DROP SCHEMA legacy CASCADE')] })).toEqual([]);
    // Other tables are not read by the migration.
    expect(errors({ contract: [step('DROP TABLE public.orders_old')] })).toEqual([]);
  });

  it('dollar-quoted bodies are parsed: risky statements in a DO block or a function are found', () => {
    expect(errors({ expand: [step('DO $$ BEGIN ALTER TABLE orders DROP COLUMN total_amount; END $$')] })).toEqual(['drop-still-read']);
    expect(errors({ expand: [step("DO $body$ BEGIN EXECUTE 'LOCK TABLE orders'; END $body$")] })).toEqual(['lock-table']);
    expect(errors({ expand: [step('CREATE FUNCTION purge() RETURNS void LANGUAGE sql AS $$ DELETE FROM orders $$')] })).toEqual(['dml']);
    expect(errors({ expand: [step("DO $$ BEGIN RAISE NOTICE 'DROP TABLE orders'; END $$")] })).toEqual([]);
    // Made safe at the top level, but parity cannot rewrite what runs inside a body.
    expect(errors({ expand: [step('DO $$ BEGIN CREATE INDEX orders_x ON orders (currency); END $$')] })).toEqual(['index-not-concurrent']);
  });

  it('dynamic-sql: EXECUTE of a built string cannot be checked', () => {
    expect(errors({ expand: [step("DO $$ BEGIN EXECUTE format('DROP TABLE %I', 'orders'); END $$")] })).toEqual(['dynamic-sql']);
    expect(errors({ expand: [step("DO $$ BEGIN EXECUTE 'ANALYZE orders'; END $$")] })).toEqual([]);
  });

  it('opaque-body: a body in a language parity cannot read', () => {
    expect(errors({ expand: [step('CREATE FUNCTION f() RETURNS int LANGUAGE plpython3u AS $$ return 1 $$')] })).toEqual(['opaque-body']);
    expect(errors({ expand: [step('CREATE FUNCTION f() RETURNS int LANGUAGE sql AS $$ SELECT 1 $$')] })).toEqual([]);
  });

  it('comments and literals cannot hide or fake a statement', () => {
    expect(
      errors({ expand: [step("ALTER TABLE orders ADD COLUMN note text DEFAULT '; DROP TABLE orders' -- DELETE FROM orders")] }),
    ).toEqual([]);
    expect(errors({ expand: [step('/* harmless */ DELETE FROM orders')] })).toEqual(['dml']);
  });
});
