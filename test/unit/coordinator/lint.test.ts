import { describe, expect, it } from 'vitest';
import { readFileSync } from 'node:fs';
import { lintDdl } from '../../../services/coordinator/lint.js';
import { parseSpec } from '../../../services/core/spec.js';

type Steps = { name: string; sql: string }[];
const lint = (ddl: { expand?: Steps; enforce?: Steps; contract?: Steps }) =>
  lintDdl({ expand: ddl.expand ?? [], enforce: ddl.enforce ?? [], contract: ddl.contract ?? [] });
const rules = (report: ReturnType<typeof lint>, severity = 'error') =>
  report.findings.filter((f) => f.severity === severity).map((f) => f.rule);
const step = (sql: string, name = sql.slice(0, 30)) => ({ name, sql });

describe('DDL lint', () => {
  it('passes the worked example spec', () => {
    const text = readFileSync(new URL('../../../schemas/examples/orders-multicurrency.yaml', import.meta.url), 'utf8');
    const { spec } = parseSpec(text, 'example', { PARITY_SOURCE_URL: 'postgres://u@127.0.0.1:5432/db' });
    expect(lintDdl(spec.ddl)).toEqual({ findings: [], errors: 0 });
  });

  it('flags SET NOT NULL without a validated CHECK first, with the safe sequence', () => {
    const report = lint({ enforce: [step('ALTER TABLE orders ALTER COLUMN currency SET NOT NULL')] });
    expect(rules(report)).toEqual(['set-not-null-unsafe']);
    expect(report.findings[0]?.alternative).toMatch(/CHECK \(currency IS NOT NULL\) NOT VALID.*VALIDATE CONSTRAINT.*SET NOT NULL/);
  });

  it('accepts SET NOT NULL after a NOT VALID check and its validation (or a check parity splits)', () => {
    expect(
      lint({
        enforce: [
          step('ALTER TABLE public.orders ADD CONSTRAINT c_nn CHECK (currency IS NOT NULL) NOT VALID', 'a'),
          step('ALTER TABLE public.orders VALIDATE CONSTRAINT c_nn', 'b'),
          step('ALTER TABLE orders ALTER COLUMN currency SET NOT NULL', 'c'),
        ],
      }).errors,
    ).toBe(0);
    const split = lint({
      enforce: [
        step('ALTER TABLE orders ADD CONSTRAINT c_nn CHECK (currency IS NOT NULL)', 'a'),
        step('ALTER TABLE orders ALTER currency SET NOT NULL', 'b'),
      ],
    });
    expect(rules(split)).toEqual([]);
    expect(rules(split, 'fixed')).toEqual(['constraint-not-valid']);
    // A check that is never validated does not make SET NOT NULL safe.
    expect(
      rules(
        lint({
          enforce: [
            step('ALTER TABLE orders ADD CONSTRAINT c_nn CHECK (currency IS NOT NULL) NOT VALID', 'a'),
            step('ALTER TABLE orders ALTER COLUMN currency SET NOT NULL', 'b'),
          ],
        }),
      ),
    ).toEqual(['set-not-null-unsafe']);
    // A check on another table does not count either.
    expect(
      rules(
        lint({
          enforce: [
            step('ALTER TABLE other ADD CONSTRAINT c_nn CHECK (currency IS NOT NULL)', 'a'),
            step('ALTER TABLE orders ALTER COLUMN currency SET NOT NULL', 'b'),
          ],
        }),
      ),
    ).toEqual(['set-not-null-unsafe']);
  });

  it('flags a non-concurrent index build as made safe, and an unnamed one as an error', () => {
    const report = lint({
      expand: [step('CREATE INDEX orders_currency ON orders (currency)', 'a'), step('CREATE INDEX CONCURRENTLY ON orders (id)', 'b')],
    });
    expect(rules(report, 'fixed')).toEqual(['index-not-concurrent']);
    expect(report.findings.find((f) => f.rule === 'index-not-concurrent')?.alternative).toMatch(
      /CREATE INDEX CONCURRENTLY orders_currency/,
    );
    expect(rules(report)).toEqual(['index-unnamed']);
  });

  it('flags a type change that rewrites the table, unless allowed by a comment', () => {
    expect(rules(lint({ expand: [step('ALTER TABLE orders ALTER COLUMN total_amount TYPE bigint')] }))).toEqual(['type-change']);
    expect(
      rules(lint({ expand: [step('ALTER TABLE orders ALTER COLUMN total_amount SET DATA TYPE bigint USING total_amount::bigint')] })),
    ).toEqual(['type-change']);
    expect(rules(lint({ expand: [step('ALTER TABLE orders ALTER COLUMN note TYPE text /* parity:allow type-change */')] }))).toEqual([]);
  });

  it('flags renames and drops before contract, and allows them in contract', () => {
    const early = lint({
      expand: [
        step('ALTER TABLE orders RENAME COLUMN total_amount TO total_cents', 'a'),
        step('ALTER TABLE orders DROP COLUMN total_amount', 'b'),
      ],
      enforce: [step('DROP TABLE orders_old', 'c'), step('ALTER TABLE orders RENAME TO orders_v2', 'd')],
    });
    expect(rules(early)).toEqual(['rename-before-contract', 'drop-before-contract', 'drop-before-contract', 'rename-before-contract']);
    expect(early.findings.every((f) => f.alternative.includes('ddl.contract'))).toBe(true);
    expect(lint({ contract: [step('ALTER TABLE orders DROP COLUMN total_amount', 'a'), step('DROP TABLE orders_old', 'b')] }).errors).toBe(
      0,
    );
    // Dropping a constraint is not a data drop.
    expect(lint({ enforce: [step('ALTER TABLE orders DROP CONSTRAINT c_nn')] }).errors).toBe(0);
  });

  it('flags ADD COLUMN NOT NULL without default, volatile defaults and unique constraints', () => {
    expect(rules(lint({ expand: [step('ALTER TABLE orders ADD COLUMN currency text NOT NULL')] }))).toEqual(['add-column-not-null']);
    expect(lint({ expand: [step("ALTER TABLE orders ADD COLUMN currency text NOT NULL DEFAULT 'USD'")] }).errors).toBe(0);
    expect(rules(lint({ expand: [step('ALTER TABLE orders ADD COLUMN token uuid DEFAULT gen_random_uuid()')] }))).toEqual([
      'volatile-default',
    ]);
    expect(rules(lint({ expand: [step('ALTER TABLE orders ADD COLUMN seq bigserial')] }))).toEqual(['volatile-default']);
    expect(rules(lint({ expand: [step('ALTER TABLE orders ADD CONSTRAINT u UNIQUE (ref)')] }))).toEqual(['unique-constraint']);
    expect(lint({ expand: [step('ALTER TABLE orders ADD CONSTRAINT u UNIQUE USING INDEX orders_ref')] }).errors).toBe(0);
  });

  it('ignores comments and string literals when reading statements', () => {
    expect(lint({ expand: [step("-- DROP COLUMN x\nALTER TABLE orders ADD COLUMN note text DEFAULT 'DROP TABLE y'")] }).errors).toBe(0);
  });

  it('flags duplicate step names and whole-table rewrites', () => {
    expect(
      rules(lint({ expand: [step('ALTER TABLE a ADD COLUMN x int', 'same'), step('ALTER TABLE a ADD COLUMN y int', 'same')] })),
    ).toEqual(['duplicate-step-name']);
    expect(
      rules(
        lint({
          enforce: [step('VACUUM FULL orders', 'v'), step('REINDEX TABLE orders', 'r'), step('REINDEX TABLE CONCURRENTLY orders', 'ok')],
        }),
      ),
    ).toEqual(['table-rewrite', 'table-rewrite']);
  });
});
