import { describe, expect, it } from 'vitest';
import { checkJsonSchemaBackward, COMPATIBLE_CHANGES } from '../../../services/compat-gate/json-schema-compat.js';
import { diffJsonSchemas } from '../../../services/compat-gate/json-schema-diff.js';
import { loadJsonSchema } from '../../../services/compat-gate/json-schema-model.js';

/**
 * JSON Schema 2019-09 and 2020-12 keywords judged by their own meaning, one block per keyword. Each
 * case diffs writer (original) -> reader (update) with Confluent's difference vocabulary and checks
 * the STRICT verdict; where a keyword did not exist in draft 7, the draft-7 reading is shown too.
 */

const D2019 = 'https://json-schema.org/draft/2019-09/schema';
const D2020 = 'https://json-schema.org/draft/2020-12/schema';
const D7 = 'http://json-schema.org/draft-07/schema#';

function doc(draft: string, body: Record<string, unknown>): Record<string, unknown> {
  return { $schema: draft, ...body };
}

function changes(original: unknown, update: unknown): string[] {
  return diffJsonSchemas(loadJsonSchema(original).root, loadJsonSchema(update).root, COMPATIBLE_CHANGES.STRICT).map(
    (d) => `${d.type} ${d.path}`,
  );
}

/** STRICT backward: a reader on `update` reads what `original` wrote. */
function compatible(original: unknown, update: unknown): boolean {
  return checkJsonSchemaBackward(loadJsonSchema(update), loadJsonSchema(original)).length === 0;
}

// Differences in dependentRequired/dependentSchemas are reported at #/dependencies/<name>, the path
// Confluent's diff uses for them in 2020-12 documents too.
describe('dependentRequired (2019-09 split of dependencies)', () => {
  const base = { type: 'object', properties: { card: { type: 'string' }, billing: { type: 'string' }, zip: { type: 'string' } } };
  it('adding one constrains readers: DEPENDENCY_ARRAY_ADDED, incompatible; removing it is compatible', () => {
    const v1 = doc(D2019, base);
    const v2 = doc(D2019, { ...base, dependentRequired: { card: ['billing'] } });
    expect(changes(v1, v2)).toEqual(['DEPENDENCY_ARRAY_ADDED #/dependencies/card']);
    expect(compatible(v1, v2)).toBe(false);
    expect(changes(v2, v1)).toEqual(['DEPENDENCY_ARRAY_REMOVED #/dependencies/card']);
    expect(compatible(v2, v1)).toBe(true);
  });
  it('a longer list asks more (EXTENDED, incompatible); a shorter one less (NARROWED, compatible)', () => {
    const one = doc(D2020, { ...base, dependentRequired: { card: ['billing'] } });
    const two = doc(D2020, { ...base, dependentRequired: { card: ['billing', 'zip'] } });
    expect(changes(one, two)).toEqual(['DEPENDENCY_ARRAY_EXTENDED #/dependencies/card']);
    expect(compatible(one, two)).toBe(false);
    expect(compatible(two, one)).toBe(true);
  });
  it('in draft 7 the keyword does not exist: no difference at all', () => {
    expect(changes(doc(D7, base), doc(D7, { ...base, dependentRequired: { card: ['billing'] } }))).toEqual([]);
  });
  it('the old `dependencies` keyword means nothing in 2019-09', () => {
    expect(changes(doc(D2019, base), doc(D2019, { ...base, dependencies: { card: ['billing'] } }))).toEqual([]);
  });
});

describe('dependentSchemas (2019-09 split of dependencies)', () => {
  const base = { type: 'object', properties: { card: { type: 'string' }, cvv: { type: 'string' } } };
  it('adding one is DEPENDENCY_SCHEMA_ADDED (incompatible); a changed one is compared inside', () => {
    const v1 = doc(D2019, base);
    const v2 = doc(D2019, { ...base, dependentSchemas: { card: { properties: { cvv: { maxLength: 4 } } } } });
    expect(changes(v1, v2)).toEqual(['DEPENDENCY_SCHEMA_ADDED #/dependencies/card']);
    expect(compatible(v1, v2)).toBe(false);
    const v3 = doc(D2019, { ...base, dependentSchemas: { card: { properties: { cvv: { maxLength: 3 } } } } });
    expect(changes(v2, v3)).toEqual(['MAX_LENGTH_DECREASED #/dependencies/card/properties/cvv/maxLength']);
    expect(compatible(v3, v2)).toBe(true);
    expect(compatible(v1, v2)).toBe(false);
    expect(checkJsonSchemaBackward(loadJsonSchema(v3), loadJsonSchema(v2))[0]?.fieldPath).toBe('card.cvv');
  });
});

