import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, test, vi } from 'vitest';
import { ParityError } from '../../../services/core/errors.js';
import { checkCompatibility } from '../../../services/compat-gate/checker.js';
import { compatCheck } from '../../../services/compat-gate/cli.js';
import { parseLevel, versionsToCheck } from '../../../services/compat-gate/levels.js';

const rec = (fields: unknown[]) => JSON.stringify({ type: 'record', name: 'R', fields });
// v1 -> v2 adds a defaulted field (fully compatible); v3 drops the v1 field and adds one without a default.
const v1 = rec([{ name: 'a', type: 'string' }]);
const v2 = rec([
  { name: 'a', type: 'string' },
  { name: 'b', type: 'string', default: '' },
]);
const v3 = rec([
  { name: 'b', type: 'string', default: '' },
  { name: 'c', type: 'int' },
]);
const v3ok = rec([{ name: 'b', type: 'string', default: '' }]);

describe('levels', () => {
  test('non-transitive levels check the latest version only, transitive ones all', () => {
    expect(versionsToCheck('BACKWARD', ['x', 'y', 'z']).map((v) => v.value)).toEqual(['z']);
    expect(versionsToCheck('FULL_TRANSITIVE', ['x', 'y', 'z']).map((v) => v.value)).toEqual(['x', 'y', 'z']);
    expect(versionsToCheck('NONE', ['x'])).toEqual([]);
  });

  test('level names are case-insensitive; unknown ones are bad input', () => {
    expect(parseLevel('full_transitive')).toBe('FULL_TRANSITIVE');
    expect(() => parseLevel('SIDEWAYS')).toThrow(ParityError);
  });

  test('FORWARD_TRANSITIVE catches what FORWARD misses', () => {
    // v1 readers need "a"; v2 readers default it; the candidate drops it.
    const old1 = rec([{ name: 'a', type: 'string' }]);
    const old2 = rec([
      { name: 'a', type: 'string', default: '' },
      { name: 'b', type: 'string', default: '' },
    ]);
    const candidate = rec([{ name: 'b', type: 'string' }]);
    expect(checkCompatibility({ type: 'avro', level: 'FORWARD', schema: candidate, previous: [old1, old2] }).compatible).toBe(true);
    const transitive = checkCompatibility({ type: 'avro', level: 'FORWARD_TRANSITIVE', schema: candidate, previous: [old1, old2] });
    expect(transitive.compatible).toBe(false);
    expect(transitive.messages).toEqual([
      expect.objectContaining({ direction: 'forward', version: 1, rule: 'READER_FIELD_MISSING_DEFAULT_VALUE', fieldPath: 'a' }),
    ]);
  });

  test('FULL reports both directions, labelled with the version they were found against', () => {
    const result = checkCompatibility({ type: 'avro', level: 'FULL', schema: v3, previous: [v1, v2], versionLabels: [10, 11] });
    expect(result.messages.map((m) => `${m.direction}@${m.version} ${m.rule} ${m.fieldPath}`)).toEqual([
      'backward@11 READER_FIELD_MISSING_DEFAULT_VALUE c',
      'forward@11 READER_FIELD_MISSING_DEFAULT_VALUE a',
    ]);
    expect(checkCompatibility({ type: 'avro', level: 'BACKWARD', schema: v3ok, previous: [v1, v2] }).compatible).toBe(true);
    expect(checkCompatibility({ type: 'avro', level: 'NONE', schema: v3, previous: [v1] }).compatible).toBe(true);
  });

  test('a broken previous version is reported even when the level would not compare it', () => {
    expect(() => checkCompatibility({ type: 'avro', level: 'BACKWARD', schema: v2, previous: ['{oops', v1] })).toThrow(ParityError);
  });

  test("protobuf is checked with Confluent's rules", () => {
    const v1 = 'syntax = "proto3";\nmessage M { int32 a = 1; }';
    const result = checkCompatibility({
      type: 'protobuf',
      level: 'BACKWARD',
      schema: 'syntax = "proto3";\nmessage M { string a = 1; }',
      previous: [v1],
    });
    expect(result.messages.map((m) => [m.rule, m.location, m.fieldPath])).toEqual([['FIELD_SCALAR_KIND_CHANGED', '#/M/1', 'M.a']]);
  });
});

