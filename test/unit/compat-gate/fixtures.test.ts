/**
 * Conformance of the local compatibility checker with the shared fixture suite
 * (../shared/acceptance/schema-compat/, read in place, never copied). Every case of every file is
 * asserted; a case that genuinely disagrees must be listed below by id, and the test fails both when a
 * listed case starts agreeing and when an unlisted case disagrees. The agreement figure per file is
 * printed at the end.
 */
import { existsSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, test } from 'vitest';
import { createAvroDatumReader, encodeAvroDatum } from '../../../services/compat-gate/avro-datum.js';
import { checkCompatibility, parseSchema, readerWriterIncompatibilities } from '../../../services/compat-gate/checker.js';
import { COMPATIBLE_CHANGES } from '../../../services/compat-gate/json-schema-compat.js';
import { diffJsonSchemas } from '../../../services/compat-gate/json-schema-diff.js';
import { loadJsonSchema } from '../../../services/compat-gate/json-schema-model.js';
import type { CompatibilityLevel } from '../../../services/compat-gate/levels.js';

const FIXTURES = new URL('../../../../shared/acceptance/schema-compat/', import.meta.url);
/**
 * The fixture suite sits beside the repository in CI; a clone without it (any user's) still passes
 * `npm test`: these tests are then reported as skipped, with the reason, instead of failing.
 */
const PRESENT = existsSync(fileURLToPath(FIXTURES));
const ABSENT_REASON = `not run: the shared schema-compat fixture suite is absent (expected at ../shared/acceptance/schema-compat/ beside the repository); CI provides it`;

function fixture<T>(relative: string): T {
  // Absent: an empty case list (the suites below are skipped), so collecting them reads nothing.
  if (!PRESENT) return Object.assign([], { cases: [], decoding_cases: [], tests: [], schemas: {} }) as T;
  return JSON.parse(readFileSync(fileURLToPath(new URL(relative, FIXTURES)), 'utf8')) as T;
}

if (!PRESENT) {
  test.skip(`schema-compat conformance fixtures: ${ABSENT_REASON}`, () => undefined);
  console.warn(`schema-compat conformance fixtures ${ABSENT_REASON}`);
}

const APACHE_AVRO = 'apache-avro/avro-schema-compatibility.cases.json';
const CONFLUENT_AVRO = 'confluentinc-schema-registry/core/AvroCompatibilityTest.cases.json';
const APICURIO_AVRO = 'apicurio-registry/schema-util/avro/compatibility-test-data.json';
const CONFLUENT_JSON = 'confluentinc-schema-registry/json-schema-provider/diff-schema-examples.json';
const APICURIO_JSON = 'apicurio-registry/schema-util/json/compatibility-test-data.json';

type Verdict = 'both' | 'backward' | 'forward' | 'none';

/**
 * Cases whose verdict from this checker differs from the file's, per file. Empty lists are the goal;
 * an entry needs a reason.
 */
const KNOWN_DISAGREEMENTS: Record<string, Record<string, string>> = {
  [APACHE_AVRO]: {},
  [`${APACHE_AVRO} (decoding)`]: {},
  [CONFLUENT_AVRO]: {},
  [APICURIO_AVRO]: {},
  [CONFLUENT_JSON]: {},
  [APICURIO_JSON]: {},
};

/**
 * Apicurio's JSON Schema verdicts that Confluent Schema Registry does not share. The project follows
 * Confluent, so for these ids the test expects Confluent's verdict (given here) instead of Apicurio's.
 * Ids that occur more than once in the file are suffixed with their occurrence (`#1`, `#2`, ...).
 */
