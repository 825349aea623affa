import { ParityError } from '../core/errors.js';

/**
 * JSON Schema documents loaded into the typed model that Confluent's compatibility rules are defined
 * on. Confluent compares schemas after its validator library has turned them into typed nodes, and
 * several verdicts depend on that shape, so this loader reproduces it:
 *
 * - a schema with `$ref` is a reference (its sibling keywords are ignored) that resolves to a shared
 *   node, so recursive definitions are cycles detectable by identity;
 * - each keyword family yields one node, in this order: `enum`, `allOf`/`anyOf`/`oneOf`, `not`,
 *   `const`, `type`, then nodes inferred from type-specific keywords when no `type` claimed them
 *   (array, object, number, string, if/then/else);
 * - several nodes from one schema object become a synthetic `allOf`; none becomes the empty schema;
 * - `"type": [a, b]` becomes an `anyOf` of one node per type;
 * - `id`/`$id`, `title`, `description` and `default` attach to the resulting node.
 *
 * Drafts 4, 6 and 7 are read as such (default: 7). 2019-09 and 2020-12 are read by their own rules:
 * - `$ref` is an applicator like any other, so its siblings apply too (a synthetic `allOf`);
 * - `dependencies` split into `dependentRequired` and `dependentSchemas` (the old keyword means nothing);
 * - `prefixItems` holds the tuple and `items` the rest (2020-12), `items`/`additionalItems` before;
 * - `$anchor`, `$defs`, `$recursiveRef`/`$recursiveAnchor` (2019-09) and `$dynamicRef`/`$dynamicAnchor`
 *   (2020-12) resolve inside the document (one document is one dynamic scope, so a dynamic reference
 *   lands where a static one would);
 * - `unevaluatedProperties`/`unevaluatedItems` see the properties and items that in-place applicators
 *   (`allOf`, `anyOf`, `oneOf`, `if`/`then`/`else`, `dependentSchemas`) evaluate: a branch of such a
 *   schema is as open or closed as the `unevaluated*` keyword beside it makes it;
 * - `contains` is bounded by `minContains` (default 1) and `maxContains`.
 */
export type JsonSchemaDraft = 4 | 6 | 7 | 2019 | 2020;

interface NodeBase {
  id?: string;
  title?: string;
  description?: string;
  hasDefault: boolean;
  default?: unknown;
  /** Kafka Connect's `connect.type` annotation: two `bytes` nodes compare equal whatever their types. */
  connectType?: string;
}

