import { isDeepStrictEqual } from 'node:util';
import { decimalEquals, isMultipleOf } from './decimal.js';
import { maximumMatching } from './max-matching.js';
import type { ArrayNode, CombinedNode, JsonSchemaNode, NumberNode, ObjectNode, StringNode } from './json-schema-model.js';

/**
 * The differences between two JSON Schemas, in Confluent Schema Registry's vocabulary. Whether a
 * change is compatible is decided afterwards from an allow-list of difference types
 * (json-schema-compat.ts); this module only finds and names the differences, each with the path in
 * the schema where it occurs (`#/properties/foo/maxLength`).
 *
 * "original" is the schema data was written with and "update" the one it is read with, so a
 * BACKWARD check diffs (previous -> new) and a FORWARD check (new -> previous).
 */

export const DIFFERENCE_TYPES = [
  'ID_CHANGED',
  'DESCRIPTION_CHANGED',
  'TITLE_CHANGED',
  'DEFAULT_CHANGED',
  'SCHEMA_ADDED',
  'SCHEMA_REMOVED',
  'TYPE_EXTENDED',
  'TYPE_NARROWED',
  'TYPE_CHANGED',
  'MAX_LENGTH_ADDED',
  'MAX_LENGTH_REMOVED',
  'MAX_LENGTH_INCREASED',
  'MAX_LENGTH_DECREASED',
  'MIN_LENGTH_ADDED',
  'MIN_LENGTH_REMOVED',
  'MIN_LENGTH_INCREASED',
  'MIN_LENGTH_DECREASED',
  'PATTERN_ADDED',
  'PATTERN_REMOVED',
  'PATTERN_CHANGED',
  'MAXIMUM_ADDED',
  'MAXIMUM_REMOVED',
  'MAXIMUM_INCREASED',
  'MAXIMUM_DECREASED',
  'MINIMUM_ADDED',
  'MINIMUM_REMOVED',
  'MINIMUM_INCREASED',
  'MINIMUM_DECREASED',
  'EXCLUSIVE_MAXIMUM_ADDED',
  'EXCLUSIVE_MAXIMUM_REMOVED',
  'EXCLUSIVE_MAXIMUM_INCREASED',
  'EXCLUSIVE_MAXIMUM_DECREASED',
  'EXCLUSIVE_MINIMUM_ADDED',
  'EXCLUSIVE_MINIMUM_REMOVED',
  'EXCLUSIVE_MINIMUM_INCREASED',
  'EXCLUSIVE_MINIMUM_DECREASED',
  'MULTIPLE_OF_ADDED',
  'MULTIPLE_OF_REMOVED',
  'MULTIPLE_OF_EXPANDED',
  'MULTIPLE_OF_REDUCED',
  'MULTIPLE_OF_CHANGED',
  'REQUIRED_ATTRIBUTE_ADDED',
  'REQUIRED_ATTRIBUTE_WITH_DEFAULT_ADDED',
  'REQUIRED_ATTRIBUTE_REMOVED',
  'MAX_PROPERTIES_ADDED',
  'MAX_PROPERTIES_REMOVED',
  'MAX_PROPERTIES_INCREASED',
  'MAX_PROPERTIES_DECREASED',
  'MIN_PROPERTIES_ADDED',
  'MIN_PROPERTIES_REMOVED',
  'MIN_PROPERTIES_INCREASED',
  'MIN_PROPERTIES_DECREASED',
  'ADDITIONAL_PROPERTIES_ADDED',
  'ADDITIONAL_PROPERTIES_REMOVED',
  'ADDITIONAL_PROPERTIES_EXTENDED',
  'ADDITIONAL_PROPERTIES_NARROWED',
  'DEPENDENCY_ARRAY_ADDED',
  'DEPENDENCY_ARRAY_REMOVED',
  'DEPENDENCY_ARRAY_EXTENDED',
  'DEPENDENCY_ARRAY_NARROWED',
  'DEPENDENCY_ARRAY_CHANGED',
  'DEPENDENCY_SCHEMA_ADDED',
  'DEPENDENCY_SCHEMA_REMOVED',
  'REQUIRED_PROPERTY_ADDED_TO_OPEN_CONTENT_MODEL',
  'REQUIRED_PROPERTY_WITH_DEFAULT_ADDED_TO_OPEN_CONTENT_MODEL',
  'OPTIONAL_PROPERTY_ADDED_TO_OPEN_CONTENT_MODEL',
  'PROPERTY_WITH_EMPTY_SCHEMA_ADDED_TO_OPEN_CONTENT_MODEL',
  'REQUIRED_PROPERTY_ADDED_TO_UNOPEN_CONTENT_MODEL',
  'REQUIRED_PROPERTY_WITH_DEFAULT_ADDED_TO_UNOPEN_CONTENT_MODEL',
  'OPTIONAL_PROPERTY_ADDED_TO_UNOPEN_CONTENT_MODEL',
  'PROPERTY_REMOVED_FROM_OPEN_CONTENT_MODEL',
  'PROPERTY_WITH_FALSE_REMOVED_FROM_CLOSED_CONTENT_MODEL',
  'PROPERTY_REMOVED_FROM_CLOSED_CONTENT_MODEL',
  'PROPERTY_REMOVED_IS_COVERED_BY_PARTIALLY_OPEN_CONTENT_MODEL',
  'PROPERTY_REMOVED_NOT_COVERED_BY_PARTIALLY_OPEN_CONTENT_MODEL',
  'PROPERTY_ADDED_IS_COVERED_BY_PARTIALLY_OPEN_CONTENT_MODEL',
  'PROPERTY_ADDED_NOT_COVERED_BY_PARTIALLY_OPEN_CONTENT_MODEL',
  'UNEVALUATED_PROPERTIES_ADDED',
  'UNEVALUATED_PROPERTIES_REMOVED',
  'UNEVALUATED_PROPERTIES_EXTENDED',
  'UNEVALUATED_PROPERTIES_NARROWED',
  'MAX_ITEMS_ADDED',
  'MAX_ITEMS_REMOVED',
  'MAX_ITEMS_INCREASED',
  'MAX_ITEMS_DECREASED',
  'MIN_ITEMS_ADDED',
  'MIN_ITEMS_REMOVED',
  'MIN_ITEMS_INCREASED',
  'MIN_ITEMS_DECREASED',
  'MAX_CONTAINS_ADDED',
  'MAX_CONTAINS_REMOVED',
  'MAX_CONTAINS_INCREASED',
  'MAX_CONTAINS_DECREASED',
  'MIN_CONTAINS_ADDED',
  'MIN_CONTAINS_REMOVED',
  'MIN_CONTAINS_INCREASED',
  'MIN_CONTAINS_DECREASED',
  'CONTAINS_ADDED',
  'CONTAINS_REMOVED',
  'UNIQUE_ITEMS_ADDED',
  'UNIQUE_ITEMS_REMOVED',
  'ADDITIONAL_ITEMS_ADDED',
  'ADDITIONAL_ITEMS_REMOVED',
  'ADDITIONAL_ITEMS_EXTENDED',
  'ADDITIONAL_ITEMS_NARROWED',
  'UNEVALUATED_ITEMS_ADDED',
  'UNEVALUATED_ITEMS_REMOVED',
  'UNEVALUATED_ITEMS_EXTENDED',
  'UNEVALUATED_ITEMS_NARROWED',
  'ITEM_ADDED_TO_OPEN_CONTENT_MODEL',
  'ITEM_WITH_EMPTY_SCHEMA_ADDED_TO_OPEN_CONTENT_MODEL',
  'ITEM_ADDED_TO_CLOSED_CONTENT_MODEL',
  'ITEM_REMOVED_FROM_OPEN_CONTENT_MODEL',
  'ITEM_WITH_FALSE_REMOVED_FROM_CLOSED_CONTENT_MODEL',
  'ITEM_REMOVED_FROM_CLOSED_CONTENT_MODEL',
  'ITEM_REMOVED_IS_COVERED_BY_PARTIALLY_OPEN_CONTENT_MODEL',
  'ITEM_REMOVED_NOT_COVERED_BY_PARTIALLY_OPEN_CONTENT_MODEL',
  'ITEM_ADDED_IS_COVERED_BY_PARTIALLY_OPEN_CONTENT_MODEL',
  'ITEM_ADDED_NOT_COVERED_BY_PARTIALLY_OPEN_CONTENT_MODEL',
  'ENUM_ARRAY_EXTENDED',
  'ENUM_ARRAY_NARROWED',
  'ENUM_ARRAY_CHANGED',
  'COMBINED_TYPE_EXTENDED',
  'COMBINED_TYPE_CHANGED',
  'PRODUCT_TYPE_EXTENDED',
  'PRODUCT_TYPE_NARROWED',
  'SUM_TYPE_EXTENDED',
  'SUM_TYPE_NARROWED',
  'COMBINED_TYPE_SUBSCHEMAS_CHANGED',
  'NOT_TYPE_EXTENDED',
  'NOT_TYPE_NARROWED',
] as const;