const APICURIO_JSON_CONFLUENT_DIVERGENCES: Record<string, { confluent: Verdict; why: string }> = {
  'String: format 1': { confluent: 'both', why: 'Confluent does not compare "format"' },
  'String: format 2': { confluent: 'both', why: 'Confluent does not compare "format"' },
  'Number: exclusiveMinimum 1': { confluent: 'both', why: 'Confluent ignores draft-4 boolean exclusiveMinimum' },
  'Number: exclusiveMinimum 2': {
    confluent: 'none',
    why: 'minimum and exclusiveMinimum are separate keywords: adding either is MINIMUM_ADDED / EXCLUSIVE_MINIMUM_ADDED',
  },
  'Number: exclusiveMinimum 3': {
    confluent: 'none',
    why: 'minimum and exclusiveMinimum are separate keywords: adding either is MINIMUM_ADDED / EXCLUSIVE_MINIMUM_ADDED',
  },
  'Number: exclusiveMinimum 5': {
    confluent: 'none',
    why: 'draft-4 minimum+flag vs exclusiveMinimum: MINIMUM_REMOVED + EXCLUSIVE_MINIMUM_ADDED one way, MINIMUM_ADDED the other',
  },
  'Number: exclusiveMaximum 1': { confluent: 'both', why: 'Confluent ignores draft-4 boolean exclusiveMaximum' },
  'Number: exclusiveMaximum 2': {
    confluent: 'none',
    why: 'maximum and exclusiveMaximum are separate keywords: adding either is MAXIMUM_ADDED / EXCLUSIVE_MAXIMUM_ADDED',
  },
  'Number: exclusiveMaximum 3': {
    confluent: 'none',
    why: 'maximum and exclusiveMaximum are separate keywords: adding either is MAXIMUM_ADDED / EXCLUSIVE_MAXIMUM_ADDED',
  },
  'Number: exclusiveMaximum 5': {
    confluent: 'none',
    why: 'draft-4 maximum+flag vs exclusiveMaximum: MAXIMUM_REMOVED + EXCLUSIVE_MAXIMUM_ADDED one way, MAXIMUM_ADDED the other',
  },
  'Object: required #1': { confluent: 'both', why: 'Confluent compares "required" only for properties declared in "properties"' },
  'Object: required #2': { confluent: 'both', why: 'Confluent compares "required" only for properties declared in "properties"' },
  'Object: propertyNames': { confluent: 'both', why: 'Confluent does not compare "propertyNames"' },
  'Object: patternProperties 1': {
    confluent: 'both',
    why: 'Confluent uses patternProperties only as the content model of added/removed properties',
  },
  'Object: patternProperties 2': {
    confluent: 'both',
    why: 'Confluent uses patternProperties only as the content model of added/removed properties',
  },
  'Array: contains': { confluent: 'both', why: 'Confluent does not compare "contains"' },
  'Const: Enum equivalency': { confluent: 'none', why: 'const and enum are different schema types for Confluent (TYPE_CHANGED both ways)' },
  'String: contentEncoding 2': { confluent: 'both', why: 'Confluent does not compare "contentEncoding"' },
  'String: contentEncoding 3': { confluent: 'both', why: 'Confluent does not compare "contentEncoding"' },
  'String: contentMediaType 2': { confluent: 'both', why: 'Confluent does not compare "contentMediaType"' },
  'String: contentMediaType 3': { confluent: 'both', why: 'Confluent does not compare "contentMediaType"' },
  'Conditional: if': { confluent: 'both', why: 'Confluent does not compare if/then/else subschemas' },
  'Conditional: then': { confluent: 'both', why: 'Confluent does not compare if/then/else subschemas' },
  'Conditional: else': { confluent: 'both', why: 'Confluent does not compare if/then/else subschemas' },
};

interface Tally {
  agree: number;
  total: number;
  disagreeing: string[];
}
const tallies = new Map<string, Tally>();
/** Agreement of the JSON checker with Apicurio's own verdicts, before applying Confluent's. */
const apicurioRaw: Tally = { agree: 0, total: 0, disagreeing: [] };

/** Records one case and asserts it agrees, or disagrees exactly when it is a known disagreement. */
function record(file: string, id: string, agrees: boolean, detail: string): void {
  const tally = tallies.get(file) ?? { agree: 0, total: 0, disagreeing: [] };
  tallies.set(file, tally);
  tally.total++;
  if (agrees) tally.agree++;
  else tally.disagreeing.push(id);
  const known = KNOWN_DISAGREEMENTS[file]?.[id];
  if (known !== undefined)
    expect(agrees, `${id} is listed as a known disagreement (${known}) but now agrees: remove it from the list`).toBe(false);
  else expect(agrees, `${id}: ${detail}`).toBe(true);
}

function verdictOf(type: 'avro' | 'json', updated: unknown, original: unknown): Verdict {
  const run = (level: CompatibilityLevel): boolean =>
    checkCompatibility({ type, level, schema: JSON.stringify(updated), previous: [JSON.stringify(original)] }).compatible;
  const backward = run('BACKWARD');
  const forward = run('FORWARD');
  return backward && forward ? 'both' : backward ? 'backward' : forward ? 'forward' : 'none';
}

/** Unique ids for files that repeat an id: the repeats get `#<occurrence>`. */
function uniqueIds(ids: string[]): string[] {
  const counts = new Map<string, number>();
  for (const id of ids) counts.set(id, (counts.get(id) ?? 0) + 1);
  const seen = new Map<string, number>();
  return ids.map((id) => {
    if ((counts.get(id) ?? 0) < 2) return id;
    const n = (seen.get(id) ?? 0) + 1;
    seen.set(id, n);
    return `${id} #${n}`;
  });
}

