/**
 * Kafka Connect's JsonConverter with `schemas.enable=true`, byte for byte: the `{schema, payload}`
 * document a Debezium connector writes when it runs without a registry. Users without a registry run
 * their Debezium consumers on exactly this (`events.format: connect-json`).
 *
 * What the converter does that matters for exactness (Kafka 4.x, JsonConverter + Jackson defaults):
 * - schema objects carry their keys in a fixed order: type, fields|items|keys+values, optional, name,
 *   version, doc, parameters, default, field;
 * - `bytes` and Decimal values are base64 text (`decimal.format=BASE64`);
 * - int64 is written exactly; floats as Java's `Float.toString`/`Double.toString` (`1.0E300`, `1.5`),
 *   NaN and the infinities as quoted strings (Jackson's QUOTE_NON_NUMERIC_NUMBERS);
 * - `replace.null.with.default=true`: a null value of a field whose schema has a default is written as
 *   the default. This is the converter's default and Debezium users see it (a NULL column with a
 *   default reads back as the default); parity offers it off for consumers that need the NULL.
 * - a map with string keys is a JSON object, any other map an array of `[key, value]` pairs.
 */
import type { ConnectSchema, ConnectValue } from '../../services/core/connect-schema.js';
import { ParityError } from '../../services/core/errors.js';

export interface ConnectJsonOptions {
  /** JsonConverter's `replace.null.with.default` (default true). */
  replaceNullWithDefault?: boolean;
}

/** Java's `Double.toString` (JDK 19+ shortest digits) for a finite double. */
export function javaDoubleText(value: number): string {
  if (Object.is(value, -0)) return '-0.0';
  if (value === 0) return '0.0';
  return javaDecimalText(value, shortestDigits(value, false));
}

/** Java's `Float.toString` for a finite float32 value. */
export function javaFloatText(value: number): string {
  if (Object.is(value, -0)) return '-0.0';
  if (value === 0) return '0.0';
  return javaDecimalText(value, shortestDigits(value, true));
}

/** Shortest decimal digits (and exponent) that read back as `value` (as a float32 when `single`). */
function shortestDigits(value: number, single: boolean): { digits: string; exponent: number } {
  const abs = Math.abs(value);
  let text = abs.toExponential();
  if (single) {
    for (let p = 1; p <= 9; p++) {
      const candidate = abs.toExponential(p - 1);
      if (Math.fround(Number(candidate)) === abs) {
        text = candidate;
        break;
      }
    }
  }
  let [mantissa, exp] = text.split('e') as [string, string];
  let digits = mantissa.replace('.', '').replace(/0+$/, '') || '0';
  if (digits.length === 1) {
    // Java (JDK 19+) picks, when one digit suffices, the closest of the one- and two-digit decimals
    // that round to the value: Float.MIN_VALUE is 1.4E-45, not 1.0E-45.
    const two = abs.toExponential(1);
    if ((single ? Math.fround(Number(two)) : Number(two)) === abs) {
      [mantissa, exp] = two.split('e') as [string, string];
      digits = mantissa.replace('.', '').replace(/0+$/, '') || '0';
    }
  }
  return { digits, exponent: Number(exp) };
}

/** Java's layout of shortest digits: plain for 1e-3 <= |v| < 1e7, else `d.dddE±n`, always a fraction digit. */
function javaDecimalText(value: number, { digits, exponent }: { digits: string; exponent: number }): string {
  const sign = value < 0 ? '-' : '';
  if (exponent >= -3 && exponent < 7) {
    if (exponent >= 0) {
      const intPart = digits.slice(0, exponent + 1).padEnd(exponent + 1, '0');
      const frac = digits.slice(exponent + 1) || '0';
      return `${sign}${intPart}.${frac}`;
    }
    return `${sign}0.${'0'.repeat(-exponent - 1)}${digits}`;
  }
  return `${sign}${digits[0]}.${digits.slice(1) || '0'}E${exponent}`;
}

/** Jackson's string escaping: JSON.stringify's, with upper-case hex in `\u00XX`. */
function jsonString(s: string): string {
  return JSON.stringify(s).replace(/\\u00([0-9a-f]{2})/g, (_, hex: string) => `\\u00${hex.toUpperCase()}`);
}

function floatText(value: number, single: boolean): string {
  if (Number.isNaN(value)) return '"NaN"';
  if (value === Number.POSITIVE_INFINITY) return '"Infinity"';
  if (value === Number.NEGATIVE_INFINITY) return '"-Infinity"';
  return single ? javaFloatText(value) : javaDoubleText(value);
}

