import type { Incompatibility } from './incompatibility.js';
import { diffJsonSchemas, type Difference, type DifferenceType } from './json-schema-diff.js';
import type { LoadedJsonSchema } from './json-schema-model.js';

/**
 * JSON Schema compatibility with Confluent Schema Registry's semantics: a change is compatible when
 * every difference between the schemas is on the policy's allow-list.
 *
 * STRICT (Confluent's default) treats a JSON document like a closed record: adding or removing a
 * property is safe only where the content model makes it so. LENIENT (Confluent 8.0.3+) also accepts
 * properties added to or removed from open content models and narrowed additionalProperties, which
 * matches how most JSON producers and consumers behave in practice but lets a new property silently
 * change meaning for old readers.
 */
export type JsonCompatibilityPolicy = 'STRICT' | 'LENIENT';

const STRICT_LIST: readonly DifferenceType[] = [
  'ID_CHANGED',
  'DESCRIPTION_CHANGED',
  'TITLE_CHANGED',
  'DEFAULT_CHANGED',
  'SCHEMA_REMOVED',
  'TYPE_EXTENDED',
  'MAX_LENGTH_INCREASED',
  'MAX_LENGTH_REMOVED',
  'MIN_LENGTH_DECREASED',
  'MIN_LENGTH_REMOVED',
  'PATTERN_REMOVED',
  'MAXIMUM_INCREASED',
  'MAXIMUM_REMOVED',
  'MINIMUM_DECREASED',
  'MINIMUM_REMOVED',
  'EXCLUSIVE_MAXIMUM_INCREASED',
  'EXCLUSIVE_MAXIMUM_REMOVED',
  'EXCLUSIVE_MINIMUM_DECREASED',
  'EXCLUSIVE_MINIMUM_REMOVED',
  'MULTIPLE_OF_REDUCED',
  'MULTIPLE_OF_REMOVED',
  'REQUIRED_ATTRIBUTE_WITH_DEFAULT_ADDED',
  'REQUIRED_ATTRIBUTE_REMOVED',
  'DEPENDENCY_ARRAY_NARROWED',
  'DEPENDENCY_ARRAY_REMOVED',
  'DEPENDENCY_SCHEMA_REMOVED',
  'MAX_PROPERTIES_INCREASED',
  'MAX_PROPERTIES_REMOVED',
  'MIN_PROPERTIES_DECREASED',
  'MIN_PROPERTIES_REMOVED',
  'ADDITIONAL_PROPERTIES_ADDED',
  'ADDITIONAL_PROPERTIES_EXTENDED',
  'UNEVALUATED_PROPERTIES_ADDED',
  'UNEVALUATED_PROPERTIES_EXTENDED',
  'PROPERTY_WITH_EMPTY_SCHEMA_ADDED_TO_OPEN_CONTENT_MODEL',
  'REQUIRED_PROPERTY_WITH_DEFAULT_ADDED_TO_UNOPEN_CONTENT_MODEL',
  'OPTIONAL_PROPERTY_ADDED_TO_UNOPEN_CONTENT_MODEL',
  'PROPERTY_WITH_FALSE_REMOVED_FROM_CLOSED_CONTENT_MODEL',
  'PROPERTY_REMOVED_FROM_OPEN_CONTENT_MODEL',
  'PROPERTY_ADDED_IS_COVERED_BY_PARTIALLY_OPEN_CONTENT_MODEL',
  'PROPERTY_REMOVED_IS_COVERED_BY_PARTIALLY_OPEN_CONTENT_MODEL',
  'MAX_ITEMS_INCREASED',
  'MAX_ITEMS_REMOVED',
  'MIN_ITEMS_DECREASED',
  'MIN_ITEMS_REMOVED',
  'MAX_CONTAINS_INCREASED',
  'MAX_CONTAINS_REMOVED',
  'MIN_CONTAINS_DECREASED',
  'MIN_CONTAINS_REMOVED',
  'CONTAINS_REMOVED',
  'UNIQUE_ITEMS_REMOVED',
  'ADDITIONAL_ITEMS_ADDED',
  'ADDITIONAL_ITEMS_EXTENDED',
  'UNEVALUATED_ITEMS_ADDED',
  'UNEVALUATED_ITEMS_EXTENDED',
  'ITEM_WITH_EMPTY_SCHEMA_ADDED_TO_OPEN_CONTENT_MODEL',
  'ITEM_ADDED_TO_CLOSED_CONTENT_MODEL',
  'ITEM_WITH_FALSE_REMOVED_FROM_CLOSED_CONTENT_MODEL',
  'ITEM_REMOVED_FROM_OPEN_CONTENT_MODEL',
  'ITEM_ADDED_IS_COVERED_BY_PARTIALLY_OPEN_CONTENT_MODEL',
  'ITEM_REMOVED_IS_COVERED_BY_PARTIALLY_OPEN_CONTENT_MODEL',
  'ENUM_ARRAY_EXTENDED',
  'COMBINED_TYPE_EXTENDED',
  'PRODUCT_TYPE_NARROWED',
  'SUM_TYPE_EXTENDED',
  'NOT_TYPE_NARROWED',
];

