import { ParityError } from '../core/errors.js';

/**
 * Avro schemas as the compatibility checker sees them: the JSON form parsed into a graph where a
 * reference to a named type is the same object as its definition (so recursive records are cycles,
 * and the checker can detect a pair it is already comparing by identity).
 *
 * Logical types and custom properties are kept out on purpose: schema resolution, and therefore
 * compatibility, looks only at the underlying types.
 */
export type AvroPrimitiveType = 'null' | 'boolean' | 'int' | 'long' | 'float' | 'double' | 'bytes' | 'string';

export const AVRO_PRIMITIVES: readonly AvroPrimitiveType[] = ['null', 'boolean', 'int', 'long', 'float', 'double', 'bytes', 'string'];

export interface AvroPrimitive {
  type: AvroPrimitiveType;
}

export interface AvroNamed {
  /** Unqualified name, which is what resolution compares. */
  name: string;
  namespace: string | undefined;
  fullName: string;
  /** Aliases as full names (an unqualified alias takes the type's namespace). */
  aliases: string[];
}

export interface AvroField {
  name: string;
  aliases: string[];
  type: AvroSchema;
  /** Whether the field declares `default` (a JSON null default counts). */
  hasDefault: boolean;
  default?: unknown;
  /** Position in the record, used in locations (`/fields/<pos>`). */
  pos: number;
}

export interface AvroRecord extends AvroNamed {
  type: 'record';
  /** `error` types are records for resolution purposes. */
  isError: boolean;
  fields: AvroField[];
}

export interface AvroEnum extends AvroNamed {
  type: 'enum';
  symbols: string[];
  default: string | undefined;
}

export interface AvroFixed extends AvroNamed {
  type: 'fixed';
  size: number;
}

export interface AvroArray {
  type: 'array';
  items: AvroSchema;
}

export interface AvroMap {
  type: 'map';
  values: AvroSchema;
}

export interface AvroUnion {
  type: 'union';
  types: AvroSchema[];
}

export type AvroSchema = AvroPrimitive | AvroRecord | AvroEnum | AvroFixed | AvroArray | AvroMap | AvroUnion;

/** The Avro type name as Java's `Schema.Type` prints it, used in messages (`RECORD`, `INT`). */
export function avroTypeLabel(schema: AvroSchema): string {
  return schema.type.toUpperCase();
}

const NAME_PATTERN = /^[A-Za-z_][A-Za-z0-9_]*$/;

