import { describe, expect, it } from 'vitest';
import {
  checkMappingExpression,
  checkReadOnlyQuery,
  columnsRead,
  plpgsqlStatements,
  sqlParserLoadMs,
} from '../../../services/core/sql-parse.js';

const messages = (expr: string, allowFunctions: string[] = []) => checkMappingExpression(expr, { allowFunctions }).map((p) => p.message);
const probe = (sql: string) => checkReadOnlyQuery(sql).map((p) => p.message);

describe("mapping expressions, read by PostgreSQL's parser", () => {
  it('accepts scalar expressions over the source row', () => {
    for (const ok of [
      'total_amount::bigint',
      "'USD'::text",
      'round(total * 100)::bigint',
      'upper(name)',
      "coalesce(note, '')",
      "CASE WHEN a > 0 THEN 'x' ELSE 'y' END",
      "'a--b /* c'",
      'pg_catalog.lower(name)',
      '"Mixed Case" + 1',
    ]) {
      expect(messages(ok), ok).toEqual([]);
    }
  });

  it('refuses both halves of a comment smuggled across two mappings', () => {
    // Inlined one after the other, these two would comment out whatever SQL lies between them.
    expect(messages('total_amount /*').join()).toMatch(/comment/);
    expect(messages("'*/' || note").join()).toEqual('');
    expect(messages('total_amount /* a */').join()).toMatch(/comment/);
    expect(messages('total_amount -- rest of the line').join()).toMatch(/comment/);
  });

  it('refuses statements, subqueries, catalogs, parameters and aliases', () => {
    expect(messages('a; DROP TABLE orders').join()).toMatch(/";"/);
    expect(messages('(SELECT rolpassword FROM pg_authid LIMIT 1)').join()).toMatch(/subquery/);
    expect(messages('(SELECT 1 FROM pg_catalog.pg_class LIMIT 1)').join()).toMatch(/system catalog/);
    expect(messages('EXISTS (SELECT 1 FROM orders)').join()).toMatch(/subquery/);
    expect(messages('a FROM orders').join()).toMatch(/exactly one expression/);
    expect(messages('a, b').join()).toMatch(/exactly one expression/);
    expect(messages('1 UNION SELECT 2').join()).toMatch(/exactly one expression/);
    expect(messages('$1').join()).toMatch(/parameter/);
    expect(messages('a AS b').join()).toMatch(/alias|names its result/);
    expect(messages('o.total').join()).toMatch(/qualifies a column/);
    expect(messages('pg_catalog.pg_class.oid').join()).toMatch(/system catalog/);
  });

  it('refuses side-effecting, set-returning and aggregate functions unless allowed by name', () => {
    expect(messages('pg_terminate_backend(42)::text').join()).toMatch(/pg_terminate_backend/);
    for (const call of [
      'pg_sleep(1)',
      "set_config('a', 'b', false)",
      "nextval('s')",
      'txid_current()',
      "dblink_exec('x')",
      'lo_import(1)',
      'pg_advisory_lock(1)',
      "pg_read_file('/etc/passwd')",
      "query_to_xml('select 1', true, true, '')",
    ]) {
      expect(messages(call).join(), call).toMatch(/calls/);
      expect(checkMappingExpression(call)[0]?.hint, call).toMatch(/allowFunctions/);
    }
    expect(messages('generate_series(1, 3)').join()).toMatch(/set-returning/);
    expect(messages('sum(total)').join()).toMatch(/aggregate/);
    expect(messages('row_number() OVER ()').join()).toMatch(/window/);
    expect(messages('length(pg_sleep(0.01)::text)', ['pg_sleep'])).toEqual([]);
    expect(messages('generate_series(1, 3)', ['generate_series'])).toEqual([]);
  });

  it('refuses what PostgreSQL cannot parse, with its message', () => {
    expect(messages('total_amount +').join()).toMatch(/not a valid SQL expression: syntax error/);
  });

  it('names the source columns a mapping reads', () => {
    expect(columnsRead('round(total * 100)::bigint + coalesce("Tax", 0)').sort()).toEqual(['Tax', 'total']);
  });

  it('loads the parser once, and says how long it took', () => {
    expect(sqlParserLoadMs).toBeGreaterThan(0);
  });
});

describe('probe SQL', () => {
  it('accepts one read-only SELECT', () => {
    expect(probe('SELECT * FROM orders WHERE id = 42')).toEqual([]);
    expect(probe('SELECT 1;')).toEqual([]);
    expect(probe("SELECT count(*) FROM pg_stat_activity WHERE state = 'active'")).toEqual([]);
    expect(probe('WITH r AS (SELECT id FROM orders) SELECT count(*) FROM r')).toEqual([]);
  });

  it('refuses writes, locks, several statements and denied functions', () => {
    expect(probe('SELECT 1; SELECT 2').join()).toMatch(/exactly one statement/);
    expect(probe('UPDATE orders SET a = 1').join()).toMatch(/must be a SELECT \(found UPDATE\)/);
    expect(probe('WITH d AS (DELETE FROM orders RETURNING id) SELECT count(*) FROM d').join()).toMatch(
      /modifies data \(DELETE in a WITH clause\)/,
    );
    expect(probe('SELECT * FROM orders WHERE id = 1 FOR UPDATE').join()).toMatch(/locks rows/);
    expect(probe('SELECT pg_advisory_lock(1)').join()).toMatch(/pg_advisory_lock/);
    expect(probe('SELECT 1 INTO scratch').join()).toMatch(/SELECT INTO/);
  });
});

describe('PL/pgSQL bodies', () => {
  it('finds the statements of a DO block, constant EXECUTEs included, and counts dynamic ones', () => {
    const { statements, dynamic } = plpgsqlStatements(
      "DO $$ BEGIN EXECUTE 'DROP TABLE a'; DELETE FROM b; EXECUTE format('DROP TABLE %I', 'c'); END $$",
    );
    expect(statements).toEqual(['DROP TABLE a', 'DELETE FROM b']);
    expect(dynamic).toBe(1);
  });
});
