import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, test } from 'vitest';
import { parseDocument } from 'yaml';
import { parseSpec, type SpecProblem } from '../../../services/core/spec.js';
import { ParityError } from '../../../services/core/errors.js';

const examplePath = fileURLToPath(new URL('../../../schemas/examples/orders-multicurrency.yaml', import.meta.url));
const example = readFileSync(examplePath, 'utf8');
const env = { PARITY_SOURCE_URL: 'postgres://parity@127.0.0.1:54329/shop' };

/** The example with `changes` applied at dotted paths (undefined deletes). */
function variant(changes: Record<string, unknown>): string {
  const doc = parseDocument(example);
  for (const [path, value] of Object.entries(changes)) {
    const parts = path.split('.').map((p) => (/^\d+$/.test(p) ? Number(p) : p));
    if (value === undefined) doc.deleteIn(parts);
    else doc.setIn(parts, value);
  }
  return doc.toString();
}

function rejected(text: string, file = 'spec.yaml'): { error: ParityError; problems: SpecProblem[] } {
  try {
    parseSpec(text, file, env);
  } catch (err) {
    expect(err).toBeInstanceOf(ParityError);
    const error = err as ParityError;
    expect(error.code).toBe('PARITY_SPEC_INVALID');
    expect(error.exitCode).toBe(2);
    return { error, problems: error.details.problems as SpecProblem[] };
  }
  throw new Error('spec was accepted');
}

const at = (problems: SpecProblem[], path: string) =>
  problems
    .filter((p) => p.path === path)
    .map((p) => `${p.message} ${p.hint ?? ''}`)
    .join('\n');

describe('mapping and SQL validation (17.4)', () => {
  test('the comment-smuggling pair of mappings is refused, naming each mapping', () => {
    const { problems } = rejected(
      variant({ 'mapping.total_amount_minor': 'total_amount::bigint /*', 'mapping.currency': "'*/' || 'USD'" }),
    );
    expect(at(problems, 'mapping.total_amount_minor')).toMatch(/comment/);
    expect(problems.find((p) => p.path === 'mapping.total_amount_minor')?.line).toBeGreaterThan(0);
  });

  test("a catalog subquery and pg_terminate_backend are refused with the expression's path and what to write", () => {
    const { problems } = rejected(
      variant({
        'mapping.currency': '(SELECT rolpassword FROM pg_authid LIMIT 1)',
        'mapping.total_amount_minor': 'pg_terminate_backend(1)::int',
      }),
    );
    expect(at(problems, 'mapping.currency')).toMatch(/subquery/);
    expect(at(problems, 'mapping.currency')).toMatch(/system catalog/);
    expect(at(problems, 'mapping.total_amount_minor')).toMatch(/pg_terminate_backend.*allowFunctions: \[pg_terminate_backend\]/s);
  });

  test('allowFunctions opts a function in by name', () => {
    const text = variant({
      'mapping.total_amount_minor': 'total_amount::bigint + length(pg_sleep(0)::text)',
      allowFunctions: ['pg_sleep'],
    });
    expect(parseSpec(text, 'spec.yaml', env).spec.allowFunctions).toEqual(['pg_sleep']);
  });

  test('probe SQL must be one read-only SELECT', () => {
    const { problems } = rejected(
      variant({
        'backfill.throttle.probe': { sql: 'SELECT * FROM orders WHERE id = 1 FOR UPDATE', maxP99Ms: 50 },
        'backfill.throttle.pace.latencyGuard': { sql: 'DELETE FROM orders' },
      }),
    );
    expect(at(problems, 'backfill.throttle.probe.sql')).toMatch(/locks rows/);
    expect(at(problems, 'backfill.throttle.pace.latencyGuard.sql')).toMatch(/must be a SELECT/);
  });

  test('DDL steps must parse, one statement each (a DO block with ";" inside is one statement)', () => {
    const { problems } = rejected(
      variant({
        'ddl.expand.0.sql': 'ALTER TABLE orders ADD COLUMN x int; DROP TABLE orders',
        'ddl.expand.1.sql': 'ALTER TABLE orders ADD COLUM y int',
      }),
    );
    expect(at(problems, 'ddl.expand[0].sql')).toMatch(/one statement per step \(found 2\)/);
    expect(at(problems, 'ddl.expand[1].sql')).toMatch(/cannot parse it: syntax error/);
    expect(() => parseSpec(variant({ 'ddl.expand.0.sql': 'DO $$ BEGIN PERFORM 1; PERFORM 2; END $$' }), 'spec.yaml', env)).not.toThrow();
  });
});