const LENIENT_EXTRA: readonly DifferenceType[] = [
  'ADDITIONAL_PROPERTIES_NARROWED',
  'ADDITIONAL_PROPERTIES_REMOVED',
  'UNEVALUATED_PROPERTIES_NARROWED',
  'UNEVALUATED_PROPERTIES_REMOVED',
  'REQUIRED_PROPERTY_WITH_DEFAULT_ADDED_TO_OPEN_CONTENT_MODEL',
  'OPTIONAL_PROPERTY_ADDED_TO_OPEN_CONTENT_MODEL',
  'PROPERTY_REMOVED_FROM_OPEN_CONTENT_MODEL',
  'PROPERTY_REMOVED_FROM_CLOSED_CONTENT_MODEL',
  'PROPERTY_ADDED_NOT_COVERED_BY_PARTIALLY_OPEN_CONTENT_MODEL',
  'PROPERTY_REMOVED_NOT_COVERED_BY_PARTIALLY_OPEN_CONTENT_MODEL',
];

/** The difference types each policy accepts as compatible. */
export const COMPATIBLE_CHANGES: Readonly<Record<JsonCompatibilityPolicy, ReadonlySet<DifferenceType>>> = {
  STRICT: new Set(STRICT_LIST),
  LENIENT: new Set([...STRICT_LIST, ...LENIENT_EXTRA]),
};

/**
 * Can data valid under `previous` be read by a consumer built for `candidate`? That is Confluent's
 * backward check for JSON Schema: the differences from previous (original) to candidate (update),
 * minus those the policy allows. A forward check is the same call with the arguments swapped.
 */
export function checkJsonSchemaBackward(
  candidate: LoadedJsonSchema,
  previous: LoadedJsonSchema,
  policy: JsonCompatibilityPolicy = 'STRICT',
): Incompatibility[] {
  const allowed = COMPATIBLE_CHANGES[policy];
  return diffJsonSchemas(previous.root, candidate.root, allowed)
    .filter((d) => !allowed.has(d.type))
    .map(toIncompatibility);
}

function toIncompatibility(d: Difference): Incompatibility {
  const fieldPath = propertyPath(d.path);
  return {
    rule: d.type,
    message: explain(d),
    location: d.path,
    ...(fieldPath ? { fieldPath } : {}),
  };
}

