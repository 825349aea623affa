import { describe, expect, test } from 'vitest';
import { ParityError } from '../../../services/core/errors.js';
import { checkJsonSchemaBackward, propertyPath } from '../../../services/compat-gate/json-schema-compat.js';
import { loadJsonSchema } from '../../../services/compat-gate/json-schema-model.js';
import { isMultipleOf, decimalEquals } from '../../../services/compat-gate/decimal.js';
import { maximumMatching } from '../../../services/compat-gate/max-matching.js';

/** Backward (new reads old) under a policy: the rules of the incompatibilities found. */
function rules(previous: unknown, next: unknown, policy: 'STRICT' | 'LENIENT' = 'STRICT'): string[] {
  return checkJsonSchemaBackward(loadJsonSchema(next), loadJsonSchema(previous), policy).map((i) => `${i.rule} ${i.location}`);
}

const obj = (properties: Record<string, unknown>, extra: Record<string, unknown> = {}) => ({ type: 'object', properties, ...extra });

describe('content models', () => {
  test('closed -> a new optional property is fine; a removed one is not', () => {
    expect(
      rules(
        obj({ a: { type: 'string' } }, { additionalProperties: false }),
        obj({ a: { type: 'string' }, b: { type: 'number' } }, { additionalProperties: false }),
      ),
    ).toEqual([]);
    expect(
      rules(
        obj({ a: { type: 'string' }, b: { type: 'number' } }, { additionalProperties: false }),
        obj({ a: { type: 'string' } }, { additionalProperties: false }),
      ),
    ).toEqual(['PROPERTY_REMOVED_FROM_CLOSED_CONTENT_MODEL #/properties/b']);
  });

  test('open -> adding a typed property breaks STRICT (old data may hold it with another type) but not LENIENT', () => {
    expect(rules(obj({ a: { type: 'string' } }), obj({ a: { type: 'string' }, b: { type: 'number' } }))).toEqual([
      'OPTIONAL_PROPERTY_ADDED_TO_OPEN_CONTENT_MODEL #/properties/b',
    ]);
    expect(rules(obj({ a: { type: 'string' } }), obj({ a: { type: 'string' }, b: { type: 'number' } }), 'LENIENT')).toEqual([]);
    // Removing from an open model is fine either way.
    expect(rules(obj({ a: { type: 'string' }, b: {} }), obj({ a: { type: 'string' } }))).toEqual([]);
  });

  test('partially open: a new property must fit the schema old extra properties were validated with', () => {
    const before = obj({}, { additionalProperties: { type: 'string' } });
    expect(rules(before, obj({ code: { type: 'string', maxLength: 3 } }, { additionalProperties: { type: 'string' } }))).toContain(
      'PROPERTY_ADDED_NOT_COVERED_BY_PARTIALLY_OPEN_CONTENT_MODEL #/properties/code',
    );
    expect(rules(before, obj({ code: { type: 'string' } }, { additionalProperties: { type: 'string' } }))).toEqual([]);
  });

  test('a new required property needs a default', () => {
    const before = obj({ a: { type: 'string' } }, { additionalProperties: false });
    expect(rules(before, obj({ a: { type: 'string' }, b: { type: 'string' } }, { additionalProperties: false, required: ['b'] }))).toEqual([
      'REQUIRED_PROPERTY_ADDED_TO_UNOPEN_CONTENT_MODEL #/properties/b',
    ]);
    expect(
      rules(before, obj({ a: { type: 'string' }, b: { type: 'string', default: 'x' } }, { additionalProperties: false, required: ['b'] })),
    ).toEqual([]);
  });
});