/** One of Confluent's JSON Schema difference types. */
export type DifferenceType = (typeof DIFFERENCE_TYPES)[number];

/** A difference and where it is, as Confluent prints it: `#/` for the root, `#/properties/foo` below. */
export interface Difference {
  type: DifferenceType;
  path: string;
}

/** A difference located relative to the pair of schemas being compared. */
interface Rel {
  type: DifferenceType;
  segments: string[];
}

type Pair = readonly [JsonSchemaNode, JsonSchemaNode];

function rel(type: DifferenceType, ...segments: string[]): Rel {
  return { type, segments };
}

function under(prefix: string[], found: Rel[]): Rel[] {
  if (prefix.length === 0 || found.length === 0) return found;
  return found.map((d) => ({ type: d.type, segments: [...prefix, ...d.segments] }));
}

/** Follows references to the schema they name (a chain of refs included). */
function deref(node: JsonSchemaNode): JsonSchemaNode {
  let current = node;
  for (let hops = 0; current.kind === 'ref'; hops++) {
    if (hops > 100) throw new Error(`reference cycle without a schema at ${current.ref}`);
    current = current.target();
  }
  return current;
}

/** "Accepts anything": `{}` or `true`. */
function isEmptyLike(node: JsonSchemaNode): boolean {
  return node.kind === 'empty' || node.kind === 'true';
}

/**
 * Runs one comparison. Pairs already compared are reused (oneOf/anyOf compare every subschema with
 * every other, which explodes on schemas whose definitions refer to one another), and a pair met
 * again while it is still being compared is a recursive cycle, assumed compatible. Because that
 * assumption may be cached into sibling results, `diffJsonSchemas` repeats the comparison, feeding
 * back the pairs found incompatible, until that set stops growing.
 */