function fail(schema: ConnectSchema, value: unknown): never {
  throw new ParityError(
    'PARITY_SERIALIZE',
    `a ${schema.type}${schema.name ? ` (${schema.name})` : ''} value cannot be ${value === null ? 'null' : typeof value}`,
    {
      hint: 'the schema says the field is required or of another type: this is a bug in the schema derivation, report it',
    },
  );
}

/** The JSON text of a Connect value under its schema. */
export function connectValueJson(schema: ConnectSchema, value: ConnectValue | undefined, options: ConnectJsonOptions = {}): string {
  if (value === null || value === undefined) {
    if (schema.default !== undefined && options.replaceNullWithDefault !== false) return connectValueJson(schema, schema.default, options);
    if (!schema.optional) fail(schema, null);
    return 'null';
  }
  switch (schema.type) {
    case 'int8':
    case 'int16':
    case 'int32':
      if (typeof value !== 'number') fail(schema, value);
      return String(value);
    case 'int64':
      if (typeof value !== 'bigint' && typeof value !== 'number') fail(schema, value);
      return value.toString();
    case 'float32':
    case 'float64':
      if (typeof value !== 'number') fail(schema, value);
      return floatText(value, schema.type === 'float32');
    case 'boolean':
      if (typeof value !== 'boolean') fail(schema, value);
      return value ? 'true' : 'false';
    case 'string':
      if (typeof value !== 'string') fail(schema, value);
      return jsonString(value);
    case 'bytes':
      if (!Buffer.isBuffer(value)) fail(schema, value);
      return `"${value.toString('base64')}"`;
    case 'array': {
      if (!Array.isArray(value)) fail(schema, value);
      return `[${value.map((v) => connectValueJson(schema.items!, v, options)).join(',')}]`;
    }
    case 'map': {
      if (!(value instanceof Map)) fail(schema, value);
      if (schema.keys!.type === 'string') {
        return `{${[...value].map(([k, v]) => `${jsonString(String(k))}:${connectValueJson(schema.values!, v, options)}`).join(',')}}`;
      }
      return `[${[...value].map(([k, v]) => `[${connectValueJson(schema.keys!, k, options)},${connectValueJson(schema.values!, v, options)}]`).join(',')}]`;
    }
    case 'struct': {
      if (typeof value !== 'object' || Array.isArray(value) || Buffer.isBuffer(value) || value instanceof Map) fail(schema, value);
      const struct = value as Record<string, ConnectValue>;
      return `{${schema.fields!.map((f) => `${jsonString(f.name)}:${connectValueJson(f.schema, struct[f.name], options)}`).join(',')}}`;
    }
  }
}

/** JsonConverter's names for the float types (the others are Connect's own, lower case). */
const JSON_TYPE_NAMES: Partial<Record<ConnectSchema['type'], string>> = { float32: 'float', float64: 'double' };

/** The JSON text of a schema, as JsonConverter's `asJsonSchema` lays it out; `field` names a struct field. */
export function connectSchemaJson(schema: ConnectSchema, field?: string): string {
  const parts: string[] = [`"type":${jsonString(JSON_TYPE_NAMES[schema.type] ?? schema.type)}`];
  if (schema.type === 'struct') parts.push(`"fields":[${schema.fields!.map((f) => connectSchemaJson(f.schema, f.name)).join(',')}]`);
  if (schema.type === 'array') parts.push(`"items":${connectSchemaJson(schema.items!)}`);
  if (schema.type === 'map') parts.push(`"keys":${connectSchemaJson(schema.keys!)}`, `"values":${connectSchemaJson(schema.values!)}`);
  parts.push(`"optional":${schema.optional}`);
  if (schema.name !== undefined) parts.push(`"name":${jsonString(schema.name)}`);
  if (schema.version !== undefined) parts.push(`"version":${schema.version}`);
  if (schema.doc !== undefined) parts.push(`"doc":${jsonString(schema.doc)}`);
  if (schema.parameters !== undefined) {
    parts.push(
      `"parameters":{${Object.entries(schema.parameters)
        .map(([k, v]) => `${jsonString(k)}:${jsonString(v)}`)
        .join(',')}}`,
    );
  }
  if (schema.default !== undefined) parts.push(`"default":${connectValueJson(schema, schema.default)}`);
  if (field !== undefined) parts.push(`"field":${jsonString(field)}`);
  return `{${parts.join(',')}}`;
}

/** The whole `{"schema":...,"payload":...}` document; null value (a tombstone) stays null. */
export function connectJsonDocument(schema: ConnectSchema, value: ConnectValue, options: ConnectJsonOptions = {}): string {
  return `{"schema":${connectSchemaJson(schema)},"payload":${connectValueJson(schema, value, options)}}`;
}