describe('types and constraints', () => {
  test('integer -> number widens, number -> integer narrows; tighter limits break readers', () => {
    expect(rules({ type: 'integer' }, { type: 'number' })).toEqual([]);
    expect(rules({ type: 'number' }, { type: 'integer' })).toEqual(['TYPE_NARROWED #/']);
    expect(rules({ type: 'string', maxLength: 10 }, { type: 'string', maxLength: 5 })).toEqual(['MAX_LENGTH_DECREASED #/maxLength']);
    expect(rules({ type: 'string', maxLength: 10 }, { type: 'string' })).toEqual([]);
  });

  test('multipleOf is compared with exact decimals', () => {
    expect(rules({ type: 'number', multipleOf: 0.3 }, { type: 'number', multipleOf: 0.1 })).toEqual([]);
    expect(rules({ type: 'number', multipleOf: 0.1 }, { type: 'number', multipleOf: 0.3 })).toEqual(['MULTIPLE_OF_EXPANDED #/multipleOf']);
    expect(isMultipleOf('0.3', '0.1')).toBe(true);
    expect(isMultipleOf('1e-7', '1e-8')).toBe(true);
    expect(decimalEquals('0.5', '0.50')).toBe(true);
  });

  test('anything may become the empty schema; the empty schema may not become a type', () => {
    expect(rules({ type: 'string' }, {})).toEqual([]);
    expect(rules({ type: 'string' }, true)).toEqual([]);
    expect(rules({}, { type: 'string' })).toEqual(['TYPE_CHANGED #/']);
  });

  test('enums may grow, not shrink', () => {
    expect(rules({ enum: ['a'] }, { enum: ['a', 'b'] })).toEqual([]);
    expect(rules({ enum: ['a', 'b'] }, { enum: ['a'] })).toEqual(['ENUM_ARRAY_NARROWED #/enum']);
  });
});

describe('combined schemas', () => {
  test('a type may become a oneOf that contains it, not the reverse', () => {
    expect(rules({ type: 'string' }, { oneOf: [{ type: 'string' }, { type: 'null' }] })).toEqual([]);
    expect(rules({ oneOf: [{ type: 'string' }, { type: 'null' }] }, { type: 'string' })).toEqual(['TYPE_CHANGED #/']);
  });

  test('a type array is an anyOf of its types', () => {
    expect(rules({ type: 'string' }, { type: ['string', 'null'] })).toEqual([]);
    expect(rules({ type: ['string', 'null'] }, { type: ['string'] })).toContain('SUM_TYPE_NARROWED #/');
  });

  test('subschemas are paired one to one (reordering is fine)', () => {
    expect(rules({ anyOf: [{ type: 'string' }, { type: 'number' }] }, { anyOf: [{ type: 'number' }, { type: 'string' }] })).toEqual([]);
    expect(rules({ anyOf: [{ type: 'string' }, { type: 'number' }] }, { anyOf: [{ type: 'string' }, { type: 'boolean' }] })).toEqual([
      'COMBINED_TYPE_SUBSCHEMAS_CHANGED #/',
    ]);
  });
});

describe('references', () => {
  const tree = (leaf: unknown) => ({
    $ref: '#/definitions/node',
    definitions: {
      node: obj({ value: leaf, children: { type: 'array', items: { $ref: '#/definitions/node' } } }, { additionalProperties: false }),
    },
  });

  test('recursive definitions terminate, and a change inside the cycle is found with its path', () => {
    expect(rules(tree({ type: 'integer' }), tree({ type: 'number' }))).toEqual([]);
    // Reported where the tree starts and again where the cycle re-enters it.
    expect(rules(tree({ type: 'number' }), tree({ type: 'integer' }))).toEqual([
      'TYPE_NARROWED #/properties/value',
      'TYPE_NARROWED #/properties/children/items/properties/value',
    ]);
  });

  test('plain-name $id anchors resolve', () => {
    const schema = { definitions: { a: { $id: '#A', type: 'string' } }, properties: { x: { $ref: '#A' } } };
    expect(rules(schema, schema)).toEqual([]);
  });

  test('a dangling reference is bad input', () => {
    expect(() => loadJsonSchema({ $ref: '#/definitions/missing' })).toThrow(ParityError);
  });

  test('a root that is not an object or boolean is bad input', () => {
    expect(() => loadJsonSchema('[1,2]')).toThrow(/root must be an object or a boolean/);
    expect(() => loadJsonSchema('{"type":')).toThrow(/not valid JSON/);
  });
});

describe('helpers', () => {
  test('property paths read like data paths', () => {
    expect(propertyPath('#/properties/a/properties/b/maxLength')).toBe('a.b');
    expect(propertyPath('#/properties/lines/items/properties/sku')).toBe('lines[].sku');
    expect(propertyPath('#/')).toBeUndefined();
  });

  test('maximum matching finds a perfect pairing when a greedy one would not', () => {
    // left 0 can take 0 or 1, left 1 only 0: greedy 0->0 leaves 1 unmatched.
    expect(maximumMatching(2, 2, [[0, 1], [0]])).toEqual([1, 0]);
  });
});