class Comparison {
  private readonly memo = new Map<JsonSchemaNode, Map<JsonSchemaNode, Rel[]>>();
  private readonly inProgress = new Map<JsonSchemaNode, Set<JsonSchemaNode>>();
  usedAssumption = false;

  constructor(
    private readonly allowed: ReadonlySet<DifferenceType>,
    private readonly knownIncompatible: ReadonlyMap<JsonSchemaNode, ReadonlyMap<JsonSchemaNode, Rel[]>>,
  ) {}

  compatible(found: readonly Rel[]): boolean {
    return found.every((d) => this.allowed.has(d.type));
  }

  /** Pairs whose differences include a change outside the allow-list. */
  incompatiblePairs(): Map<JsonSchemaNode, Map<JsonSchemaNode, Rel[]>> {
    const out = new Map<JsonSchemaNode, Map<JsonSchemaNode, Rel[]>>();
    for (const [o, row] of this.memo) {
      for (const [u, found] of row) {
        if (this.compatible(found)) continue;
        let r = out.get(o);
        if (!r) out.set(o, (r = new Map()));
        r.set(u, found);
      }
    }
    return out;
  }

  compare(original: JsonSchemaNode | undefined, update: JsonSchemaNode | undefined): Rel[] {
    if (!original && !update) return [];
    if (!original) return [rel('SCHEMA_ADDED')];
    if (!update) return [rel('SCHEMA_REMOVED')];
    const o = deref(original);
    const u = deref(update);
    const cached = this.memo.get(o)?.get(u);
    if (cached) return cached;
    let active = this.inProgress.get(o);
    if (!active) this.inProgress.set(o, (active = new Set()));
    if (active.has(u)) {
      const known = this.knownIncompatible.get(o)?.get(u);
      if (known) return known;
      this.usedAssumption = true;
      return [];
    }
    active.add(u);
    try {
      const found = this.compareTypes([o, u]);
      let row = this.memo.get(o);
      if (!row) this.memo.set(o, (row = new Map()));
      row.set(u, found);
      return found;
    } finally {
      active.delete(u);
    }
  }

  private compareTypes([o, u]: Pair): Rel[] {
    // A combined schema on one side only: the change is fine if the single side matches a branch
    // that keeps every old value valid (a new anyOf/oneOf branch, or an old allOf conjunct).
    if (o.kind !== 'combined' && u.kind === 'combined') {
      if (u.subschemas.length === 1) {
        const found = this.compare(o, u.subschemas[0]);
        if (this.compatible(found)) return found;
      } else if (u.criterion === 'anyOf' || u.criterion === 'oneOf') {
        for (const sub of u.subschemas) {
          const found = this.compare(o, sub);
          if (this.compatible(found)) return [...found, rel('SUM_TYPE_EXTENDED')];
        }
      } else if (u.synthetic && u.subschemas.some((sub) => sub.kind === 'ref')) {
        // 2019-09 on, `$ref` with sibling keywords is a conjunction: old data must satisfy every
        // conjunct, so each is compared with the old schema (only these drafts build such a node).
        return u.subschemas.flatMap((sub, i) => under([`allOf/${i}`], this.compare(o, sub)));
      }
    } else if (o.kind === 'combined' && u.kind !== 'combined') {
      if (o.subschemas.length === 1) {
        const found = this.compare(o.subschemas[0], u);
        if (this.compatible(found)) return found;
      } else if (o.criterion === 'allOf') {
        for (const sub of o.subschemas) {
          const found = this.compare(sub, u);
          if (this.compatible(found)) return [...found, rel('PRODUCT_TYPE_NARROWED')];
        }
      }
    }

    if (o.kind !== u.kind) {
      // Nothing was valid before, or everything is valid now: no reader can break.
      if (o.kind === 'false' || u.kind === 'empty' || u.kind === 'true') return [];
      // Kafka Connect marks its decimal/bytes encodings so a change between them stays compatible.
      if (o.connectType === 'bytes' && u.connectType === 'bytes') return [];
      return [rel('TYPE_CHANGED')];
    }

    const out: Rel[] = [];
    if (o.id !== u.id) out.push(rel('ID_CHANGED'));
    if (o.title !== u.title) out.push(rel('TITLE_CHANGED'));
    if (o.description !== u.description) out.push(rel('DESCRIPTION_CHANGED'));
    if (o.hasDefault !== u.hasDefault || !isDeepStrictEqual(o.default, u.default)) out.push(rel('DEFAULT_CHANGED'));

    switch (o.kind) {
      case 'string':
        out.push(...compareString(o, u as StringNode));
        break;
      case 'number':
        out.push(...compareNumber(o, u as NumberNode));
        break;
      case 'const':
        if (!isDeepStrictEqual(o.value, (u as typeof o).value)) out.push(rel('ENUM_ARRAY_CHANGED', 'const'));
        break;
      case 'enum':
        out.push(...compareEnum(o.values, (u as typeof o).values));
        break;
      case 'combined':
        out.push(...this.compareCombined(o, u as CombinedNode));
        break;
      case 'not': {
        // `not` flips the direction: the new excluded set must fit inside the old one.
        const found = this.compare((u as typeof o).schema, o.schema);
        out.push(rel(this.compatible(found) ? 'NOT_TYPE_NARROWED' : 'NOT_TYPE_EXTENDED', 'not'));
        break;
      }
      case 'object':
        out.push(...this.compareObject(o, u as ObjectNode));
        break;
      case 'array':
        out.push(...this.compareArray(o, u as ArrayNode));
        break;
      default:
        break;
    }
    return out;
  }