describe('unevaluatedProperties sees what in-place applicators evaluate', () => {
  const branch = (props: Record<string, unknown>) => ({ type: 'object', properties: props });
  it('closed over allOf branches: adding a property to a branch is like adding to a closed model (compatible)', () => {
    const v1 = doc(D2019, { allOf: [branch({ id: { type: 'integer' } })], unevaluatedProperties: false });
    const v2 = doc(D2019, { allOf: [branch({ id: { type: 'integer' }, note: { type: 'string' } })], unevaluatedProperties: false });
    // The schema object holds two keyword families (allOf, and the object keyword), so its node is a
    // synthetic allOf of both: the explicit allOf is its first entry.
    expect(changes(v1, v2)).toEqual(['OPTIONAL_PROPERTY_ADDED_TO_UNOPEN_CONTENT_MODEL #/allOf/0/allOf/0/properties/note']);
    expect(compatible(v1, v2)).toBe(true);
    // The draft-7 reading sees an open branch: adding a property there is incompatible under STRICT.
    const d7 = (d: Record<string, unknown>) => ({ ...d, $schema: D7 });
    expect(changes(d7(v1), d7(v2))).toEqual(['COMBINED_TYPE_SUBSCHEMAS_CHANGED #/']);
    expect(compatible(d7(v1), d7(v2))).toBe(false);
  });
  it('removing a property from a branch of a closed model rejects data that had it (incompatible)', () => {
    const v1 = doc(D2020, { allOf: [branch({ id: { type: 'integer' }, note: { type: 'string' } })], unevaluatedProperties: false });
    const v2 = doc(D2020, { allOf: [branch({ id: { type: 'integer' } })], unevaluatedProperties: false });
    // The branch no longer matches its old self (a property removed from a closed model), so the
    // allOf entries cannot be paired up compatibly.
    expect(changes(v1, v2)).toContain('COMBINED_TYPE_SUBSCHEMAS_CHANGED #/');
    expect(compatible(v1, v2)).toBe(false);
    // Open (draft-7 reading), the same removal is harmless.
    expect(compatible({ ...v1, $schema: D7 }, { ...v2, $schema: D7 })).toBe(true);
  });
  it('a schema for unevaluated properties covers a removed branch property when it accepts its values', () => {
    const v1 = doc(D2020, { oneOf: [branch({ n: { type: 'string' } })], unevaluatedProperties: { type: 'string' } });
    const v2 = doc(D2020, { oneOf: [branch({})], unevaluatedProperties: { type: 'string' } });
    expect(changes(v1, v2)).toEqual(['PROPERTY_REMOVED_IS_COVERED_BY_PARTIALLY_OPEN_CONTENT_MODEL #/allOf/0/oneOf/0/properties/n']);
    expect(compatible(v1, v2)).toBe(true);
  });
  it('$ref + unevaluatedProperties: false closes the referenced definition here, not where it is used open', () => {
    const v = (props: Record<string, unknown>) =>
      doc(D2020, {
        type: 'object',
        properties: { order: { $ref: '#/$defs/base', unevaluatedProperties: false }, draft: { $ref: '#/$defs/base' } },
        $defs: { base: { type: 'object', properties: props } },
      });
    const v1 = v({ id: { type: 'integer' } });
    const v2 = v({ id: { type: 'integer' }, note: { type: 'string' } });
    const found = changes(v1, v2);
    // Closed where unevaluatedProperties: false applies: an addition to a closed model.
    expect(found).toContain('OPTIONAL_PROPERTY_ADDED_TO_UNOPEN_CONTENT_MODEL #/properties/order/allOf/0/properties/note');
    // Open where the same definition is used alone: STRICT flags the addition there.
    expect(found).toContain('OPTIONAL_PROPERTY_ADDED_TO_OPEN_CONTENT_MODEL #/properties/draft/properties/note');
    const order = (props: Record<string, unknown>) =>
      doc(D2020, { $ref: '#/$defs/base', unevaluatedProperties: false, $defs: { base: { type: 'object', properties: props } } });
    expect(compatible(order({ id: { type: 'integer' } }), order({ id: { type: 'integer' }, note: { type: 'string' } }))).toBe(true);
    expect(compatible(order({ id: { type: 'integer' }, note: { type: 'string' } }), order({ id: { type: 'integer' } }))).toBe(false);
  });

  it('closing an open object with unevaluatedProperties: false is UNEVALUATED_PROPERTIES_REMOVED (incompatible)', () => {
    const v1 = doc(D2019, { type: 'object', properties: { a: {} } });
    const v2 = doc(D2019, { type: 'object', properties: { a: {} }, unevaluatedProperties: false });
    expect(changes(v1, v2)).toEqual(['UNEVALUATED_PROPERTIES_REMOVED #/unevaluatedProperties']);
    expect(compatible(v1, v2)).toBe(false);
  });
});

