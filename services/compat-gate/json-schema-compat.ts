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
  'ID_CHANGED', 'DESCRIPTION_CHANGED', 'TITLE_CHANGED', 'DEFAULT_CHANGED', 'SCHEMA_REMOVED', 'TYPE_EXTENDED',
  'MAX_LENGTH_INCREASED', 'MAX_LENGTH_REMOVED', 'MIN_LENGTH_DECREASED', 'MIN_LENGTH_REMOVED', 'PATTERN_REMOVED',
  'MAXIMUM_INCREASED', 'MAXIMUM_REMOVED', 'MINIMUM_DECREASED', 'MINIMUM_REMOVED',
  'EXCLUSIVE_MAXIMUM_INCREASED', 'EXCLUSIVE_MAXIMUM_REMOVED', 'EXCLUSIVE_MINIMUM_DECREASED', 'EXCLUSIVE_MINIMUM_REMOVED',
  'MULTIPLE_OF_REDUCED', 'MULTIPLE_OF_REMOVED',
  'REQUIRED_ATTRIBUTE_WITH_DEFAULT_ADDED', 'REQUIRED_ATTRIBUTE_REMOVED',
  'DEPENDENCY_ARRAY_NARROWED', 'DEPENDENCY_ARRAY_REMOVED', 'DEPENDENCY_SCHEMA_REMOVED',
  'MAX_PROPERTIES_INCREASED', 'MAX_PROPERTIES_REMOVED', 'MIN_PROPERTIES_DECREASED', 'MIN_PROPERTIES_REMOVED',
  'ADDITIONAL_PROPERTIES_ADDED', 'ADDITIONAL_PROPERTIES_EXTENDED',
  'UNEVALUATED_PROPERTIES_ADDED', 'UNEVALUATED_PROPERTIES_EXTENDED',
  'PROPERTY_WITH_EMPTY_SCHEMA_ADDED_TO_OPEN_CONTENT_MODEL',
  'REQUIRED_PROPERTY_WITH_DEFAULT_ADDED_TO_UNOPEN_CONTENT_MODEL', 'OPTIONAL_PROPERTY_ADDED_TO_UNOPEN_CONTENT_MODEL',
  'PROPERTY_WITH_FALSE_REMOVED_FROM_CLOSED_CONTENT_MODEL', 'PROPERTY_REMOVED_FROM_OPEN_CONTENT_MODEL',
  'PROPERTY_ADDED_IS_COVERED_BY_PARTIALLY_OPEN_CONTENT_MODEL', 'PROPERTY_REMOVED_IS_COVERED_BY_PARTIALLY_OPEN_CONTENT_MODEL',
  'MAX_ITEMS_INCREASED', 'MAX_ITEMS_REMOVED', 'MIN_ITEMS_DECREASED', 'MIN_ITEMS_REMOVED',
  'MAX_CONTAINS_INCREASED', 'MAX_CONTAINS_REMOVED', 'MIN_CONTAINS_DECREASED', 'MIN_CONTAINS_REMOVED',
  'UNIQUE_ITEMS_REMOVED', 'ADDITIONAL_ITEMS_ADDED', 'ADDITIONAL_ITEMS_EXTENDED',
  'UNEVALUATED_ITEMS_ADDED', 'UNEVALUATED_ITEMS_EXTENDED',
  'ITEM_WITH_EMPTY_SCHEMA_ADDED_TO_OPEN_CONTENT_MODEL', 'ITEM_ADDED_TO_CLOSED_CONTENT_MODEL',
  'ITEM_WITH_FALSE_REMOVED_FROM_CLOSED_CONTENT_MODEL', 'ITEM_REMOVED_FROM_OPEN_CONTENT_MODEL',
  'ITEM_ADDED_IS_COVERED_BY_PARTIALLY_OPEN_CONTENT_MODEL', 'ITEM_REMOVED_IS_COVERED_BY_PARTIALLY_OPEN_CONTENT_MODEL',
  'ENUM_ARRAY_EXTENDED', 'COMBINED_TYPE_EXTENDED', 'PRODUCT_TYPE_NARROWED', 'SUM_TYPE_EXTENDED', 'NOT_TYPE_NARROWED',
];