  private compareCombined(o: CombinedNode, u: CombinedNode): Rel[] {
    const out: Rel[] = [];
    if (o.criterion !== u.criterion) {
      const singleton = (c: CombinedNode): boolean => c.subschemas.length === 1;
      const widened =
        u.criterion === 'anyOf' ||
        (singleton(o) && singleton(u)) ||
        (singleton(o) && u.criterion === 'oneOf') ||
        (singleton(u) && o.criterion === 'allOf');
      if (!widened) return [rel('COMBINED_TYPE_CHANGED')];
      out.push(rel('COMBINED_TYPE_EXTENDED'));
    }
    // Identical subschemas listed twice count once.
    const left = distinct(o.subschemas);
    const right = distinct(u.subschemas);
    if (left.length < right.length) out.push(rel(u.criterion === 'allOf' ? 'PRODUCT_TYPE_EXTENDED' : 'SUM_TYPE_EXTENDED'));
    else if (left.length > right.length) out.push(rel(o.criterion === 'allOf' ? 'PRODUCT_TYPE_NARROWED' : 'SUM_TYPE_NARROWED'));

    const edgeDiffs = new Map<string, Rel[]>();
    const edges = left.map((ls, i) => {
      const ok: number[] = [];
      right.forEach((rs, j) => {
        const found = this.compare(ls, rs);
        if (this.compatible(found)) {
          ok.push(j);
          edgeDiffs.set(`${i}:${j}`, found);
        }
      });
      return ok;
    });
    const match = maximumMatching(left.length, right.length, edges);
    let matched = 0;
    match.forEach((j, i) => {
      if (j < 0) return;
      matched++;
      out.push(...under([`${o.criterion}/${i}`], edgeDiffs.get(`${i}:${j}`) ?? []));
    });
    // Some subschema of the smaller side found no compatible partner.
    if (matched < Math.min(left.length, right.length)) out.push(rel('COMBINED_TYPE_SUBSCHEMAS_CHANGED'));
    return out;
  }

