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
    const parts = path.split('.');
    if (value === undefined) doc.deleteIn(parts);
    else doc.setIn(parts, value);
  }
  return doc.toString();
}

function problemsOf(text: string): SpecProblem[] {
  try {
    parseSpec(text, 'spec.yaml', env);
  } catch (err) {
    expect(err).toBeInstanceOf(ParityError);
    expect((err as ParityError).exitCode).toBe(2);
    return (err as ParityError).details.problems as SpecProblem[];
  }
  throw new Error('spec was accepted');
}

const at = (problems: SpecProblem[], path: string): string =>
  problems
    .filter((p) => p.path === path)
    .map((p) => `${p.message} ${p.hint ?? ''}`)
    .join('\n');

describe('reverse mapping (issue 23)', () => {
  test('the worked example carries a valid reverse section, with refuse as the policy', () => {
    const { spec } = parseSpec(example, 'spec.yaml', env);
    expect(spec.reverse?.mapping.total_amount).toMatch(/total_amount_minor/);
    expect(spec.reverse?.representable).toMatch(/currency = 'USD'/);
    expect(spec.reverse?.unrepresentable).toBe('refuse');
  });

  test('unrepresentable defaults to refuse; reverse is optional', () => {
    const noPolicy = parseSpec(variant({ 'reverse.unrepresentable': undefined }), 'spec.yaml', env).spec;
    expect(noPolicy.reverse?.unrepresentable).toBe('refuse');
    expect(parseSpec(variant({ reverse: undefined }), 'spec.yaml', env).spec.reverse).toBeUndefined();
  });

  test('reverse expressions get the mapping checks: comment, subquery, catalog, denied function, two expressions', () => {
    const problems = problemsOf(
      variant({
        'reverse.mapping.total_amount': 'total_amount_minor::integer -- the rest',
        'reverse.representable': '(SELECT true FROM pg_authid LIMIT 1)',
      }),
    );
    expect(at(problems, 'reverse.mapping.total_amount')).toMatch(/comment/);
    expect(at(problems, 'reverse.representable')).toMatch(/subquery/);
    expect(at(problems, 'reverse.representable')).toMatch(/system catalog/);
    const more = problemsOf(variant({ 'reverse.mapping.total_amount': 'pg_sleep(1)::int', 'reverse.representable': 'true, false' }));
    expect(at(more, 'reverse.mapping.total_amount')).toMatch(/pg_sleep.*allowFunctions: \[pg_sleep\]/s);
    expect(at(more, 'reverse.representable')).toMatch(/exactly one expression/);
  });

  test('allowFunctions opts a reverse expression in, as it does a mapping', () => {
    const text = variant({ 'reverse.mapping.total_amount': 'pg_sleep(0)::text::int', allowFunctions: ['pg_sleep'] });
    expect(parseSpec(text, 'spec.yaml', env).spec.reverse?.mapping.total_amount).toBe('pg_sleep(0)::text::int');
  });

  test('a reverse expression reading the old column it rebuilds is refused (it is dropped at contract)', () => {
    const problems = problemsOf(variant({ 'reverse.mapping.total_amount': 'coalesce(total_amount, total_amount_minor::integer)' }));
    expect(at(problems, 'reverse.mapping.total_amount')).toMatch(/reads "total_amount", an old-representation column/);
    const viaPredicate = problemsOf(variant({ 'reverse.representable': 'total_amount IS NOT NULL' }));
    expect(at(viaPredicate, 'reverse.representable')).toMatch(/reads "total_amount"/);
  });

  test('the key is not rebuilt, and a same-table reverse names old columns only', () => {
    const problems = problemsOf(variant({ 'reverse.mapping.id': 'id', 'reverse.mapping.currency': "'USD'" }));
    expect(at(problems, 'reverse.mapping.id')).toMatch(/key column/);
    expect(at(problems, 'reverse.mapping.currency')).toMatch(/new column.*old columns only/);
  });

  test('an empty reverse mapping, an unknown policy and an unknown field are refused with hints', () => {
    const problems = problemsOf(variant({ 'reverse.mapping': {}, 'reverse.unrepresentable': 'ignore', 'reverse.columns': {} }));
    expect(at(problems, 'reverse.mapping')).toMatch(/rebuild at least one old column.*CASE WHEN/s);
    expect(at(problems, 'reverse.unrepresentable')).toMatch(/refuse.*record/s);
    expect(at(problems, 'reverse.columns')).toMatch(/unknown field/);
  });

  test('a shadow-table reverse may rebuild a column that also exists on the new side under its own name', () => {
    const text = variant({
      target: { kind: 'shadow-table', table: 'orders_v2' },
      'mapping.status': 'status',
      'reverse.mapping.status': 'status',
    });
    expect(parseSpec(text, 'spec.yaml', env).spec.reverse?.mapping.status).toBe('status');
  });
});