describe('spec validation catches what fails later (17.6)', () => {
  test('a YAML alias bomb is bad input naming the file, not an internal error', () => {
    const bomb = [
      'a: &a ["x","x","x","x","x","x","x","x","x"]',
      'b: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]',
      'c: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b]',
      'd: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c]',
      'e: &e [*d,*d,*d,*d,*d,*d,*d,*d,*d]',
      'f: [*e,*e,*e,*e,*e,*e,*e,*e,*e]',
    ].join('\n');
    const { error, problems } = rejected(bomb, 'bomb.yaml');
    expect(error.message).toMatch(/^bomb\.yaml is not a valid migration spec/);
    expect(problems[0]).toMatchObject({ path: '(yaml)' });
    expect(problems[0]?.message).toMatch(/alias/i);
  });

  test('slot names PostgreSQL refuses are rejected', () => {
    for (const slot of ['parity-orders', 'Parity_orders', 'parity"orders', "o'k"]) {
      expect(at(rejected(variant({ 'cdc.slot': slot })).problems, 'cdc.slot'), slot).toMatch(/lower-case letters, digits and "_"/);
    }
    expect(at(rejected(variant({ 'cdc.slot': 'a'.repeat(64) })).problems, 'cdc.slot')).toMatch(/at most 63/);
  });

  test('publication names with "-" or quotes are rejected', () => {
    for (const publication of ['parity-orders', 'pub"x', "pub'x", 'two words']) {
      expect(at(rejected(variant({ 'cdc.publication': publication })).problems, 'cdc.publication'), publication).toMatch(
        /plain identifier/,
      );
    }
  });

  test('identifiers are limited to 63 bytes, not characters', () => {
    const multibyte = 'é'.repeat(32); // 32 characters, 64 bytes: PostgreSQL would truncate it
    const { problems } = rejected(variant({ 'source.table': multibyte, 'key.0': 'k'.repeat(64) }));
    expect(at(problems, 'source.table')).toMatch(/at most 63 bytes/);
    expect(at(problems, 'key[0]')).toMatch(/at most 63 bytes/);
    expect(() => parseSpec(variant({ 'source.table': 'é'.repeat(31) }), 'spec.yaml', env)).not.toThrow();
  });

  test('absurd partitions, workers and jobs are bounded', () => {
    const { problems } = rejected(variant({ 'cdc.partitions': 1_000_000, 'backfill.workers': 10_000, 'reconcile.jobs': 5_000 }));
    expect(at(problems, 'cdc.partitions')).toMatch(/1000/);
    expect(at(problems, 'backfill.workers')).toMatch(/64/);
    expect(at(problems, 'reconcile.jobs')).toMatch(/64/);
  });

  test('a drift margin equal to TTL minus renewal is rejected (the holder would stop before its first renewal)', () => {
    const { problems } = rejected(variant({ 'lock.ttlMs': 15_000, 'lock.renewEveryMs': 5_000, 'lock.driftMarginMs': 10_000 }));
    expect(at(problems, 'lock.driftMarginMs')).toMatch(/below ttlMs - renewEveryMs/);
    expect(() => parseSpec(variant({ 'lock.driftMarginMs': 9_999 }), 'spec.yaml', env)).not.toThrow();
  });

  test('normalize.timeZone must be a zone the reconciler can convert to', () => {
    expect(at(rejected(variant({ 'normalize.timeZone': 'Mars/Olympus' })).problems, 'normalize.timeZone')).toMatch(/unknown time zone/);
    expect(() => parseSpec(variant({ 'normalize.timeZone': 'Europe/Paris' }), 'spec.yaml', env)).not.toThrow();
  });

  test('change topics Kafka would refuse (over 249 characters) and long cdc.tables names are rejected', () => {
    const { problems } = rejected(
      variant({ 'cdc.topicPrefix': 'p'.repeat(240), 'cdc.tables': ['public.orders_audit', `public.${'ü'.repeat(40)}`] }),
    );
    expect(at(problems, 'source.table')).toMatch(/Kafka allows 249: shorten cdc.topicPrefix/);
    expect(at(problems, 'cdc.tables[1]')).toMatch(/at most 63 bytes/);
  });

  test('reconcile.keyCasts names key columns only', () => {
    const { problems } = rejected(variant({ 'reconcile.keyCasts': { total_amount: 'text' } }));
    expect(at(problems, 'reconcile.keyCasts.total_amount')).toMatch(/not a key column \(key: id\)/);
    expect(() => parseSpec(variant({ 'reconcile.keyCasts': { id: 'text' } }), 'spec.yaml', env)).not.toThrow();
  });

  test("Debezium's message prefix lists: regular expressions, and not both", () => {
    const bad = rejected(variant({ 'cdc.debezium': { 'message.prefix.include.list': 'audit\\..*,(open' } })).problems;
    expect(bad.map((p) => `${p.path} ${p.message}`).join('\n')).toMatch(
      /message\.prefix\.include\.list .*"\(open" is not a regular expression/,
    );
    const both = rejected(
      variant({ 'cdc.debezium': { 'message.prefix.include.list': 'audit', 'message.prefix.exclude.list': 'noise' } }),
    ).problems;
    expect(both.map((p) => p.message).join('\n')).toMatch(/cannot both be set/);
    expect(() => parseSpec(variant({ 'cdc.debezium': { 'message.prefix.exclude.list': 'noise\\..*' } }), 'spec.yaml', env)).not.toThrow();
  });

  test('cache key templates use key columns only, one template per version', () => {
    const { problems } = rejected(variant({ 'cache.keys.v1': 'order:{customer_id}', 'cache.keys.v2': 'order:{customer_id}' }));
    expect(at(problems, 'cache.keys.v1')).toMatch(/not a key column/);
    expect(at(problems, 'cache.keys.v2')).toMatch(/same template as v1/);
  });
});