describe('prefixItems / items split (2020-12) and unevaluatedItems', () => {
  it('2020-12: prefixItems is the tuple and items the rest; a tuple entry added to a closed tuple is compatible', () => {
    const v1 = doc(D2020, { prefixItems: [{ type: 'string' }], items: false });
    const v2 = doc(D2020, { prefixItems: [{ type: 'string' }, { type: 'integer' }], items: false });
    expect(changes(v1, v2)).toEqual(['ITEM_ADDED_TO_CLOSED_CONTENT_MODEL #/items/1']);
    expect(compatible(v1, v2)).toBe(true);
    // prefixItems alone makes the schema an array schema (no "type" needed).
    expect(loadJsonSchema(v1).root.kind).toBe('array');
  });
  it('2020-12: items as a schema for the rest narrowing is incompatible; 2019-09 writes the same as items + additionalItems', () => {
    const a = doc(D2020, { prefixItems: [{ type: 'string' }], items: { type: 'integer' } });
    const b = doc(D2020, { prefixItems: [{ type: 'string' }], items: { type: 'integer', maximum: 5 } });
    expect(changes(a, b)).toEqual(['MAXIMUM_ADDED #/additionalItems/maximum']);
    expect(compatible(a, b)).toBe(false);
    const a19 = doc(D2019, { items: [{ type: 'string' }], additionalItems: { type: 'integer' } });
    const b19 = doc(D2019, { items: [{ type: 'string' }], additionalItems: { type: 'integer', maximum: 5 } });
    expect(changes(a19, b19)).toEqual(changes(a, b));
  });
  it('2020-12 ignores additionalItems (it is not a keyword any more)', () => {
    expect(
      changes(doc(D2020, { prefixItems: [{ type: 'string' }] }), doc(D2020, { prefixItems: [{ type: 'string' }], additionalItems: false })),
    ).toEqual([]);
  });
  it('unevaluatedItems: false closes the tuples of in-place branches', () => {
    const v1 = doc(D2020, { allOf: [{ prefixItems: [{ type: 'string' }, { type: 'integer' }] }], unevaluatedItems: false });
    const v2 = doc(D2020, { allOf: [{ prefixItems: [{ type: 'string' }] }], unevaluatedItems: false });
    expect(changes(v1, v2)).toContain('COMBINED_TYPE_SUBSCHEMAS_CHANGED #/');
    expect(compatible(v1, v2)).toBe(false);
    // Without unevaluatedItems the branch tuple stays open and dropping its second entry is harmless.
    expect(
      compatible(
        doc(D2020, { allOf: [{ prefixItems: [{ type: 'string' }, { type: 'integer' }] }] }),
        doc(D2020, { allOf: [{ prefixItems: [{ type: 'string' }] }] }),
      ),
    ).toBe(true);
  });
});

describe('contains with minContains / maxContains (2019-09)', () => {
  const arr = (extra: Record<string, unknown>) => doc(D2019, { type: 'array', items: { type: 'integer' }, ...extra });
  it('adding contains narrows (CONTAINS_ADDED, incompatible); removing it is compatible', () => {
    expect(changes(arr({}), arr({ contains: { minimum: 10 } }))).toEqual(['CONTAINS_ADDED #/contains']);
    expect(compatible(arr({}), arr({ contains: { minimum: 10 } }))).toBe(false);
    expect(compatible(arr({ contains: { minimum: 10 } }), arr({}))).toBe(true);
  });
  it('a wider contains schema reads what a narrower one wrote; a narrower one does not', () => {
    expect(compatible(arr({ contains: { minimum: 10 } }), arr({ contains: { minimum: 5 } }))).toBe(true);
    expect(changes(arr({ contains: { minimum: 5 } }), arr({ contains: { minimum: 10 } }))).toEqual([
      'MINIMUM_INCREASED #/contains/minimum',
    ]);
  });
  it('minContains defaults to 1 and maxContains to unbounded; tighter bounds are incompatible', () => {
    expect(changes(arr({ contains: { minimum: 5 } }), arr({ contains: { minimum: 5 }, minContains: 1 }))).toEqual([]);
    expect(changes(arr({ contains: { minimum: 5 } }), arr({ contains: { minimum: 5 }, minContains: 2 }))).toEqual([
      'MIN_CONTAINS_INCREASED #/minContains',
    ]);
    expect(compatible(arr({ contains: { minimum: 5 } }), arr({ contains: { minimum: 5 }, minContains: 2 }))).toBe(false);
    expect(compatible(arr({ contains: { minimum: 5 }, minContains: 2 }), arr({ contains: { minimum: 5 } }))).toBe(true);
    expect(changes(arr({ contains: { minimum: 5 } }), arr({ contains: { minimum: 5 }, maxContains: 3 }))).toEqual([
      'MAX_CONTAINS_ADDED #/maxContains',
    ]);
    expect(compatible(arr({ contains: { minimum: 5 }, maxContains: 3 }), arr({ contains: { minimum: 5 }, maxContains: 4 }))).toBe(true);
  });
  it('minContains: 0 without maxContains asks nothing: adding such a contains is no change', () => {
    expect(changes(arr({}), arr({ contains: { minimum: 5 }, minContains: 0 }))).toEqual([]);
  });
  it('with maxContains the contains schema must not widen either (more items would count)', () => {
    const v1 = arr({ contains: { minimum: 10 }, maxContains: 2 });
    const v2 = arr({ contains: { minimum: 5 }, maxContains: 2 });
    expect(compatible(v1, v2)).toBe(false);
  });
  it('draft 7 keeps Confluent\'s reading: contains is not compared (see fixtures.test.ts, "Array: contains")', () => {
    expect(changes(doc(D7, { type: 'array', contains: { minimum: 10 } }), doc(D7, { type: 'array', contains: { minimum: 50 } }))).toEqual(
      [],
    );
  });
});