describe.runIf(PRESENT)(`Avro reader/writer resolution: ${APACHE_AVRO}`, () => {
  interface AvroCase {
    id: string;
    reader: unknown;
    writer: unknown;
    expected_reader_writer_compatible: boolean;
    expected_backward_if_new_is_reader: boolean;
    expected_incompatibilities?: { type?: string; message?: string; location: string }[];
  }
  interface DecodingCase {
    source: string;
    reader: unknown;
    writer: unknown;
    datum: unknown;
    expected_decoded?: unknown;
    expected_decode_error_contains?: string;
  }
  const file = fixture<{ cases: AvroCase[]; decoding_cases: DecodingCase[] }>(APACHE_AVRO);

  test.each(file.cases.map((c) => [c.id, c] as const))('%s', (id, c) => {
    const reader = parseSchema('avro', JSON.stringify(c.reader));
    const writer = parseSchema('avro', JSON.stringify(c.writer));
    const found = readerWriterIncompatibilities(reader, writer);
    const backward = checkCompatibility({ type: 'avro', level: 'BACKWARD', schema: reader, previous: [writer] }).compatible;
    // The original tests assert the first N incompatibilities: type, Avro's own message and location.
    const expected = c.expected_incompatibilities ?? [];
    const detailsMatch = expected.every((e, i) => {
      const got = found[i];
      return (
        got !== undefined &&
        (e.type === undefined || e.type === got.rule) &&
        (e.message === undefined || e.message === got.detail) &&
        e.location === got.location
      );
    });
    const agrees =
      (found.length === 0) === c.expected_reader_writer_compatible && backward === c.expected_backward_if_new_is_reader && detailsMatch;
    record(
      APACHE_AVRO,
      id,
      agrees,
      `expected compatible=${c.expected_reader_writer_compatible} ${JSON.stringify(expected)}, got ${JSON.stringify(found)}`,
    );
  });

  const decodingFile = `${APACHE_AVRO} (decoding)`;
  test.each(file.decoding_cases.map((c, i) => [`decode-${String(i + 1).padStart(2, '0')} ${c.source.split('#')[1] ?? ''}`, c] as const))(
    '%s',
    (id, c) => {
      const payload = encodeAvroDatum(JSON.stringify(c.writer), c.datum);
      let decoded: unknown;
      let error: string | undefined;
      try {
        decoded = createAvroDatumReader(JSON.stringify(c.reader), JSON.stringify(c.writer)).read(payload);
      } catch (err) {
        error = err instanceof Error ? err.message : String(err);
      }
      const agrees =
        c.expected_decode_error_contains !== undefined
          ? error !== undefined && error.includes(c.expected_decode_error_contains)
          : error === undefined && JSON.stringify(decoded) === JSON.stringify(c.expected_decoded);
      record(
        decodingFile,
        id,
        agrees,
        `expected ${JSON.stringify(c.expected_decoded ?? c.expected_decode_error_contains)}, got ${error ?? JSON.stringify(decoded)}`,
      );
    },
  );
});

describe.runIf(PRESENT)(`Confluent compatibility levels: ${CONFLUENT_AVRO}`, () => {
  interface LevelCase {
    id: string;
    level: CompatibilityLevel;
    new_schema_ref: string;
    previous_schema_refs: string[];
    expected_compatible: boolean;
    assert_message: string;
  }
  const file = fixture<{ schemas: Record<string, unknown>; cases: LevelCase[] }>(CONFLUENT_AVRO);
  const text = (ref: string): string => JSON.stringify(file.schemas[ref]);

  test.each(file.cases.map((c) => [c.id, c] as const))('%s', (id, c) => {
    const result = checkCompatibility({
      type: 'avro',
      level: c.level,
      schema: text(c.new_schema_ref),
      previous: c.previous_schema_refs.map(text),
    });
    record(
      CONFLUENT_AVRO,
      id,
      result.compatible === c.expected_compatible,
      `${c.level}: ${c.assert_message}; messages ${JSON.stringify(result.messages)}`,
    );
  });
});

describe.runIf(PRESENT)(`Apicurio Avro verdicts: ${APICURIO_AVRO}`, () => {
  interface ApicurioCase {
    id: string;
    compatibility: Verdict;
    original: unknown;
    updated: unknown;
  }
  const file = fixture<{ tests: ApicurioCase[] }>(APICURIO_AVRO);
  const ids = uniqueIds(file.tests.map((t) => t.id));

  test.each(file.tests.map((c, i) => [ids[i] as string, c] as const))('%s', (id, c) => {
    const got = verdictOf('avro', c.updated, c.original);
    record(APICURIO_AVRO, id, got === c.compatibility, `expected ${c.compatibility}, got ${got}`);
  });
});