export interface EmptyNode extends NodeBase {
  kind: 'empty';
}
export interface TrueNode extends NodeBase {
  kind: 'true';
}
export interface FalseNode extends NodeBase {
  kind: 'false';
}
export interface StringNode extends NodeBase {
  kind: 'string';
  minLength?: number;
  maxLength?: number;
  pattern?: string;
  format?: string;
}
export interface NumberNode extends NodeBase {
  kind: 'number';
  requiresInteger: boolean;
  minimum?: number;
  maximum?: number;
  exclusiveMinimum?: number;
  exclusiveMaximum?: number;
  /** Draft 4 only: `exclusiveMinimum`/`exclusiveMaximum` as flags on `minimum`/`maximum`. */
  exclusiveMinimumFlag?: boolean;
  exclusiveMaximumFlag?: boolean;
  /** Kept as written so decimal arithmetic on it is exact. */
  multipleOf?: string;
}
export interface BooleanNode extends NodeBase {
  kind: 'boolean';
}
export interface NullNode extends NodeBase {
  kind: 'null';
}
export interface EnumNode extends NodeBase {
  kind: 'enum';
  values: unknown[];
}
export interface ConstNode extends NodeBase {
  kind: 'const';
  value: unknown;
}
export type Criterion = 'allOf' | 'anyOf' | 'oneOf';
export interface CombinedNode extends NodeBase {
  kind: 'combined';
  criterion: Criterion;
  subschemas: JsonSchemaNode[];
  /** True when the loader built it from sibling keywords rather than an explicit allOf/anyOf/oneOf. */
  synthetic: boolean;
}
export interface NotNode extends NodeBase {
  kind: 'not';
  schema: JsonSchemaNode;
}
export interface ObjectNode extends NodeBase {
  kind: 'object';
  properties: Map<string, JsonSchemaNode>;
  required: string[];
  /** False only for `additionalProperties: false`. */
  permitsAdditionalProperties: boolean;
  /** The schema of `additionalProperties: {...}`. */
  additionalPropertiesSchema?: JsonSchemaNode;
  patternProperties: { pattern: string; regex: RegExp; schema: JsonSchemaNode }[];
  propertyDependencies: Map<string, string[]>;
  schemaDependencies: Map<string, JsonSchemaNode>;
  /**
   * Where the dependencies were written: `dependencies` (up to draft 7) or `dependentRequired` /
   * `dependentSchemas` (2019-09 on). Differences are reported at `#/dependencies/<name>` either way,
   * as Confluent reports them.
   */
  propertyDependenciesKeyword: 'dependencies' | 'dependentRequired';
  schemaDependenciesKeyword: 'dependencies' | 'dependentSchemas';
  minProperties?: number;
  maxProperties?: number;
  propertyNames?: JsonSchemaNode;
  unevaluatedProperties?: JsonSchemaNode;
  /**
   * The `unevaluatedProperties` of the schema this one is an in-place branch of (an `allOf` entry
   * beside `unevaluatedProperties: false`, ...): properties this branch does not declare fall to it.
   */
  inheritedUnevaluatedProperties?: JsonSchemaNode;
}
export interface ArrayNode extends NodeBase {
  kind: 'array';
  /** `items: {...}`: one schema for every item. */
  allItems?: JsonSchemaNode;
  /** `items: [...]`: a tuple. */
  itemSchemas?: JsonSchemaNode[];
  permitsAdditionalItems: boolean;
  additionalItemsSchema?: JsonSchemaNode;
  minItems?: number;
  maxItems?: number;
  uniqueItems: boolean;
  contains?: JsonSchemaNode;
  /**
   * 2019-09 and later: `contains` is compared with its bounds. Up to draft 7 it is not compared at
   * all, as Confluent does (its diff has no difference type for it).
   */
  judgeContains?: boolean;
  minContains?: number;
  maxContains?: number;
  unevaluatedItems?: JsonSchemaNode;
  /** As `ObjectNode.inheritedUnevaluatedProperties`, for items. */
  inheritedUnevaluatedItems?: JsonSchemaNode;
}
export interface ConditionalNode extends NodeBase {
  kind: 'conditional';
  if?: JsonSchemaNode;
  then?: JsonSchemaNode;
  else?: JsonSchemaNode;
}
export interface RefNode extends NodeBase {
  kind: 'ref';
  ref: string;
  /** The referred node; resolved lazily because a definition may refer to itself. */
  target(): JsonSchemaNode;
}

export type JsonSchemaNode =
  | EmptyNode
  | TrueNode
  | FalseNode
  | StringNode
  | NumberNode
  | BooleanNode
  | NullNode
  | EnumNode
  | ConstNode
  | CombinedNode
  | NotNode
  | ObjectNode
  | ArrayNode
  | ConditionalNode
  | RefNode;

const NUMBER_KEYWORDS = ['minimum', 'maximum', 'exclusiveMinimum', 'exclusiveMaximum', 'multipleOf'];
const STRING_KEYWORDS = ['minLength', 'maxLength', 'pattern', 'format'];
const V4_OBJECT_KEYWORDS = [
  'properties',
  'required',
  'minProperties',
  'maxProperties',
  'dependencies',
  'patternProperties',
  'additionalProperties',
];
const V6_OBJECT_KEYWORDS = [...V4_OBJECT_KEYWORDS, 'propertyNames'];
const V4_ARRAY_KEYWORDS = ['items', 'additionalItems', 'minItems', 'maxItems', 'uniqueItems'];
const V6_ARRAY_KEYWORDS = [...V4_ARRAY_KEYWORDS, 'contains'];
const V2019_OBJECT_KEYWORDS = [
  'properties',
  'required',
  'minProperties',
  'maxProperties',
  'dependentRequired',
  'dependentSchemas',
  'patternProperties',
  'additionalProperties',
  'propertyNames',
  'unevaluatedProperties',
];
const V2019_ARRAY_KEYWORDS = [...V6_ARRAY_KEYWORDS, 'minContains', 'maxContains', 'unevaluatedItems'];
const V2020_ARRAY_KEYWORDS = [
  'prefixItems',
  'items',
  'minItems',
  'maxItems',
  'uniqueItems',
  'contains',
  'minContains',
  'maxContains',
  'unevaluatedItems',
];
const CONDITIONAL_KEYWORDS = ['if', 'then', 'else'];