  private compareObject(o: ObjectNode, u: ObjectNode): Rel[] {
    const out: Rel[] = [];
    for (const key of o.properties.keys()) {
      if (!u.properties.has(key)) continue;
      const wasRequired = o.required.includes(key);
      const isRequired = u.required.includes(key);
      if (wasRequired && !isRequired) out.push(rel('REQUIRED_ATTRIBUTE_REMOVED', 'required', key));
      else if (!wasRequired && isRequired) {
        out.push(
          rel(u.properties.get(key)?.hasDefault ? 'REQUIRED_ATTRIBUTE_WITH_DEFAULT_ADDED' : 'REQUIRED_ATTRIBUTE_ADDED', 'required', key),
        );
      }
    }

    for (const key of unionKeys(o.properties, u.properties)) {
      const at = ['properties', key];
      const before = o.properties.get(key);
      const after = u.properties.get(key);
      if (before && !after) {
        // Removing a property is safe only if the new schema still accepts whatever it held.
        if (isOpenObject(u)) {
          out.push(rel('PROPERTY_REMOVED_FROM_OPEN_CONTENT_MODEL', ...at));
          continue;
        }
        const partial = partialSchemaFor(u, key);
        if (partial) {
          const found = this.compare(before, partial);
          out.push(...under(at, found));
          out.push(
            rel(
              this.compatible(found)
                ? 'PROPERTY_REMOVED_IS_COVERED_BY_PARTIALLY_OPEN_CONTENT_MODEL'
                : 'PROPERTY_REMOVED_NOT_COVERED_BY_PARTIALLY_OPEN_CONTENT_MODEL',
              ...at,
            ),
          );
        } else {
          out.push(
            rel(
              before.kind === 'false'
                ? 'PROPERTY_WITH_FALSE_REMOVED_FROM_CLOSED_CONTENT_MODEL'
                : 'PROPERTY_REMOVED_FROM_CLOSED_CONTENT_MODEL',
              ...at,
            ),
          );
        }
      } else if (!before && after) {
        // Adding a property is safe only if the old schema could not have held it with another shape.
        const required = u.required.includes(key);
        if (isOpenObject(o)) {
          if (isEmptyLike(after)) out.push(rel('PROPERTY_WITH_EMPTY_SCHEMA_ADDED_TO_OPEN_CONTENT_MODEL', ...at));
          else if (required)
            out.push(
              rel(
                after.hasDefault
                  ? 'REQUIRED_PROPERTY_WITH_DEFAULT_ADDED_TO_OPEN_CONTENT_MODEL'
                  : 'REQUIRED_PROPERTY_ADDED_TO_OPEN_CONTENT_MODEL',
                ...at,
              ),
            );
          else out.push(rel('OPTIONAL_PROPERTY_ADDED_TO_OPEN_CONTENT_MODEL', ...at));
          continue;
        }
        const partial = partialSchemaFor(o, key);
        if (partial) {
          const found = this.compare(partial, after);
          out.push(...under(at, found));
          out.push(
            rel(
              this.compatible(found)
                ? 'PROPERTY_ADDED_IS_COVERED_BY_PARTIALLY_OPEN_CONTENT_MODEL'
                : 'PROPERTY_ADDED_NOT_COVERED_BY_PARTIALLY_OPEN_CONTENT_MODEL',
              ...at,
            ),
          );
        }
        if (required)
          out.push(
            rel(
              after.hasDefault
                ? 'REQUIRED_PROPERTY_WITH_DEFAULT_ADDED_TO_UNOPEN_CONTENT_MODEL'
                : 'REQUIRED_PROPERTY_ADDED_TO_UNOPEN_CONTENT_MODEL',
              ...at,
            ),
          );
        else out.push(rel('OPTIONAL_PROPERTY_ADDED_TO_UNOPEN_CONTENT_MODEL', ...at));
      } else if (before && after) {
        out.push(...under(at, this.compare(before, after)));
      }
    }

    for (const key of unionKeys(o.propertyDependencies, u.propertyDependencies)) {
      const before = o.propertyDependencies.get(key);
      const after = u.propertyDependencies.get(key);
      // Confluent's path for dependencies of every draft (dependentRequired/dependentSchemas too).
      const at = ['dependencies', key];
      if (!after) out.push(rel('DEPENDENCY_ARRAY_REMOVED', ...at));
      else if (!before) out.push(rel('DEPENDENCY_ARRAY_ADDED', ...at));
      else {
        const b = new Set(before);
        const a = new Set(after);
        const sameSet = b.size === a.size && [...b].every((x) => a.has(x));
        if (!sameSet) {
          if ([...b].every((x) => a.has(x))) out.push(rel('DEPENDENCY_ARRAY_EXTENDED', ...at));
          else if ([...a].every((x) => b.has(x))) out.push(rel('DEPENDENCY_ARRAY_NARROWED', ...at));
          else out.push(rel('DEPENDENCY_ARRAY_CHANGED', ...at));
        }
      }
    }
    for (const key of unionKeys(o.schemaDependencies, u.schemaDependencies)) {
      const before = o.schemaDependencies.get(key);
      const after = u.schemaDependencies.get(key);
      // Confluent's path for dependencies of every draft (dependentRequired/dependentSchemas too).
      const at = ['dependencies', key];
      if (!after) out.push(rel('DEPENDENCY_SCHEMA_REMOVED', ...at));
      else if (!before) out.push(rel('DEPENDENCY_SCHEMA_ADDED', ...at));
      else out.push(...under(at, this.compare(before, after)));
    }

    if (o.permitsAdditionalProperties !== u.permitsAdditionalProperties) {
      out.push(
        rel(u.permitsAdditionalProperties ? 'ADDITIONAL_PROPERTIES_ADDED' : 'ADDITIONAL_PROPERTIES_REMOVED', 'additionalProperties'),
      );
    } else if (!o.additionalPropertiesSchema && u.additionalPropertiesSchema) {
      out.push(rel('ADDITIONAL_PROPERTIES_NARROWED', 'additionalProperties'));
    } else if (o.additionalPropertiesSchema && !u.additionalPropertiesSchema) {
      out.push(rel('ADDITIONAL_PROPERTIES_EXTENDED', 'additionalProperties'));
    } else {
      out.push(...under(['additionalProperties'], this.compare(o.additionalPropertiesSchema, u.additionalPropertiesSchema)));
    }

    out.push(
      ...this.compareUnevaluated(o.unevaluatedProperties, u.unevaluatedProperties, 'unevaluatedProperties', {
        added: 'UNEVALUATED_PROPERTIES_ADDED',
        removed: 'UNEVALUATED_PROPERTIES_REMOVED',
        extended: 'UNEVALUATED_PROPERTIES_EXTENDED',
        narrowed: 'UNEVALUATED_PROPERTIES_NARROWED',
      }),
    );

    out.push(...compareLimit(o.maxProperties, u.maxProperties, 'maxProperties', 'MAX_PROPERTIES'));
    out.push(...compareLimit(o.minProperties, u.minProperties, 'minProperties', 'MIN_PROPERTIES'));
    return out;
  }

  private compareUnevaluated(
    before: JsonSchemaNode | undefined,
    after: JsonSchemaNode | undefined,
    keyword: string,
    t: { added: DifferenceType; removed: DifferenceType; extended: DifferenceType; narrowed: DifferenceType },
  ): Rel[] {
    if (!before && !after) return [];
    if (!before) return [rel(after?.kind === 'false' ? t.removed : t.narrowed, keyword)];
    if (!after) return [rel(before.kind === 'false' ? t.added : t.extended, keyword)];
    if (before.kind === 'false' && after.kind !== 'false') return [rel(t.added, keyword)];
    if (before.kind !== 'false' && after.kind === 'false') return [rel(t.removed, keyword)];
    if (isEmptyLike(before) && !isEmptyLike(after)) return [rel(t.narrowed, keyword)];
    if (!isEmptyLike(before) && isEmptyLike(after)) return [rel(t.extended, keyword)];
    return under([keyword], this.compare(before, after));
  }