function bad(message: string, path: string): ParityError {
  return new ParityError('PARITY_BAD_INPUT', `invalid Avro schema at ${path || '/'}: ${message}`, {
    hint: 'fix the schema so it follows the Avro specification (https://avro.apache.org/docs/current/specification/)',
  });
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function splitName(
  raw: string,
  enclosing: string | undefined,
  explicitNamespace: unknown,
  path: string,
): { name: string; namespace: string | undefined } {
  if (raw.includes('.')) {
    const dot = raw.lastIndexOf('.');
    return { name: raw.slice(dot + 1), namespace: raw.slice(0, dot) || undefined };
  }
  if (explicitNamespace !== undefined && explicitNamespace !== null) {
    if (typeof explicitNamespace !== 'string') throw bad('"namespace" must be a string', path);
    return { name: raw, namespace: explicitNamespace || undefined };
  }
  return { name: raw, namespace: enclosing };
}

function qualify(name: string, namespace: string | undefined): string {
  return namespace ? `${namespace}.${name}` : name;
}

class AvroParser {
  private readonly names = new Map<string, AvroRecord | AvroEnum | AvroFixed>();

  parse(json: unknown, namespace: string | undefined, path: string): AvroSchema {
    if (typeof json === 'string') return this.reference(json, namespace, path);
    if (Array.isArray(json)) {
      // An empty union is legal in Java's model (it can hold nothing); keep it rather than reject.
      const types = json.map((branch, i) => this.parse(branch, namespace, `${path}/${i}`));
      for (const t of types) {
        if (t.type === 'union') throw bad('a union may not directly contain another union', path);
      }
      return { type: 'union', types };
    }
    if (!isObject(json)) throw bad(`expected a type name, an object or a union array, found ${JSON.stringify(json)}`, path);
    const type = json.type;
    if (Array.isArray(type) || isObject(type)) {
      // {"type": [...]} / {"type": {...}}: the object only wraps the real schema.
      return this.parse(type, namespace, `${path}/type`);
    }
    if (typeof type !== 'string') throw bad('missing "type"', path);
    switch (type) {
      case 'record':
      case 'error':
        return this.record(json, type === 'error', namespace, path);
      case 'enum':
        return this.enumType(json, namespace, path);
      case 'fixed':
        return this.fixed(json, namespace, path);
      case 'array':
        if (!('items' in json)) throw bad('array without "items"', path);
        return { type: 'array', items: this.parse(json.items, namespace, `${path}/items`) };
      case 'map':
        if (!('values' in json)) throw bad('map without "values"', path);
        return { type: 'map', values: this.parse(json.values, namespace, `${path}/values`) };
      default:
        return this.reference(type, namespace, path);
    }
  }

  private reference(name: string, namespace: string | undefined, path: string): AvroSchema {
    if ((AVRO_PRIMITIVES as readonly string[]).includes(name)) return { type: name as AvroPrimitiveType };
    const found = (name.includes('.') ? undefined : this.names.get(qualify(name, namespace))) ?? this.names.get(name);
    if (!found) throw bad(`unknown type "${name}" (named types must be defined before use)`, path);
    return found;
  }

  private named(json: Record<string, unknown>, enclosing: string | undefined, path: string): AvroNamed {
    if (typeof json.name !== 'string' || json.name === '') throw bad('named type without a "name"', path);
    const { name, namespace } = splitName(json.name, enclosing, json.namespace, path);
    if (!NAME_PATTERN.test(name)) throw bad(`illegal name "${name}"`, `${path}/name`);
    const aliasesRaw = json.aliases ?? [];
    if (!Array.isArray(aliasesRaw) || aliasesRaw.some((a) => typeof a !== 'string'))
      throw bad('"aliases" must be an array of strings', `${path}/aliases`);
    const aliases = (aliasesRaw as string[]).map((a) => (a.includes('.') ? a : qualify(a, namespace)));
    return { name, namespace, fullName: qualify(name, namespace), aliases };
  }

  private define<T extends AvroRecord | AvroEnum | AvroFixed>(schema: T, path: string): T {
    if (this.names.has(schema.fullName)) throw bad(`type "${schema.fullName}" is defined twice`, path);
    this.names.set(schema.fullName, schema);
    return schema;
  }

  private record(json: Record<string, unknown>, isError: boolean, enclosing: string | undefined, path: string): AvroRecord {
    const record = this.define<AvroRecord>({ type: 'record', isError, ...this.named(json, enclosing, path), fields: [] }, path);
    if (!Array.isArray(json.fields)) throw bad('record without a "fields" array', path);
    const seen = new Set<string>();
    json.fields.forEach((f: unknown, pos) => {
      const fieldPath = `${path}/fields/${pos}`;
      if (!isObject(f) || typeof f.name !== 'string') throw bad('each field needs a "name"', fieldPath);
      if (!('type' in f)) throw bad(`field "${f.name}" has no "type"`, fieldPath);
      if (seen.has(f.name)) throw bad(`field "${f.name}" is declared twice`, fieldPath);
      seen.add(f.name);
      const aliases = f.aliases ?? [];
      if (!Array.isArray(aliases) || aliases.some((a) => typeof a !== 'string'))
        throw bad('field "aliases" must be an array of strings', fieldPath);
      // Fields' named types take the record's namespace.
      const type = this.parse(f.type, record.namespace, `${fieldPath}/type`);
      record.fields.push({ name: f.name, aliases: aliases as string[], type, hasDefault: 'default' in f, default: f.default, pos });
    });
    return record;
  }

  private enumType(json: Record<string, unknown>, enclosing: string | undefined, path: string): AvroEnum {
    const named = this.named(json, enclosing, path);
    if (!Array.isArray(json.symbols) || json.symbols.some((s) => typeof s !== 'string'))
      throw bad('enum needs a "symbols" array of strings', path);
    const symbols = json.symbols as string[];
    if (new Set(symbols).size !== symbols.length) throw bad('enum symbols must be unique', `${path}/symbols`);
    const def = json.default;
    if (def !== undefined && (typeof def !== 'string' || !symbols.includes(def)))
      throw bad(`enum default ${JSON.stringify(def)} is not one of its symbols`, `${path}/default`);
    return this.define<AvroEnum>({ type: 'enum', ...named, symbols, default: def as string | undefined }, path);
  }

  private fixed(json: Record<string, unknown>, enclosing: string | undefined, path: string): AvroFixed {
    const named = this.named(json, enclosing, path);
    if (typeof json.size !== 'number' || !Number.isInteger(json.size) || json.size < 0)
      throw bad('fixed needs a non-negative integer "size"', path);
    return this.define<AvroFixed>({ type: 'fixed', ...named, size: json.size }, path);
  }
}

/**
 * Parses an Avro schema from its JSON text or already-parsed JSON value.
 * Throws `PARITY_BAD_INPUT` naming the location of the first problem.
 */
export function parseAvroSchema(input: string | unknown): AvroSchema {
  let json: unknown = input;
  if (typeof input === 'string') {
    try {
      json = JSON.parse(input);
    } catch {
      // A bare primitive name ("string") is a valid Avro schema text too.
      if (/^\s*[A-Za-z_][A-Za-z0-9_.]*\s*$/.test(input)) json = input.trim();
      else
        throw new ParityError('PARITY_BAD_INPUT', 'Avro schema is not valid JSON', {
          hint: 'an Avro schema is JSON: a type name string, an object or a union array',
        });
    }
  }
  return new AvroParser().parse(json, undefined, '');
}
