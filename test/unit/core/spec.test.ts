import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, test } from 'vitest';
import { parseSpec, specJsonSchema, type SpecProblem } from '../../../services/core/spec.js';
import { ParityError } from '../../../services/core/errors.js';

const examplePath = fileURLToPath(new URL('../../../schemas/examples/orders-multicurrency.yaml', import.meta.url));
const example = readFileSync(examplePath, 'utf8');
const env = { PARITY_SOURCE_URL: 'postgres://parity@127.0.0.1:54329/shop' };

function problemsOf(text: string, environment: NodeJS.ProcessEnv = env): SpecProblem[] {
  try {
    parseSpec(text, 'spec.yaml', environment);
  } catch (err) {
    expect(err).toBeInstanceOf(ParityError);
    expect((err as ParityError).code).toBe('PARITY_SPEC_INVALID');
    expect((err as ParityError).exitCode).toBe(2);
    return (err as ParityError).details.problems as SpecProblem[];
  }
  throw new Error('spec was accepted');
}

describe('the migration spec', () => {
  test('the worked example validates and gets its defaults', () => {
    const { spec, configHash } = parseSpec(example, examplePath, env);
    expect(spec.name).toBe('orders-multicurrency');
    expect(spec.source.database).toBe(env.PARITY_SOURCE_URL);
    expect(spec.target.kind).toBe('same-table');
    expect(spec.mapping.total_amount_minor).toBe('total_amount::bigint');
    expect(spec.infra.kafka.brokers).toEqual(['127.0.0.1:19092']);
    expect(spec.control.schema).toBe('parity');
    expect(spec.backfill.throttle.maxLagSeconds).toBe(1.5);
    expect(spec.normalize.timestampRounding).toBe('truncate');
    expect(configHash).toMatch(/^[0-9a-f]{64}$/);
  });

  test('a missing key names the path', () => {
    const problems = problemsOf(example.replace('key: [id]\n', ''));
    expect(problems.map((p) => p.path)).toContain('key');
  });

  test('an unknown field is an error with its path, not silently ignored', () => {
    const problems = problemsOf(example.replace('  batchSize: 2000', '  batchSize: 2000\n  batchSzie: 10'));
    const typo = problems.find((p) => p.path === 'backfill.batchSzie');
    expect(typo?.message).toMatch(/unknown field/);
    expect(typo?.line).toBeGreaterThan(1);
  });

  test('a bad compatibility level names the subject entry and lists the levels', () => {
    const problems = problemsOf(example.replace('compatibility: BACKWARD', 'compatibility: BACKWARDS'));
    const bad = problems.find((p) => p.path === 'events.subjects[0].compatibility');
    expect(bad).toBeDefined();
    expect(bad?.hint).toMatch(/FULL_TRANSITIVE/);
  });

  test('an unset environment variable is reported at the field that uses it', () => {
    const problems = problemsOf(example, {});
    expect(problems).toHaveLength(1);
    expect(problems[0]?.path).toBe('source.database');
    expect(problems[0]?.message).toMatch(/PARITY_SOURCE_URL is not set/);
  });

  test('a mapping containing ";" is rejected at its path', () => {
    const problems = problemsOf(
      example.replace('total_amount_minor: total_amount::bigint', 'total_amount_minor: "total_amount::bigint; DROP TABLE orders"'),
    );
    expect(problems.map((p) => p.path)).toContain('mapping.total_amount_minor');
  });

  test('cross-field rules: renewal at most a third of the lock TTL', () => {
    const problems = problemsOf(example.replace('renewEveryMs: 5000', 'renewEveryMs: 6000'));
    expect(problems.find((p) => p.path === 'lock.renewEveryMs')?.message).toMatch(/third/);
  });

  test('secrets from the environment never appear in error messages', () => {
    const secretEnv = { PARITY_SOURCE_URL: 'postgres://parity:s3cr3t-pw@127.0.0.1:54329/shop', PARITY_DB_PASSWORD: 'hunter22' };
    const text = example
      .replace('key: [id]\n', '')
      .replace('${PARITY_SOURCE_URL}', 'postgres://parity:${PARITY_DB_PASSWORD}@127.0.0.1/shop');
    try {
      parseSpec(text, 'spec.yaml', secretEnv);
      throw new Error('accepted');
    } catch (err) {
      expect((err as Error).message).not.toContain('hunter22');
      expect((err as Error).message).not.toContain('s3cr3t-pw');
    }
  });

  test('the committed JSON Schema is the one generated from the zod schema', () => {
    const committed = JSON.parse(
      readFileSync(fileURLToPath(new URL('../../../schemas/migration-spec.schema.json', import.meta.url)), 'utf8'),
    );
    expect(committed).toEqual(JSON.parse(JSON.stringify(specJsonSchema())));
  });
});