  private compareArray(o: ArrayNode, u: ArrayNode): Rel[] {
    const out: Rel[] = [];
    out.push(...under(['items'], this.compare(o.allItems, u.allItems)));

    const before = o.itemSchemas ?? [];
    const after = u.itemSchemas ?? [];
    const common = Math.min(before.length, after.length);
    for (let i = 0; i < common; i++) out.push(...under([`items/${i}`], this.compare(before[i], after[i])));
    for (let i = common; i < before.length; i++) {
      const at = `items/${i}`;
      const item = before[i] as JsonSchemaNode;
      if (isOpenArray(u)) {
        out.push(rel('ITEM_REMOVED_FROM_OPEN_CONTENT_MODEL', at));
        continue;
      }
      const partial = partialItemSchema(u);
      if (partial) {
        const found = this.compare(item, partial);
        out.push(...under([at], found));
        out.push(
          rel(
            this.compatible(found)
              ? 'ITEM_REMOVED_IS_COVERED_BY_PARTIALLY_OPEN_CONTENT_MODEL'
              : 'ITEM_REMOVED_NOT_COVERED_BY_PARTIALLY_OPEN_CONTENT_MODEL',
            at,
          ),
        );
      } else {
        out.push(
          rel(item.kind === 'false' ? 'ITEM_WITH_FALSE_REMOVED_FROM_CLOSED_CONTENT_MODEL' : 'ITEM_REMOVED_FROM_CLOSED_CONTENT_MODEL', at),
        );
      }
    }
    for (let i = common; i < after.length; i++) {
      const at = `items/${i}`;
      const item = after[i] as JsonSchemaNode;
      if (isOpenArray(o)) {
        out.push(rel(isEmptyLike(item) ? 'ITEM_WITH_EMPTY_SCHEMA_ADDED_TO_OPEN_CONTENT_MODEL' : 'ITEM_ADDED_TO_OPEN_CONTENT_MODEL', at));
        continue;
      }
      const partial = partialItemSchema(o);
      if (partial) {
        const found = this.compare(partial, item);
        out.push(...under([at], found));
        out.push(
          rel(
            this.compatible(found)
              ? 'ITEM_ADDED_IS_COVERED_BY_PARTIALLY_OPEN_CONTENT_MODEL'
              : 'ITEM_ADDED_NOT_COVERED_BY_PARTIALLY_OPEN_CONTENT_MODEL',
            at,
          ),
        );
      } else {
        out.push(rel('ITEM_ADDED_TO_CLOSED_CONTENT_MODEL', at));
      }
    }

    if (o.permitsAdditionalItems !== u.permitsAdditionalItems) {
      out.push(rel(o.permitsAdditionalItems ? 'ADDITIONAL_ITEMS_REMOVED' : 'ADDITIONAL_ITEMS_ADDED', 'additionalItems'));
    } else if (!o.additionalItemsSchema && u.additionalItemsSchema) {
      out.push(rel('ADDITIONAL_ITEMS_NARROWED', 'additionalItems'));
    } else if (o.additionalItemsSchema && !u.additionalItemsSchema) {
      out.push(rel('ADDITIONAL_ITEMS_EXTENDED', 'additionalItems'));
    } else {
      out.push(...under(['additionalItems'], this.compare(o.additionalItemsSchema, u.additionalItemsSchema)));
    }

    out.push(
      ...this.compareUnevaluated(o.unevaluatedItems, u.unevaluatedItems, 'unevaluatedItems', {
        added: 'UNEVALUATED_ITEMS_ADDED',
        removed: 'UNEVALUATED_ITEMS_REMOVED',
        extended: 'UNEVALUATED_ITEMS_EXTENDED',
        narrowed: 'UNEVALUATED_ITEMS_NARROWED',
      }),
    );

    out.push(...compareLimit(o.maxItems, u.maxItems, 'maxItems', 'MAX_ITEMS'));
    out.push(...compareLimit(o.minItems, u.minItems, 'minItems', 'MIN_ITEMS'));
    if (o.uniqueItems !== u.uniqueItems) out.push(rel(o.uniqueItems ? 'UNIQUE_ITEMS_REMOVED' : 'UNIQUE_ITEMS_ADDED', 'uniqueItems'));
    out.push(...this.compareContains(o, u));
    return out;
  }

  /**
   * `contains` with its bounds: at least `minContains` (default 1) and at most `maxContains` items
   * match the `contains` schema. The bounds mean nothing without `contains`, and `minContains: 0`
   * without `maxContains` asks nothing at all. A reader keeps every written array valid when its
   * `contains` schema accepts at least what the writer's did and its bounds are no tighter.
   */
  private compareContains(o: ArrayNode, u: ArrayNode): Rel[] {
    if (!o.judgeContains && !u.judgeContains) return [];
    const effective = (n: ArrayNode) => {
      if (!n.contains) return undefined;
      const min = n.minContains ?? 1;
      if (min === 0 && n.maxContains === undefined) return undefined;
      return { schema: n.contains, min, max: n.maxContains };
    };
    const before = effective(o);
    const after = effective(u);
    if (!before && !after) return [];
    if (!before) return [rel('CONTAINS_ADDED', 'contains')];
    if (!after) return [rel('CONTAINS_REMOVED', 'contains')];
    // A bounded count is a promise about how many items match: with maxContains, the reader's
    // contains schema must match exactly what the writer's did, or the count can change either way.
    const found = under(['contains'], this.compare(before.schema, after.schema));
    if (before.max !== undefined || after.max !== undefined)
      found.push(...under(['contains'], this.compare(after.schema, before.schema)).filter((d) => !this.compatible([d])));
    return [
      ...found,
      ...compareLimit(before.max, after.max, 'maxContains', 'MAX_CONTAINS'),
      // Both sides have an effective minimum (default 1): only its movement matters.
      ...compareLimit(before.min, after.min, 'minContains', 'MIN_CONTAINS'),
    ];
  }
}