describe.runIf(PRESENT)(`Confluent JSON Schema differences: ${CONFLUENT_JSON}`, () => {
  interface DiffCase {
    description: string;
    original_schema: unknown;
    update_schema: unknown;
    changes: string[];
    compatible: boolean;
    compatible_lenient?: boolean;
  }
  const cases = fixture<DiffCase[]>(CONFLUENT_JSON);

  test.each(cases.map((c, i) => [`cf-json-${String(i + 1).padStart(3, '0')} ${c.description}`, c] as const))('%s', (id, c) => {
    const strict = checkCompatibility({
      type: 'json',
      level: 'BACKWARD',
      schema: JSON.stringify(c.update_schema),
      previous: [JSON.stringify(c.original_schema)],
    });
    const lenient = checkCompatibility({
      type: 'json',
      level: 'BACKWARD',
      schema: JSON.stringify(c.update_schema),
      previous: [JSON.stringify(c.original_schema)],
      options: { jsonPolicy: 'LENIENT' },
    });
    // The differences themselves (order aside: Confluent's follows Java hash-set iteration).
    const changes = diffJsonSchemas(loadJsonSchema(c.original_schema).root, loadJsonSchema(c.update_schema).root, COMPATIBLE_CHANGES.STRICT)
      .map((d) => `${d.type} ${d.path}`)
      .sort();
    const agrees =
      strict.compatible === c.compatible &&
      lenient.compatible === (c.compatible_lenient ?? c.compatible) &&
      JSON.stringify(changes) === JSON.stringify([...c.changes].sort());
    record(
      CONFLUENT_JSON,
      id,
      agrees,
      `expected compatible=${c.compatible} lenient=${c.compatible_lenient} changes ${JSON.stringify(c.changes)}; got ${strict.compatible}/${lenient.compatible} ${JSON.stringify(changes)}`,
    );
  });
});

describe.runIf(PRESENT)(`Apicurio JSON Schema verdicts, Confluent's where they differ: ${APICURIO_JSON}`, () => {
  interface ApicurioCase {
    id: string;
    compatibility: Verdict;
    original: unknown;
    updated: unknown;
  }
  const file = fixture<{ tests: ApicurioCase[] }>(APICURIO_JSON);
  const ids = uniqueIds(file.tests.map((t) => t.id));

  test('every named divergence exists in the file', () => {
    for (const id of Object.keys(APICURIO_JSON_CONFLUENT_DIVERGENCES)) expect(ids, id).toContain(id);
  });

  test.each(file.tests.map((c, i) => [ids[i] as string, c] as const))('%s', (id, c) => {
    const got = verdictOf('json', c.updated, c.original);
    apicurioRaw.total++;
    if (got === c.compatibility) apicurioRaw.agree++;
    else apicurioRaw.disagreeing.push(id);
    const divergence = APICURIO_JSON_CONFLUENT_DIVERGENCES[id];
    if (divergence)
      expect(divergence.confluent, `${id}: listed as a Confluent/Apicurio divergence but Apicurio's verdict is the same`).not.toBe(
        c.compatibility,
      );
    const expected = divergence ? divergence.confluent : c.compatibility;
    record(
      APICURIO_JSON,
      id,
      got === expected,
      `expected ${expected}${divergence ? ` (Confluent; Apicurio says ${c.compatibility}: ${divergence.why})` : ''}, got ${got}`,
    );
  });
});

afterAll(() => {
  if (!PRESENT) return;
  const lines = ['schema-compat fixture agreement (cases agreeing / total):'];
  for (const [file, t] of tallies) {
    const pct = ((100 * t.agree) / t.total).toFixed(2);
    lines.push(`  ${file}: ${t.agree}/${t.total} (${pct}%)${t.disagreeing.length ? ` disagreeing: ${t.disagreeing.join(', ')}` : ''}`);
    if (file === APICURIO_JSON) {
      lines.push(
        `    against Apicurio's own verdicts: ${apicurioRaw.agree}/${apicurioRaw.total} (${((100 * apicurioRaw.agree) / apicurioRaw.total).toFixed(2)}%); the ${apicurioRaw.disagreeing.length} others are Confluent/Apicurio divergences: ${apicurioRaw.disagreeing.join(', ')}`,
      );
    }
  }
  console.log(lines.join('\n'));
});
