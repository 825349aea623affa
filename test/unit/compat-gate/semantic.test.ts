import { describe, expect, test } from 'vitest';
import { parseSchema } from '../../../services/compat-gate/checker.js';
import { checkSemanticChanges, fieldNames, type SemanticChange } from '../../../services/compat-gate/semantic.js';

// A Debezium-style envelope: the columns live inside before/after.
const envelope = (columns: unknown[]) =>
  parseSchema(
    'avro',
    JSON.stringify({
      type: 'record',
      name: 'Envelope',
      fields: [
        { name: 'before', type: ['null', { type: 'record', name: 'Value', fields: columns }], default: null },
        { name: 'after', type: ['null', 'Value'], default: null },
        { name: 'op', type: 'string' },
      ],
    }),
  );
const v1 = envelope([
  { name: 'id', type: 'long' },
  { name: 'total_amount', type: 'int' },
]);
const v2NewField = envelope([
  { name: 'id', type: 'long' },
  { name: 'total_amount', type: 'int' },
  { name: 'total_amount_minor', type: 'long', default: 0 },
]);
const v2Marker = envelope([
  { name: 'id', type: 'long' },
  { name: 'total_amount', type: 'int' },
  { name: 'amount_semantics', type: 'string', default: 'post-tax' },
]);

const change = (over: Partial<SemanticChange>): SemanticChange => ({
  field: 'total_amount',
  description: 'pre-tax -> post-tax',
  via: 'new-field',
  ...over,
});

describe('semantic changes', () => {
  test('field names are collected at any depth, through named-type references', () => {
    expect([...fieldNames(v1)].sort()).toEqual(['after', 'before', 'id', 'op', 'total_amount']);
    const json = parseSchema(
      'json',
      JSON.stringify({
        type: 'object',
        properties: { after: { $ref: '#/definitions/v' } },
        definitions: { v: { type: 'object', properties: { total_amount: { type: 'integer' } } } },
      }),
    );
    expect(fieldNames(json).has('total_amount')).toBe(true);
  });

  test('via new-field passes only when the candidate carries the new field', () => {
    const subjects = (candidate = v2NewField) => [{ subject: 'orders-value', candidate, registered: [v1] }];
    expect(checkSemanticChanges([change({ newField: 'total_amount_minor' })], subjects())).toEqual([]);
    const [finding] = checkSemanticChanges([change({ newField: 'total_amount_minor' })], subjects(v1));
    expect(finding).toMatchObject({ kind: 'semantic-change', subject: 'orders-value' });
    expect(finding?.message).toContain('has no field "total_amount_minor"');
    expect(checkSemanticChanges([change({})], subjects())[0]?.message).toContain('names no different newField');
  });

  test('via marker-field passes only when the marker is there', () => {
    const subjects = [{ subject: 'orders-value', candidate: v2Marker, registered: [v1] }];
    expect(checkSemanticChanges([change({ via: 'marker-field', markerField: 'amount_semantics' })], subjects)).toEqual([]);
    expect(checkSemanticChanges([change({ via: 'marker-field', markerField: 'currency_semantics' })], subjects)).toHaveLength(1);
  });

  test('via new-subject needs the new subject declared next to the old one', () => {
    const old = { subject: 'orders-value', registered: [v1] };
    const next = { subject: 'orders.v2-value', candidate: v1, registered: [] };
    expect(checkSemanticChanges([change({ via: 'new-subject', newSubject: 'orders.v2-value' })], [old, next])).toEqual([]);
    expect(checkSemanticChanges([change({ via: 'new-subject', newSubject: 'orders.v2-value' })], [old])[0]?.message).toContain(
      'does not list',
    );
    expect(
      checkSemanticChanges([change({ via: 'new-subject', newSubject: 'orders.v2-value' })], [{ ...next, registered: [v1] }])[0]?.message,
    ).toContain('only subject carrying it');
  });

  test('a change of a field no event schema carries is reported (a typo would otherwise pass silently)', () => {
    expect(
      checkSemanticChanges([change({ field: 'totl_amount', newField: 'x' })], [{ subject: 'orders-value', registered: [v1] }])[0]?.message,
    ).toContain('no event schema');
  });
});