type LimitPrefix =
  | 'MAX_LENGTH'
  | 'MIN_LENGTH'
  | 'MAXIMUM'
  | 'MINIMUM'
  | 'EXCLUSIVE_MAXIMUM'
  | 'EXCLUSIVE_MINIMUM'
  | 'MAX_PROPERTIES'
  | 'MIN_PROPERTIES'
  | 'MAX_ITEMS'
  | 'MIN_ITEMS'
  | 'MAX_CONTAINS'
  | 'MIN_CONTAINS';

/** ADDED / REMOVED / INCREASED / DECREASED for a numeric keyword. */
function compareLimit(before: number | undefined, after: number | undefined, keyword: string, prefix: LimitPrefix): Rel[] {
  if (before === after) return [];
  if (before === undefined) return [rel(`${prefix}_ADDED` as DifferenceType, keyword)];
  if (after === undefined) return [rel(`${prefix}_REMOVED` as DifferenceType, keyword)];
  if (before < after) return [rel(`${prefix}_INCREASED` as DifferenceType, keyword)];
  if (before > after) return [rel(`${prefix}_DECREASED` as DifferenceType, keyword)];
  return [];
}

function compareString(o: StringNode, u: StringNode): Rel[] {
  const out = [
    ...compareLimit(o.maxLength, u.maxLength, 'maxLength', 'MAX_LENGTH'),
    ...compareLimit(o.minLength, u.minLength, 'minLength', 'MIN_LENGTH'),
  ];
  if (o.pattern === undefined && u.pattern !== undefined) out.push(rel('PATTERN_ADDED', 'pattern'));
  else if (o.pattern !== undefined && u.pattern === undefined) out.push(rel('PATTERN_REMOVED', 'pattern'));
  else if (o.pattern !== u.pattern) out.push(rel('PATTERN_CHANGED', 'pattern'));
  return out;
}

function compareNumber(o: NumberNode, u: NumberNode): Rel[] {
  const out = [
    ...compareLimit(o.maximum, u.maximum, 'maximum', 'MAXIMUM'),
    ...compareLimit(o.minimum, u.minimum, 'minimum', 'MINIMUM'),
    ...compareLimit(o.exclusiveMaximum, u.exclusiveMaximum, 'exclusiveMaximum', 'EXCLUSIVE_MAXIMUM'),
    ...compareLimit(o.exclusiveMinimum, u.exclusiveMinimum, 'exclusiveMinimum', 'EXCLUSIVE_MINIMUM'),
  ];
  const before = o.multipleOf;
  const after = u.multipleOf;
  if (!(before === undefined ? after === undefined : after !== undefined && decimalEquals(before, after))) {
    if (before === undefined) out.push(rel('MULTIPLE_OF_ADDED', 'multipleOf'));
    else if (after === undefined) out.push(rel('MULTIPLE_OF_REMOVED', 'multipleOf'));
    // A new multipleOf that is a multiple of the old one accepts fewer numbers (expanded step).
    else if (isMultipleOf(after, before)) out.push(rel('MULTIPLE_OF_EXPANDED', 'multipleOf'));
    else if (isMultipleOf(before, after)) out.push(rel('MULTIPLE_OF_REDUCED', 'multipleOf'));
    else out.push(rel('MULTIPLE_OF_CHANGED', 'multipleOf'));
  }
  if (o.requiresInteger !== u.requiresInteger) out.push(rel(o.requiresInteger ? 'TYPE_EXTENDED' : 'TYPE_NARROWED'));
  return out;
}

/** Enum values compared as sets of JSON values. */
function compareEnum(before: unknown[], after: unknown[]): Rel[] {
  const contains = (set: unknown[], v: unknown): boolean => set.some((x) => isDeepStrictEqual(x, v));
  const beforeInAfter = before.every((v) => contains(after, v));
  const afterInBefore = after.every((v) => contains(before, v));
  if (beforeInAfter && afterInBefore) return [];
  if (beforeInAfter) return [rel('ENUM_ARRAY_EXTENDED', 'enum')];
  if (afterInBefore) return [rel('ENUM_ARRAY_NARROWED', 'enum')];
  return [rel('ENUM_ARRAY_CHANGED', 'enum')];
}

function unionKeys<V>(a: ReadonlyMap<string, V>, b: ReadonlyMap<string, V>): string[] {
  return [...new Set([...a.keys(), ...b.keys()])];
}

/**
 * Open content model: any extra property is allowed with any value (no additionalProperties schema,
 * no patternProperties, unevaluatedProperties absent or true).
 */
export function isOpenObject(node: ObjectNode): boolean {
  if (!node.permitsAdditionalProperties || node.additionalPropertiesSchema || node.patternProperties.length > 0) return false;
  const unevaluated = node.unevaluatedProperties ?? node.inheritedUnevaluatedProperties;
  return !unevaluated || isEmptyLike(unevaluated);
}

/**
 * Partially open content model: the schema extra property `key` would be validated with
 * (first matching patternProperties entry, else additionalProperties, else unevaluatedProperties).
 */
function partialSchemaFor(node: ObjectNode, key: string): JsonSchemaNode | undefined {
  for (const p of node.patternProperties) {
    p.regex.lastIndex = 0;
    if (p.regex.test(key)) return p.schema;
  }
  if (node.additionalPropertiesSchema) return node.additionalPropertiesSchema;
  const unevaluated = node.unevaluatedProperties ?? node.inheritedUnevaluatedProperties;
  if (node.permitsAdditionalProperties && unevaluated && unevaluated.kind !== 'false' && !isEmptyLike(unevaluated)) return unevaluated;
  return undefined;
}