function objectKeywords(draft: JsonSchemaDraft): string[] {
  return draft === 4 ? V4_OBJECT_KEYWORDS : draft >= 2019 ? V2019_OBJECT_KEYWORDS : V6_OBJECT_KEYWORDS;
}

function arrayKeywords(draft: JsonSchemaDraft): string[] {
  return draft === 4
    ? V4_ARRAY_KEYWORDS
    : draft === 2020
      ? V2020_ARRAY_KEYWORDS
      : draft === 2019
        ? V2019_ARRAY_KEYWORDS
        : V6_ARRAY_KEYWORDS;
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function bad(message: string, pointer: string): ParityError {
  return new ParityError('PARITY_BAD_INPUT', `invalid JSON Schema at #${pointer}: ${message}`, {
    hint: 'fix the schema so it is a valid JSON Schema document (draft 4, 6, 7, 2019-09 or 2020-12)',
  });
}

/** The draft a document declares in its root `$schema` (draft 7 when absent or unknown). */
export function draftOf(root: unknown): JsonSchemaDraft {
  const uri = isObject(root) && typeof root.$schema === 'string' ? root.$schema : '';
  if (/draft-04/.test(uri)) return 4;
  if (/draft-06/.test(uri)) return 6;
  if (/draft\/2019-09/.test(uri)) return 2019;
  if (/draft\/2020-12/.test(uri)) return 2020;
  return 7;
}

function decodePointerSegment(s: string): string {
  return decodeURIComponent(s).replace(/~1/g, '/').replace(/~0/g, '~');
}

class JsonSchemaLoader {
  private readonly draft: JsonSchemaDraft;
  private readonly idKeyword: string;
  /** Nodes per JSON object, so a definition reached twice (or through itself) is one node. */
  private readonly loaded = new Map<object, JsonSchemaNode>();
  /** Plain-name anchors and relative ids (`"$id": "#Address"`) -> the schema object that declares them. */
  private readonly anchors = new Map<string, unknown>();

  constructor(private readonly root: unknown) {
    this.draft = draftOf(root);
    this.idKeyword = this.draft === 4 ? 'id' : '$id';
    this.collectAnchors(root, 0);
  }

  private collectAnchors(json: unknown, depth: number): void {
    if (depth > 200) return;
    if (Array.isArray(json)) {
      for (const item of json) this.collectAnchors(item, depth + 1);
      return;
    }
    if (!isObject(json)) return;
    const id = json[this.idKeyword];
    if (typeof id === 'string' && id !== '' && !this.anchors.has(id)) this.anchors.set(id, json);
    if (typeof json.$anchor === 'string') this.anchors.set(`#${json.$anchor}`, json);
    // A dynamic anchor is also a plain anchor; within one document it is where $dynamicRef lands.
    if (this.draft === 2020 && typeof json.$dynamicAnchor === 'string' && !this.anchors.has(`#${json.$dynamicAnchor}`))
      this.anchors.set(`#${json.$dynamicAnchor}`, json);
    for (const [key, value] of Object.entries(json)) {
      // Values of enum/const are data, not schemas: an "$id" inside them declares nothing.
      if (key === 'enum' || key === 'const' || key === 'default' || key === 'examples') continue;
      this.collectAnchors(value, depth + 1);
    }
  }

  load(json: unknown, pointer: string): JsonSchemaNode {
    if (json === true) return { kind: 'true', hasDefault: false };
    if (json === false) return { kind: 'false', hasDefault: false };
    if (!isObject(json)) throw bad(`a schema must be an object or a boolean, found ${JSON.stringify(json)}`, pointer);
    const existing = this.loaded.get(json);
    if (existing) return existing;
    const node = this.loadObject(json, pointer);
    this.loaded.set(json, node);
    return node;
  }

  private loadObject(json: Record<string, unknown>, pointer: string): JsonSchemaNode {
    const consumed = new Set<string>();
    const nodes: JsonSchemaNode[] = [];
    const modern = this.draft >= 2019;
    // Up to draft 7 a $ref replaces its schema object; from 2019-09 on it applies beside its siblings.
    const ref = typeof json.$ref === 'string' ? json.$ref : undefined;
    const dynamicRef =
      this.draft === 2020 && typeof json.$dynamicRef === 'string'
        ? json.$dynamicRef
        : this.draft === 2019 && typeof json.$recursiveRef === 'string'
          ? json.$recursiveRef
          : undefined;
    if (ref !== undefined) nodes.push(this.reference(ref, pointer));
    if (modern && dynamicRef !== undefined) nodes.push(this.reference(dynamicRef, pointer));
    if (ref !== undefined && !modern) {
      consumed.add('$ref');
    } else {
      if ('enum' in json) {
        if (!Array.isArray(json.enum)) throw bad('"enum" must be an array', `${pointer}/enum`);
        consumed.add('enum');
        nodes.push({ kind: 'enum', values: json.enum, hasDefault: false });
      }
      for (const criterion of ['allOf', 'anyOf', 'oneOf'] as const) {
        if (!(criterion in json)) continue;
        const list = json[criterion];
        if (!Array.isArray(list)) throw bad(`"${criterion}" must be an array`, `${pointer}/${criterion}`);
        consumed.add(criterion);
        nodes.push({
          kind: 'combined',
          criterion,
          subschemas: list.map((s, i) => this.load(s, `${pointer}/${criterion}/${i}`)),
          synthetic: false,
          hasDefault: false,
        });
      }
      if ('not' in json) {
        consumed.add('not');
        nodes.push({ kind: 'not', schema: this.load(json.not, `${pointer}/not`), hasDefault: false });
      }
      if (this.draft !== 4 && 'const' in json) {
        consumed.add('const');
        nodes.push({ kind: 'const', value: json.const, hasDefault: false });
      }
      if ('type' in json) {
        consumed.add('type');
        const type = json.type;
        if (Array.isArray(type)) {
          const subschemas = type.map((t, i) => {
            if (typeof t !== 'string') throw bad('"type" entries must be strings', `${pointer}/type/${i}`);
            return this.forType(t, json, consumed, pointer);
          });
          nodes.push({ kind: 'combined', criterion: 'anyOf', subschemas, synthetic: false, hasDefault: false });
        } else if (typeof type === 'string') {
          nodes.push(this.forType(type, json, consumed, pointer));
        } else {
          throw bad('"type" must be a string or an array of strings', `${pointer}/type`);
        }
      }
      // Keywords no earlier step claimed imply the type they belong to.
      const unclaimed = (keys: string[]): boolean => keys.some((k) => k in json && !consumed.has(k));
      if (unclaimed(arrayKeywords(this.draft))) nodes.push(this.forType('array', json, consumed, pointer));
      if (unclaimed(objectKeywords(this.draft))) nodes.push(this.forType('object', json, consumed, pointer));
      if (unclaimed(NUMBER_KEYWORDS)) nodes.push(this.forType('number', json, consumed, pointer));
      if (unclaimed(STRING_KEYWORDS)) nodes.push(this.forType('string', json, consumed, pointer));
      if (this.draft !== 4 && this.draft !== 6 && unclaimed(CONDITIONAL_KEYWORDS)) {
        CONDITIONAL_KEYWORDS.forEach((k) => consumed.add(k));
        const cond: ConditionalNode = { kind: 'conditional', hasDefault: false };
        if ('if' in json) cond.if = this.load(json.if, `${pointer}/if`);
        if ('then' in json) cond.then = this.load(json.then, `${pointer}/then`);
        if ('else' in json) cond.else = this.load(json.else, `${pointer}/else`);
        nodes.push(cond);
      }
    }
    if (modern) this.shareUnevaluated(nodes);
    let node: JsonSchemaNode;
    if (nodes.length === 0) node = { kind: 'empty', hasDefault: false };
    else if (nodes.length === 1) node = nodes[0] as JsonSchemaNode;
    else node = { kind: 'combined', criterion: 'allOf', subschemas: nodes, synthetic: true, hasDefault: false };
    this.common(node, json, pointer);
    return node;
  }

  /**
   * `unevaluatedProperties`/`unevaluatedItems` apply to whatever the in-place applicators beside them
   * did not evaluate: each object (array) branch of those applicators inherits the keyword, so its
   * content model is judged open or closed by it.
   */
  private shareUnevaluated(nodes: JsonSchemaNode[]): void {
    const object = nodes.find((n): n is ObjectNode => n.kind === 'object' && n.unevaluatedProperties !== undefined);
    const array = nodes.find((n): n is ArrayNode => n.kind === 'array' && n.unevaluatedItems !== undefined);
    if (!object && !array) return;
    const seen = new Set<JsonSchemaNode>();
    const visit = (n: JsonSchemaNode | undefined): void => {
      if (!n || seen.has(n)) return;
      seen.add(n);
      switch (n.kind) {
        case 'combined':
          n.subschemas.forEach(visit);
          break;
        case 'conditional':
          [n.if, n.then, n.else].forEach(visit);
          break;
        case 'object':
          if (object && n !== object && n.unevaluatedProperties === undefined)
            n.inheritedUnevaluatedProperties ??= object.unevaluatedProperties;
          for (const dep of n.schemaDependencies.values()) visit(dep);
          break;
        case 'array':
          if (array && n !== array && n.unevaluatedItems === undefined) n.inheritedUnevaluatedItems ??= array.unevaluatedItems;
          break;
        case 'ref': {
          // A referenced definition is shared with other places, so it is not changed: this reference
          // resolves to a view of it that carries the keyword (`$ref` + `unevaluatedProperties: false`
          // is the pattern the keyword exists for).
          const resolve = n.target.bind(n);
          let view: JsonSchemaNode | undefined;
          n.target = () => {
            if (view) return view;
            const t = resolve();
            if (object && t.kind === 'object' && t.unevaluatedProperties === undefined) {
              view = { ...t, inheritedUnevaluatedProperties: t.inheritedUnevaluatedProperties ?? object.unevaluatedProperties };
            } else if (array && t.kind === 'array' && t.unevaluatedItems === undefined) {
              view = { ...t, inheritedUnevaluatedItems: t.inheritedUnevaluatedItems ?? array.unevaluatedItems };
            } else {
              view = t;
            }
            return view;
          };
          break;
        }
        default:
          break;
      }
    };
    for (const n of nodes) {
      if (n.kind === 'combined' || n.kind === 'conditional' || n.kind === 'ref') visit(n);
      if (n.kind === 'object') for (const dep of n.schemaDependencies.values()) visit(dep);
    }
  }

  private common(node: JsonSchemaNode, json: Record<string, unknown>, pointer: string): void {
    const id = json[this.idKeyword];
    if (typeof id === 'string') node.id = id;
    if ('title' in json) {
      if (typeof json.title !== 'string') throw bad('"title" must be a string', `${pointer}/title`);
      node.title = json.title;
    }
    if ('description' in json) {
      if (typeof json.description !== 'string') throw bad('"description" must be a string', `${pointer}/description`);
      node.description = json.description;
    }
    if ('default' in json) {
      node.hasDefault = true;
      node.default = json.default;
    }
    if (typeof json['connect.type'] === 'string') node.connectType = json['connect.type'];
  }

  private forType(type: string, json: Record<string, unknown>, consumed: Set<string>, pointer: string): JsonSchemaNode {
    switch (type) {
      case 'string':
        STRING_KEYWORDS.forEach((k) => consumed.add(k));
        return this.stringNode(json, pointer);
      case 'integer':
      case 'number':
        NUMBER_KEYWORDS.forEach((k) => consumed.add(k));
        return this.numberNode(json, pointer, type === 'integer');
      case 'boolean':
        return { kind: 'boolean', hasDefault: false };
      case 'null':
        return { kind: 'null', hasDefault: false };
      case 'array':
        arrayKeywords(this.draft).forEach((k) => consumed.add(k));
        return this.arrayNode(json, pointer);
      case 'object':
        objectKeywords(this.draft).forEach((k) => consumed.add(k));
        return this.objectNode(json, pointer);
      default:
        throw bad(`unknown type "${type}"`, `${pointer}/type`);
    }
  }

  private integer(json: Record<string, unknown>, key: string, pointer: string): number | undefined {
    if (!(key in json)) return undefined;
    const v = json[key];
    if (typeof v !== 'number' || !Number.isInteger(v) || v < 0) throw bad(`"${key}" must be a non-negative integer`, `${pointer}/${key}`);
    return v;
  }

  private number(json: Record<string, unknown>, key: string, pointer: string): number | undefined {
    if (!(key in json)) return undefined;
    const v = json[key];
    if (typeof v !== 'number') throw bad(`"${key}" must be a number`, `${pointer}/${key}`);
    return v;
  }

  private stringNode(json: Record<string, unknown>, pointer: string): StringNode {
    const node: StringNode = { kind: 'string', hasDefault: false };
    const minLength = this.integer(json, 'minLength', pointer);
    const maxLength = this.integer(json, 'maxLength', pointer);
    if (minLength !== undefined) node.minLength = minLength;
    if (maxLength !== undefined) node.maxLength = maxLength;
    if ('pattern' in json) {
      if (typeof json.pattern !== 'string') throw bad('"pattern" must be a string', `${pointer}/pattern`);
      node.pattern = json.pattern;
    }
    if (typeof json.format === 'string') node.format = json.format;
    return node;
  }

  private numberNode(json: Record<string, unknown>, pointer: string, requiresInteger: boolean): NumberNode {
    const node: NumberNode = { kind: 'number', requiresInteger, hasDefault: false };
    const minimum = this.number(json, 'minimum', pointer);
    const maximum = this.number(json, 'maximum', pointer);
    if (minimum !== undefined) node.minimum = minimum;
    if (maximum !== undefined) node.maximum = maximum;
    for (const key of ['exclusiveMinimum', 'exclusiveMaximum'] as const) {
      if (!(key in json)) continue;
      const v = json[key];
      if (this.draft === 4) {
        if (typeof v !== 'boolean') throw bad(`"${key}" must be a boolean in draft 4`, `${pointer}/${key}`);
        node[key === 'exclusiveMinimum' ? 'exclusiveMinimumFlag' : 'exclusiveMaximumFlag'] = v;
      } else {
        if (typeof v !== 'number') throw bad(`"${key}" must be a number`, `${pointer}/${key}`);
        node[key] = v;
      }
    }
    if ('multipleOf' in json) {
      const v = json.multipleOf;
      if (typeof v !== 'number' || v <= 0) throw bad('"multipleOf" must be a number above 0', `${pointer}/multipleOf`);
      node.multipleOf = String(v);
    }
    return node;
  }

  private objectNode(json: Record<string, unknown>, pointer: string): ObjectNode {
    const node: ObjectNode = {
      kind: 'object',
      properties: new Map(),
      required: [],
      permitsAdditionalProperties: true,
      patternProperties: [],
      propertyDependencies: new Map(),
      schemaDependencies: new Map(),
      propertyDependenciesKeyword: this.draft >= 2019 ? 'dependentRequired' : 'dependencies',
      schemaDependenciesKeyword: this.draft >= 2019 ? 'dependentSchemas' : 'dependencies',
      hasDefault: false,
    };
    const minProperties = this.integer(json, 'minProperties', pointer);
    const maxProperties = this.integer(json, 'maxProperties', pointer);
    if (minProperties !== undefined) node.minProperties = minProperties;
    if (maxProperties !== undefined) node.maxProperties = maxProperties;
    if ('properties' in json) {
      if (!isObject(json.properties)) throw bad('"properties" must be an object', `${pointer}/properties`);
      for (const [name, schema] of Object.entries(json.properties)) {
        node.properties.set(name, this.load(schema, `${pointer}/properties/${name}`));
      }
    }
    if ('additionalProperties' in json) {
      const ap = json.additionalProperties;
      if (typeof ap === 'boolean') node.permitsAdditionalProperties = ap;
      else node.additionalPropertiesSchema = this.load(ap, `${pointer}/additionalProperties`);
    }
    if ('required' in json) {
      if (!Array.isArray(json.required) || json.required.some((r) => typeof r !== 'string'))
        throw bad('"required" must be an array of strings', `${pointer}/required`);
      node.required = json.required as string[];
    }
    if ('patternProperties' in json) {
      if (!isObject(json.patternProperties)) throw bad('"patternProperties" must be an object', `${pointer}/patternProperties`);
      for (const [pattern, schema] of Object.entries(json.patternProperties)) {
        node.patternProperties.push({
          pattern,
          regex: compilePattern(pattern, `${pointer}/patternProperties`),
          schema: this.load(schema, `${pointer}/patternProperties/${pattern}`),
        });
      }
    }
    if (this.draft < 2019 && 'dependencies' in json) {
      if (!isObject(json.dependencies)) throw bad('"dependencies" must be an object', `${pointer}/dependencies`);
      for (const [name, dep] of Object.entries(json.dependencies)) {
        if (Array.isArray(dep)) node.propertyDependencies.set(name, dep.map(String));
        else node.schemaDependencies.set(name, this.load(dep, `${pointer}/dependencies/${name}`));
      }
    }
    if (this.draft >= 2019 && 'dependentRequired' in json) {
      if (!isObject(json.dependentRequired)) throw bad('"dependentRequired" must be an object', `${pointer}/dependentRequired`);
      for (const [name, dep] of Object.entries(json.dependentRequired)) {
        if (!Array.isArray(dep) || dep.some((d) => typeof d !== 'string'))
          throw bad('"dependentRequired" values must be arrays of strings', `${pointer}/dependentRequired/${name}`);
        node.propertyDependencies.set(name, dep as string[]);
      }
    }
    if (this.draft >= 2019 && 'dependentSchemas' in json) {
      if (!isObject(json.dependentSchemas)) throw bad('"dependentSchemas" must be an object', `${pointer}/dependentSchemas`);
      for (const [name, dep] of Object.entries(json.dependentSchemas))
        node.schemaDependencies.set(name, this.load(dep, `${pointer}/dependentSchemas/${name}`));
    }
    if (this.draft !== 4 && 'propertyNames' in json) node.propertyNames = this.load(json.propertyNames, `${pointer}/propertyNames`);
    if (this.draft >= 2019 && 'unevaluatedProperties' in json)
      node.unevaluatedProperties = this.load(json.unevaluatedProperties, `${pointer}/unevaluatedProperties`);
    return node;
  }

  private arrayNode(json: Record<string, unknown>, pointer: string): ArrayNode {
    const node: ArrayNode = { kind: 'array', permitsAdditionalItems: true, uniqueItems: false, hasDefault: false };
    const minItems = this.integer(json, 'minItems', pointer);
    const maxItems = this.integer(json, 'maxItems', pointer);
    if (minItems !== undefined) node.minItems = minItems;
    if (maxItems !== undefined) node.maxItems = maxItems;
    if ('uniqueItems' in json) {
      if (typeof json.uniqueItems !== 'boolean') throw bad('"uniqueItems" must be a boolean', `${pointer}/uniqueItems`);
      node.uniqueItems = json.uniqueItems;
    }
    // 2020-12 renamed tuple items to prefixItems and the rest to items.
    const tuple = this.draft === 2020 ? json.prefixItems : Array.isArray(json.items) ? json.items : undefined;
    const rest = this.draft === 2020 ? json.items : json.additionalItems;
    if (this.draft === 2020 && 'items' in json && !('prefixItems' in json)) {
      // `items: false` with no tuple allows no item at all: Confluent models it as closed additional items.
      if (typeof json.items === 'boolean') node.permitsAdditionalItems = json.items;
      else node.allItems = this.load(json.items, `${pointer}/items`);
    } else {
      if ('items' in json && !Array.isArray(json.items) && this.draft !== 2020) node.allItems = this.load(json.items, `${pointer}/items`);
      if (Array.isArray(tuple))
        node.itemSchemas = tuple.map((s, i) => this.load(s, `${pointer}/${this.draft === 2020 ? 'prefixItems' : 'items'}/${i}`));
      if (rest !== undefined) {
        if (typeof rest === 'boolean') node.permitsAdditionalItems = rest;
        else node.additionalItemsSchema = this.load(rest, `${pointer}/${this.draft === 2020 ? 'items' : 'additionalItems'}`);
      }
    }
    if (this.draft !== 4 && 'contains' in json) node.contains = this.load(json.contains, `${pointer}/contains`);
    if (this.draft >= 2019) {
      node.judgeContains = true;
      if (typeof json.minContains === 'number') node.minContains = json.minContains;
      if (typeof json.maxContains === 'number') node.maxContains = json.maxContains;
      if ('unevaluatedItems' in json) node.unevaluatedItems = this.load(json.unevaluatedItems, `${pointer}/unevaluatedItems`);
    }
    return node;
  }

  private reference(ref: string, pointer: string): RefNode {
    let resolved: JsonSchemaNode | undefined;
    const target = (): JsonSchemaNode => {
      if (resolved) return resolved;
      const found = this.lookup(ref);
      if (found === undefined) {
        throw new ParityError('PARITY_BAD_INPUT', `unresolved $ref "${ref}" at #${pointer}`, {
          hint: 'only references inside the same document are supported (#/definitions/..., #/$defs/..., or a declared $id/$anchor)',
        });
      }
      resolved = this.load(found.json, found.pointer);
      return resolved;
    };
    return { kind: 'ref', ref, target, hasDefault: false };
  }

  private lookup(ref: string): { json: unknown; pointer: string } | undefined {
    // Within one document every recursive reference ("#") lands on the root, the outermost dynamic scope.
    if (ref === '#' || ref === '') return { json: this.root, pointer: '' };
    const anchored = this.anchors.get(ref);
    if (anchored !== undefined) return { json: anchored, pointer: ref };
    const hash = ref.indexOf('#');
    if (hash > 0) {
      // "<id>#/pointer": resolve the pointer inside the schema that declares <id> (the root counts).
      const base = ref.slice(0, hash);
      const doc = this.anchors.get(base);
      if (doc === undefined) return undefined;
      return this.follow(doc, ref.slice(hash + 1));
    }
    if (ref.startsWith('#/')) return this.follow(this.root, ref.slice(1));
    return undefined;
  }

  private follow(doc: unknown, pointer: string): { json: unknown; pointer: string } | undefined {
    let current: unknown = doc;
    if (pointer === '') return { json: current, pointer };
    for (const raw of pointer.split('/').slice(1)) {
      const key = decodePointerSegment(raw);
      if (Array.isArray(current)) current = current[Number(key)];
      else if (isObject(current)) current = current[key];
      else return undefined;
      if (current === undefined) return undefined;
    }
    return { json: current, pointer };
  }
}

/** Compiles an ECMA-262 pattern as JSON Schema requires; an invalid one is bad input. */
export function compilePattern(pattern: string, pointer: string): RegExp {
  try {
    return new RegExp(pattern, 'u');
  } catch {
    try {
      return new RegExp(pattern);
    } catch {
      throw bad(`invalid regular expression ${JSON.stringify(pattern)}`, pointer);
    }
  }
}

/** A loaded document: its root node and the draft it was read as. */
export interface LoadedJsonSchema {
  root: JsonSchemaNode;
  draft: JsonSchemaDraft;
  /** The document as JSON. */
  json: unknown;
}

/**
 * Loads a JSON Schema document (text or parsed JSON) into the comparison model.
 * Throws `PARITY_BAD_INPUT` for text that is not JSON, a root that is neither an object nor a boolean,
 * malformed keywords, unknown types and references that resolve nowhere.
 */
export function loadJsonSchema(input: string | unknown): LoadedJsonSchema {
  let json: unknown = input;
  if (typeof input === 'string') {
    try {
      json = JSON.parse(input);
    } catch (err) {
      throw new ParityError('PARITY_BAD_INPUT', `JSON Schema is not valid JSON: ${err instanceof Error ? err.message : String(err)}`);
    }
  }
  if (typeof json !== 'boolean' && !isObject(json)) throw bad('the root must be an object or a boolean', '');
  const loader = new JsonSchemaLoader(json);
  const root = loader.load(json, '');
  // Resolve every reference now, so a dangling one is reported as bad input up front rather than
  // in the middle of a comparison (or never, if the comparison happens not to reach it).
  resolveAll(root, new Set());
  return { root, draft: draftOf(json), json };
}

function resolveAll(node: JsonSchemaNode, seen: Set<JsonSchemaNode>): void {
  if (seen.has(node)) return;
  seen.add(node);
  for (const child of childrenOf(node)) resolveAll(child, seen);
}

/** The direct subschemas of a node (a reference's child is its target). */
export function childrenOf(node: JsonSchemaNode): JsonSchemaNode[] {
  switch (node.kind) {
    case 'ref':
      return [node.target()];
    case 'combined':
      return node.subschemas;
    case 'not':
      return [node.schema];
    case 'conditional':
      return [node.if, node.then, node.else].filter((n): n is JsonSchemaNode => n !== undefined);
    case 'object':
      return [
        ...node.properties.values(),
        ...(node.additionalPropertiesSchema ? [node.additionalPropertiesSchema] : []),
        ...node.patternProperties.map((p) => p.schema),
        ...node.schemaDependencies.values(),
        ...(node.propertyNames ? [node.propertyNames] : []),
        ...(node.unevaluatedProperties ? [node.unevaluatedProperties] : []),
      ];
    case 'array':
      return [
        ...(node.allItems ? [node.allItems] : []),
        ...(node.itemSchemas ?? []),
        ...(node.additionalItemsSchema ? [node.additionalItemsSchema] : []),
        ...(node.contains ? [node.contains] : []),
        ...(node.unevaluatedItems ? [node.unevaluatedItems] : []),
      ];
    default:
      return [];
  }
}