describe('parity compat check', () => {
  let dir: string;
  let out: string[];
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'parity-compat-'));
    out = [];
    vi.spyOn(process.stdout, 'write').mockImplementation((chunk: string | Uint8Array) => {
      out.push(String(chunk));
      return true;
    });
  });
  afterEach(() => vi.restoreAllMocks());

  const file = (name: string, text: string): string => {
    const path = join(dir, name);
    writeFileSync(path, text);
    return path;
  };

  test('prints one JSON object and exits 0 when compatible, 1 when not', async () => {
    const p1 = file('v1.avsc', v1);
    const p2 = file('v2.avsc', v2);
    const p3 = file('v3.avsc', v3);
    expect(await compatCheck(['--type', 'avro', '--level', 'FULL_TRANSITIVE', '--schema', p2, '--previous', p1])).toBe(0);
    expect(JSON.parse(out.join(''))).toEqual({ compatible: true, messages: [] });
    out.length = 0;
    expect(await compatCheck(['--type', 'avro', '--level', 'BACKWARD', '--schema', p3, '--previous', p1, '--previous', p2])).toBe(1);
    const printed = JSON.parse(out.join('')) as { compatible: boolean; messages: { rule: string; location: string }[] };
    expect(printed.compatible).toBe(false);
    expect(printed.messages[0]).toMatchObject({ rule: 'READER_FIELD_MISSING_DEFAULT_VALUE', location: '/fields/1' });
  });

  test('JSON Schema with the LENIENT policy', async () => {
    const p1 = file('v1.json', JSON.stringify({ type: 'object', properties: { a: { type: 'string' } } }));
    const p2 = file('v2.json', JSON.stringify({ type: 'object', properties: { a: { type: 'string' }, b: { type: 'number' } } }));
    expect(await compatCheck(['--type', 'json', '--level', 'BACKWARD', '--schema', p2, '--previous', p1])).toBe(1);
    expect(await compatCheck(['--type', 'json', '--level', 'BACKWARD', '--schema', p2, '--previous', p1, '--policy', 'lenient'])).toBe(0);
  });

  test('Protobuf, with --reference for an import', async () => {
    const money = join(dir, 'money.proto');
    writeFileSync(money, 'syntax = "proto3";\npackage shop;\nmessage Money { int64 units = 1; }');
    const p1 = join(dir, 'v1.proto');
    const p2 = join(dir, 'v2.proto');
    writeFileSync(p1, 'syntax = "proto3";\nimport "money.proto";\nmessage Order { string id = 1; .shop.Money total = 2; }');
    writeFileSync(p2, 'syntax = "proto3";\nimport "money.proto";\nmessage Order { bytes id = 1; .shop.Money total = 2; string note = 3; }');
    expect(
      await compatCheck(['--type', 'protobuf', '--level', 'FULL', '--schema', p2, '--previous', p1, '--reference', `money.proto=${money}`]),
    ).toBe(0);
    expect(JSON.parse(out.join(''))).toEqual({ compatible: true, messages: [] });
    const p3 = join(dir, 'v3.proto');
    writeFileSync(p3, 'syntax = "proto3";\nimport "money.proto";\nmessage Order { int64 id = 1; .shop.Money total = 2; }');
    out.length = 0;
    expect(
      await compatCheck([
        '--type',
        'protobuf',
        '--level',
        'BACKWARD',
        '--schema',
        p3,
        '--previous',
        p1,
        '--reference',
        `money.proto=${money}`,
      ]),
    ).toBe(1);
    expect(JSON.parse(out.join('')).messages.map((m: { rule: string; location: string }) => [m.rule, m.location])).toEqual([
      ['FIELD_SCALAR_KIND_CHANGED', '#/Order/1'],
    ]);
    const err = await compatCheck(['--type', 'protobuf', '--level', 'BACKWARD', '--schema', p3, '--previous', p1]).catch((e: unknown) => e);
    expect((err as ParityError).exitCode).toBe(2);
  });

  test.each([
    ['an unknown level', ['--type', 'avro', '--level', 'SOMETIMES']],
    ['a missing file', ['--type', 'avro', '--level', 'BACKWARD', '--previous', '/nonexistent/v1.avsc']],
    ['an unparseable schema', ['--type', 'avro', '--level', 'BACKWARD']],
    ['a missing --schema', ['--type', 'avro', '--level', 'BACKWARD', '--schema']],
    ['an unknown type', ['--type', 'xml', '--level', 'BACKWARD']],
  ])('%s is bad input (exit code 2)', async (label, args) => {
    const schema = label === 'an unparseable schema' ? file('bad.avsc', '{"type": "record"') : file('ok.avsc', v1);
    const argv = args.includes('--schema') ? args : [...args, '--schema', schema];
    const err = await compatCheck(argv).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ParityError);
    expect((err as ParityError).exitCode).toBe(2);
  });
});