/** Open for tuples: items past the tuple are allowed with any value. */
export function isOpenArray(node: ArrayNode): boolean {
  if (!node.permitsAdditionalItems || node.additionalItemsSchema) return false;
  const unevaluated = node.unevaluatedItems ?? node.inheritedUnevaluatedItems;
  return !unevaluated || isEmptyLike(unevaluated);
}

function partialItemSchema(node: ArrayNode): JsonSchemaNode | undefined {
  if (node.additionalItemsSchema) return node.additionalItemsSchema;
  const unevaluated = node.unevaluatedItems ?? node.inheritedUnevaluatedItems;
  if (node.permitsAdditionalItems && unevaluated && unevaluated.kind !== 'false' && !isEmptyLike(unevaluated)) return unevaluated;
  return undefined;
}

/** Subschemas with duplicates (same canonical form) removed, first occurrence kept. */
function distinct(nodes: readonly JsonSchemaNode[]): JsonSchemaNode[] {
  const seen = new Set<string>();
  const out: JsonSchemaNode[] = [];
  for (const n of nodes) {
    const key = canonical(n);
    if (seen.has(key)) continue;
    seen.add(key);
    out.push(n);
  }
  return out;
}

/** A stable text form of a node's meaning, for spotting duplicate subschemas. References stay references. */
export function canonical(node: JsonSchemaNode): string {
  return JSON.stringify(toCanonical(node));
}

function toCanonical(node: JsonSchemaNode): unknown {
  const common = { id: node.id, title: node.title, description: node.description, default: node.hasDefault ? node.default : undefined };
  const map = (m: ReadonlyMap<string, JsonSchemaNode>): unknown =>
    Object.fromEntries([...m].sort(([a], [b]) => (a < b ? -1 : 1)).map(([k, v]) => [k, toCanonical(v)]));
  const opt = (n: JsonSchemaNode | undefined): unknown => (n ? toCanonical(n) : undefined);
  switch (node.kind) {
    case 'ref':
      return { ...common, $ref: node.ref };
    case 'combined':
      return { ...common, [node.criterion]: node.subschemas.map(toCanonical) };
    case 'not':
      return { ...common, not: toCanonical(node.schema) };
    case 'conditional':
      return { ...common, if: opt(node.if), then: opt(node.then), else: opt(node.else) };
    case 'object':
      return {
        ...common,
        kind: 'object',
        properties: map(node.properties),
        required: [...node.required].sort(),
        permits: node.permitsAdditionalProperties,
        additional: opt(node.additionalPropertiesSchema),
        patterns: node.patternProperties.map((p) => [p.pattern, toCanonical(p.schema)]),
        propertyDependencies: Object.fromEntries([...node.propertyDependencies].sort()),
        schemaDependencies: map(node.schemaDependencies),
        minProperties: node.minProperties,
        maxProperties: node.maxProperties,
        propertyNames: opt(node.propertyNames),
        unevaluated: opt(node.unevaluatedProperties ?? node.inheritedUnevaluatedProperties),
      };
    case 'array':
      return {
        ...common,
        kind: 'array',
        items: opt(node.allItems),
        tuple: node.itemSchemas?.map(toCanonical),
        permits: node.permitsAdditionalItems,
        additional: opt(node.additionalItemsSchema),
        minItems: node.minItems,
        maxItems: node.maxItems,
        unique: node.uniqueItems,
        contains: opt(node.contains),
        minContains: node.minContains,
        maxContains: node.maxContains,
        unevaluated: opt(node.unevaluatedItems ?? node.inheritedUnevaluatedItems),
      };
    default: {
      // Leaf kinds: every own field is already plain JSON.
      const { hasDefault: _hasDefault, ...rest } = node;
      return { ...rest, default: node.hasDefault ? node.default : undefined };
    }
  }
}

/**
 * Every difference between `original` and `update`, with Confluent's difference types and paths.
 * `allowed` (the policy's allow-list) is needed here, not only when judging the result, because some
 * differences depend on whether a nested comparison was compatible (a property removed and covered by
 * a partially open content model, a oneOf branch that still matches).
 */
export function diffJsonSchemas(original: JsonSchemaNode, update: JsonSchemaNode, allowed: ReadonlySet<DifferenceType>): Difference[] {
  let known: Map<JsonSchemaNode, Map<JsonSchemaNode, Rel[]>> = new Map();
  // Each pass can only add pairs to the incompatible set, which is bounded by the number of pairs.
  for (;;) {
    const run = new Comparison(allowed, known);
    const found = run.compare(original, update);
    const incompatible = run.incompatiblePairs();
    if (!run.usedAssumption || samePairs(incompatible, known)) {
      return found.map((d) => ({ type: d.type, path: `#/${d.segments.join('/')}` }));
    }
    known = incompatible;
  }
}

function samePairs(a: Map<JsonSchemaNode, Map<JsonSchemaNode, Rel[]>>, b: Map<JsonSchemaNode, Map<JsonSchemaNode, Rel[]>>): boolean {
  let count = 0;
  for (const [o, row] of a) {
    for (const u of row.keys()) {
      if (!b.get(o)?.has(u)) return false;
      count++;
    }
  }
  let other = 0;
  for (const row of b.values()) other += row.size;
  return count === other;
}