/** `#/properties/a/items/properties/b/maxLength` -> `a[].b` (the data path of the affected property). */
export function propertyPath(path: string): string | undefined {
  const segments = path
    .replace(/^#\/?/, '')
    .split('/')
    .filter((s) => s !== '');
  const names: string[] = [];
  for (let i = 0; i < segments.length; i++) {
    const s = segments[i];
    const next = segments[i + 1];
    if (
      (s === 'properties' || s === 'required' || s === 'dependencies' || s === 'dependentRequired' || s === 'dependentSchemas') &&
      next !== undefined
    ) {
      names.push(next);
      i++;
    } else if (s === 'items' && names.length > 0) {
      names[names.length - 1] += '[]';
      if (next !== undefined && /^\d+$/.test(next)) i++;
    }
  }
  return names.length > 0 ? names.join('.') : undefined;
}

/**
 * A sentence per difference family. The writer schema is the one data was produced with (the previous
 * version for a backward check, the candidate for a forward one), the reader schema the one a consumer
 * validates with.
 */
function explain(d: Difference): string {
  const t = d.type;
  const at = `'${d.path}'`;
  if (
    t === 'TYPE_CHANGED' ||
    t === 'TYPE_NARROWED' ||
    t === 'COMBINED_TYPE_CHANGED' ||
    t === 'COMBINED_TYPE_SUBSCHEMAS_CHANGED' ||
    t === 'ENUM_ARRAY_CHANGED'
  ) {
    return `${t}: the type at ${at} differs between the writer and the reader schema, so written data may not validate for the reader`;
  }
  if (t.endsWith('_ADDED') && !t.includes('PROPERTY') && !t.startsWith('ITEM')) {
    return `${t}: the keyword at ${at} constrains the reader schema but not the writer schema, so written data may not validate`;
  }
  if (t.endsWith('_INCREASED') || t === 'MULTIPLE_OF_EXPANDED')
    return `${t}: the value at ${at} is higher in the reader schema than in the writer schema`;
  if (t.endsWith('_DECREASED')) return `${t}: the value at ${at} is lower in the reader schema than in the writer schema`;
  if (t.endsWith('_CHANGED')) return `${t}: the value at ${at} differs between the writer and the reader schema`;
  if (t.endsWith('_NARROWED'))
    return `${t}: the enum, union or schema at ${at} accepts fewer values in the reader schema than the writer produces`;
  if (t === 'NOT_TYPE_EXTENDED') return `${t}: the 'not' at ${at} excludes more values in the reader schema`;
  if (t.endsWith('_EXTENDED'))
    return `${t}: the schema at ${at} has more alternatives in the reader schema than the writer's, which readers cannot tell apart`;
  switch (t) {
    case 'REQUIRED_PROPERTY_ADDED_TO_OPEN_CONTENT_MODEL':
    case 'REQUIRED_PROPERTY_WITH_DEFAULT_ADDED_TO_OPEN_CONTENT_MODEL':
    case 'OPTIONAL_PROPERTY_ADDED_TO_OPEN_CONTENT_MODEL':
    case 'ITEM_ADDED_TO_OPEN_CONTENT_MODEL':
      return `${t}: the writer schema has an open content model, so written data may already hold ${at} with another shape than the reader schema declares`;
    case 'REQUIRED_PROPERTY_ADDED_TO_UNOPEN_CONTENT_MODEL':
      return `${t}: the reader schema requires ${at}, which written data does not have, and declares no default`;
    case 'PROPERTY_REMOVED_FROM_CLOSED_CONTENT_MODEL':
    case 'ITEM_REMOVED_FROM_CLOSED_CONTENT_MODEL':
      return `${t}: the reader schema has a closed content model without ${at}, which written data may hold`;
    case 'PROPERTY_REMOVED_FROM_OPEN_CONTENT_MODEL':
      return `${t}: ${at} is gone from the reader schema (accepted under STRICT only while it stays open)`;
    case 'PROPERTY_REMOVED_NOT_COVERED_BY_PARTIALLY_OPEN_CONTENT_MODEL':
    case 'ITEM_REMOVED_NOT_COVERED_BY_PARTIALLY_OPEN_CONTENT_MODEL':
      return `${t}: ${at} is gone from the reader schema and its additional/pattern properties do not accept the values written for it`;
    case 'PROPERTY_ADDED_NOT_COVERED_BY_PARTIALLY_OPEN_CONTENT_MODEL':
    case 'ITEM_ADDED_NOT_COVERED_BY_PARTIALLY_OPEN_CONTENT_MODEL':
      return `${t}: the reader schema declares ${at}, but the writer schema's additional/pattern properties allowed values it rejects`;
    case 'ADDITIONAL_PROPERTIES_REMOVED':
    case 'ADDITIONAL_ITEMS_REMOVED':
    case 'UNEVALUATED_PROPERTIES_REMOVED':
    case 'UNEVALUATED_ITEMS_REMOVED':
      return `${t}: the reader schema closes ${at}, so written data with extra properties or items is rejected`;
    case 'UNIQUE_ITEMS_ADDED':
      return `${t}: the reader schema requires unique items at ${at}`;
    case 'SCHEMA_ADDED':
      return `${t}: the reader schema adds a schema at ${at}, so written data may not validate`;
    default:
      return `${t} at ${at}`;
  }
}