describe('references: $defs, $anchor, $ref siblings, $dynamicRef, $recursiveRef', () => {
  it('$defs and $anchor resolve; a change behind either is found at the referring place', () => {
    const v = (max: number) =>
      doc(D2020, {
        type: 'object',
        properties: { a: { $ref: '#/$defs/code' }, b: { $ref: '#name' } },
        $defs: { code: { type: 'string', maxLength: max }, n: { $anchor: 'name', type: 'string', maxLength: max } },
      });
    expect(changes(v(10), v(5))).toEqual([
      'MAX_LENGTH_DECREASED #/properties/a/maxLength',
      'MAX_LENGTH_DECREASED #/properties/b/maxLength',
    ]);
    expect(compatible(v(5), v(10))).toBe(true);
  });
  it('from 2019-09 a $ref applies beside its siblings (draft 7 ignores them)', () => {
    const v1 = { $defs: { s: { type: 'string' } }, properties: { a: { $ref: '#/$defs/s' } } };
    const v2 = { $defs: { s: { type: 'string' } }, properties: { a: { $ref: '#/$defs/s', maxLength: 3 } } };
    expect(compatible(doc(D2019, v1), doc(D2019, v2))).toBe(false);
    // The $ref and its sibling are conjuncts: the sibling's new constraint is what breaks old data.
    expect(changes(doc(D2019, v1), doc(D2019, v2))).toEqual(['MAX_LENGTH_ADDED #/properties/a/allOf/1/maxLength']);
    expect(compatible(doc(D2019, v2), doc(D2019, v1))).toBe(true);
    const d7 = { definitions: { s: { type: 'string' } }, properties: { a: { $ref: '#/definitions/s' } } };
    const d7b = { definitions: { s: { type: 'string' } }, properties: { a: { $ref: '#/definitions/s', maxLength: 3 } } };
    expect(changes(doc(D7, d7), doc(D7, d7b))).toEqual([]);
  });
  it('$dynamicRef lands on its $dynamicAnchor (2020-12): a recursive tree change is seen', () => {
    const tree = (max: number) =>
      doc(D2020, {
        $dynamicAnchor: 'node',
        type: 'object',
        properties: { value: { type: 'string', maxLength: max }, children: { type: 'array', items: { $dynamicRef: '#node' } } },
      });
    // Found at the root and again where the tree recurses into itself.
    expect(changes(tree(10), tree(5))).toEqual([
      'MAX_LENGTH_DECREASED #/properties/value/maxLength',
      'MAX_LENGTH_DECREASED #/properties/children/items/properties/value/maxLength',
    ]);
    expect(compatible(tree(10), tree(5))).toBe(false);
    expect(compatible(tree(5), tree(10))).toBe(true);
    // Read as draft 7 (where $dynamicRef means nothing) the children accept anything.
    expect(changes({ ...tree(10), $schema: D7 }, { ...tree(5), $schema: D7 })).toEqual([
      'MAX_LENGTH_DECREASED #/properties/value/maxLength',
    ]);
  });
  it('$recursiveRef "#" lands on the root (2019-09)', () => {
    const tree = (type: string) =>
      doc(D2019, {
        $recursiveAnchor: true,
        type: 'object',
        properties: { v: { type }, kids: { type: 'array', items: { $recursiveRef: '#' } } },
      });
    expect(changes(tree('string'), tree('integer'))).toEqual([
      'TYPE_CHANGED #/properties/v',
      'TYPE_CHANGED #/properties/kids/items/properties/v',
    ]);
  });
});
