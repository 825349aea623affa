/** `parity spec validate --offline`: the structure of a spec checked without its environment. */
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, test } from 'vitest';
import { ParityError } from '../../../services/core/errors.js';
import { parseSpec, type SpecProblem } from '../../../services/core/spec.js';

const example = readFileSync(fileURLToPath(new URL('../../../schemas/examples/orders-multicurrency.yaml', import.meta.url)), 'utf8');

function offlineProblems(text: string): SpecProblem[] {
  try {
    parseSpec(text, 'spec.yaml', {}, { offline: true });
  } catch (err) {
    expect((err as ParityError).code).toBe('PARITY_SPEC_INVALID');
    return (err as ParityError).details.problems as SpecProblem[];
  }
  return [];
}

describe('offline spec validation', () => {
  test('a spec whose ${VAR}s are unset passes offline and fails online', () => {
    expect(offlineProblems(example)).toEqual([]);
    expect(() => parseSpec(example, 'spec.yaml', {})).toThrow(/PARITY_SOURCE_URL is not set/);
  });

  test('offline resolves nothing, even a variable that is set', () => {
    const { spec } = parseSpec(example, 'spec.yaml', { PARITY_SOURCE_URL: 'postgres://u@h/db' }, { offline: true });
    expect(spec.source.database).not.toContain('postgres://u@h/db');
  });

  test('structure errors are still reported, with their path', () => {
    const typo = example.replace(/^source:\n/m, 'source:\n  colour: blue\n');
    expect(offlineProblems(typo).map((p) => p.path)).toEqual(['source.colour']);
    const missingKey = example.replace(/^key:.*\n/m, '');
    expect(offlineProblems(missingKey).map((p) => p.path)).toContain('key');
  });

  test('a variable inside a URL keeps the URL checkable; a whole-field variable is exempt', () => {
    const inUrl = example.replace('${PARITY_SOURCE_URL}', 'postgres://app:${DB_PASS}@db.internal:5432/shop');
    expect(offlineProblems(inUrl)).toEqual([]);
    const badUrl = example.replace('${PARITY_SOURCE_URL}', 'mysql://app:${DB_PASS}@db.internal/shop');
    expect(offlineProblems(badUrl).map((p) => p.path)).toEqual(['source.database']);
    const numberFromVariable = example.replace(/^ {2}batchSize: \d+$/m, '  batchSize: ${BATCH}');
    expect(numberFromVariable).toContain('batchSize: ${BATCH}');
    expect(offlineProblems(numberFromVariable)).toEqual([]);
  });
});