const LENIENT_EXTRA: readonly DifferenceType[] = [
  'ADDITIONAL_PROPERTIES_NARROWED', 'ADDITIONAL_PROPERTIES_REMOVED',
  'UNEVALUATED_PROPERTIES_NARROWED', 'UNEVALUATED_PROPERTIES_REMOVED',
  'REQUIRED_PROPERTY_WITH_DEFAULT_ADDED_TO_OPEN_CONTENT_MODEL', 'OPTIONAL_PROPERTY_ADDED_TO_OPEN_CONTENT_MODEL',
  'PROPERTY_REMOVED_FROM_OPEN_CONTENT_MODEL', 'PROPERTY_REMOVED_FROM_CLOSED_CONTENT_MODEL',
  'PROPERTY_ADDED_NOT_COVERED_BY_PARTIALLY_OPEN_CONTENT_MODEL', 'PROPERTY_REMOVED_NOT_COVERED_BY_PARTIALLY_OPEN_CONTENT_MODEL',
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
export function checkJsonSchemaBackward(candidate: LoadedJsonSchema, previous: LoadedJsonSchema, policy: JsonCompatibilityPolicy = 'STRICT'): Incompatibility[] {
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
  const segments = path.replace(/^#\/?/, '').split('/').filter((s) => s !== '');
  const names: string[] = [];
  for (let i = 0; i < segments.length; i++) {
    const s = segments[i];
    const next = segments[i + 1];
    if ((s === 'properties' || s === 'required' || s === 'dependencies') && next !== undefined) {
      names.push(next);
      i++;
    } else if (s === 'items' && names.length > 0) {
      names[names.length - 1] += '[]';
      if (next !== undefined && /^\d+$/.test(next)) i++;
    }
  }
  return names.length > 0 ? names.join('.') : undefined;
}

/** A sentence per difference family; old = the schema data was written with, new = the reader's. */
function explain(d: Difference): string {
  const t = d.type;
  const at = `'${d.path}'`;
  if (t === 'TYPE_CHANGED' || t === 'TYPE_NARROWED' || t === 'COMBINED_TYPE_CHANGED' || t === 'COMBINED_TYPE_SUBSCHEMAS_CHANGED' || t === 'ENUM_ARRAY_CHANGED') {
    return `${t}: the type at ${at} differs between the old and the new schema, so old data may not validate`;
  }
  if (t.endsWith('_ADDED') && !t.includes('PROPERTY') && !t.startsWith('ITEM')) {
    return `${t}: the keyword at ${at} is in the new schema but not the old one, so old data may not validate`;
  }
  if (t.endsWith('_INCREASED') || t === 'MULTIPLE_OF_EXPANDED') return `${t}: the value at ${at} is higher in the new schema than in the old one`;
  if (t.endsWith('_DECREASED')) return `${t}: the value at ${at} is lower in the new schema than in the old one`;
  if (t.endsWith('_CHANGED')) return `${t}: the value at ${at} differs between the old and the new schema`;
  if (t.endsWith('_NARROWED')) return `${t}: the enum, union or schema at ${at} accepts fewer values in the new schema`;
  if (t.endsWith('_EXTENDED') && t !== 'NOT_TYPE_EXTENDED') return `${t}: the schema at ${at} has more alternatives in the new schema than readers accept`;
  if (t === 'NOT_TYPE_EXTENDED') return `${t}: the 'not' at ${at} excludes more values in the new schema`;
  switch (t) {
    case 'REQUIRED_PROPERTY_ADDED_TO_OPEN_CONTENT_MODEL':
    case 'REQUIRED_PROPERTY_WITH_DEFAULT_ADDED_TO_OPEN_CONTENT_MODEL':
    case 'OPTIONAL_PROPERTY_ADDED_TO_OPEN_CONTENT_MODEL':
    case 'ITEM_ADDED_TO_OPEN_CONTENT_MODEL':
      return `${t}: the old schema has an open content model, so old data may already hold ${at} with another shape`;
    case 'REQUIRED_PROPERTY_ADDED_TO_UNOPEN_CONTENT_MODEL':
      return `${t}: the new schema requires ${at}, which old data does not have, and it has no default`;
    case 'PROPERTY_REMOVED_FROM_CLOSED_CONTENT_MODEL':
    case 'ITEM_REMOVED_FROM_CLOSED_CONTENT_MODEL':
      return `${t}: the new schema has a closed content model and no longer allows ${at}, which old data may hold`;
    case 'PROPERTY_REMOVED_FROM_OPEN_CONTENT_MODEL':
      return `${t}: ${at} was removed; under STRICT this is allowed only when the new schema stays open`;
    case 'PROPERTY_REMOVED_NOT_COVERED_BY_PARTIALLY_OPEN_CONTENT_MODEL':
    case 'ITEM_REMOVED_NOT_COVERED_BY_PARTIALLY_OPEN_CONTENT_MODEL':
      return `${t}: ${at} was removed and the new schema's additional/pattern properties do not accept its old values`;
    case 'PROPERTY_ADDED_NOT_COVERED_BY_PARTIALLY_OPEN_CONTENT_MODEL':
    case 'ITEM_ADDED_NOT_COVERED_BY_PARTIALLY_OPEN_CONTENT_MODEL':
      return `${t}: ${at} was added, but the old schema's additional/pattern properties allowed values the new one rejects`;
    case 'ADDITIONAL_PROPERTIES_REMOVED':
    case 'ADDITIONAL_ITEMS_REMOVED':
    case 'UNEVALUATED_PROPERTIES_REMOVED':
    case 'UNEVALUATED_ITEMS_REMOVED':
      return `${t}: the new schema closes ${at}, so old data with extra properties or items is rejected`;
    case 'UNIQUE_ITEMS_ADDED':
      return `${t}: the new schema requires unique items at ${at}`;
    case 'SCHEMA_ADDED':
      return `${t}: a schema was added at ${at}, so old data may not validate`;
    default:
      return `${t} at ${at}`;
  }
}
