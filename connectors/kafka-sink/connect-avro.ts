/**
 * Connect schema -> Avro schema, with the conventions of Confluent's AvroData (`connect.meta.data`
 * on, `enhanced.avro.schema.support` off), which is what Debezium users' Avro converters write and
 * read back: `connect.name`, `connect.version`, `connect.parameters`, `connect.default`, `connect.doc`
 * and `connect.type` properties carry what Avro cannot say; Decimal becomes the `decimal` logical type
 * (precision 64 when the Connect schema names none); Connect's Date/Time/Timestamp become `date`,
 * `time-millis`, `timestamp-millis`; an optional type is a union with null first (null second when it
 * has a default, so the default stays legal); a struct is a record named after the schema (or
 * `io.confluent.connect.avro.ConnectDefault`), and a record seen twice is referenced by name.
 *
 * Values: Connect values map onto avsc's (int64 stays a bigint through {@link avroLongType}).
 */
import {
  CONNECT_DATE,
  CONNECT_DECIMAL,
  CONNECT_TIME,
  CONNECT_TIMESTAMP,
  type ConnectSchema,
  type ConnectValue,
  DECIMAL_PRECISION_PARAMETER,
} from '../../services/core/connect-schema.js';

const DEFAULT_NAMESPACE = 'io.confluent.connect.avro';
const DEFAULT_NAME = 'ConnectDefault';
const DEFAULT_DECIMAL_PRECISION = 64;

type AvroSchema = string | Record<string, unknown> | AvroSchema[];

function splitName(full: string): [string | undefined, string] {
  const dot = full.lastIndexOf('.');
  return dot < 0 ? [undefined, full] : [full.slice(0, dot), full.slice(dot + 1)];
}

/** A Connect default as Avro's JSON default (bytes as ISO-8859-1 text, int64 as a number). */
export function avroDefaultJson(schema: ConnectSchema, value: ConnectValue): unknown {
  if (value === null) return null;
  switch (schema.type) {
    case 'int64':
      return typeof value === 'bigint' ? Number(value) : value;
    case 'bytes':
      return Buffer.isBuffer(value) ? value.toString('latin1') : value;
    case 'array':
      return (value as ConnectValue[]).map((v) => avroDefaultJson(schema.items!, v));
    case 'map':
      return Object.fromEntries(
        [...(value as Map<ConnectValue, ConnectValue>)].map(([k, v]) => [String(k), avroDefaultJson(schema.values!, v)]),
      );
    case 'struct':
      return Object.fromEntries(
        schema.fields!.map((f) => [f.name, avroDefaultJson(f.schema, (value as Record<string, ConnectValue>)[f.name] ?? null)]),
      );
    default:
      return value;
  }
}

/** Converts one Connect schema; `seen` holds the full names of records already written. */
function convert(schema: ConnectSchema, seen: Set<string>, ignoreOptional: boolean): AvroSchema {
  const [namespace, name] = schema.name === undefined ? [DEFAULT_NAMESPACE, DEFAULT_NAME] : splitName(schema.name);
  let base: Record<string, unknown>;
  let connectType: string | undefined;
  switch (schema.type) {
    case 'int8':
    case 'int16':
      connectType = schema.type;
      base = { type: 'int' };
      break;
    case 'int32':
      base = { type: 'int' };
      break;
    case 'int64':
      base = { type: 'long' };
      break;
    case 'float32':
      base = { type: 'float' };
      break;
    case 'float64':
      base = { type: 'double' };
      break;
    case 'boolean':
    case 'string':
    case 'bytes':
      base = { type: schema.type };
      break;
    case 'array':
      base = { type: 'array', items: convert(schema.items!, seen, false) };
      break;
    case 'map':
      if (schema.keys!.type === 'string' && !schema.keys!.optional) base = { type: 'map', values: convert(schema.values!, seen, false) };
      else {
        const entry = {
          type: 'record',
          name: 'MapEntry',
          namespace,
          fields: [
            { name: 'key', type: convert(schema.keys!, seen, false), ...(schema.keys!.optional ? { default: null } : {}) },
            { name: 'value', type: convert(schema.values!, seen, false), ...(schema.values!.optional ? { default: null } : {}) },
          ],
        };
        base = { type: 'array', items: entry };
      }
      break;
    case 'struct': {
      if (schema.optional && !ignoreOptional) return ['null', convert({ ...schema, optional: false }, seen, false)];
      const fullName = namespace ? `${namespace}.${name}` : name;
      if (seen.has(fullName)) return fullName;
      seen.add(fullName);
      base = {
        type: 'record',
        name,
        ...(namespace ? { namespace } : {}),
        fields: schema.fields!.map((f) => {
          const field: Record<string, unknown> = { name: f.name, type: convert(f.schema, seen, false) };
          if (f.schema.default !== undefined) field.default = avroDefaultJson(f.schema, f.schema.default);
          else if (f.schema.optional) field.default = null;
          return field;
        }),
      };
      break;
    }
  }
  if (schema.doc !== undefined) base['connect.doc'] = schema.doc;
  if (schema.version !== undefined) base['connect.version'] = schema.version;
  if (schema.parameters !== undefined && Object.keys(schema.parameters).length > 0) base['connect.parameters'] = { ...schema.parameters };
  if (schema.default !== undefined && schema.type !== 'struct') base['connect.default'] = avroDefaultJson(schema, schema.default);
  if (schema.name !== undefined) base['connect.name'] = schema.name;
  if (connectType !== undefined) base['connect.type'] = connectType;
  if (schema.name === CONNECT_DECIMAL) {
    const precisionText = schema.parameters?.[DECIMAL_PRECISION_PARAMETER];
    const precision = precisionText === undefined ? DEFAULT_DECIMAL_PRECISION : Number(precisionText);
    const scale = Number(schema.parameters?.scale ?? 0);
    base.scale = scale;
    base.precision = precision;
    if (scale >= 0 && scale <= precision) base.logicalType = 'decimal';
  } else if (schema.name === CONNECT_DATE) base.logicalType = 'date';
  else if (schema.name === CONNECT_TIME) base.logicalType = 'time-millis';
  else if (schema.name === CONNECT_TIMESTAMP) base.logicalType = 'timestamp-millis';
  const simple = Object.keys(base).length === 1 ? (base.type as string) : base;
  if (!schema.optional || ignoreOptional) return simple;
  return schema.default !== undefined ? [simple, 'null'] : ['null', simple];
}

/** The Avro schema (as JSON) of a Connect schema, the way Confluent's AvroData writes it. */
export function avroSchemaFromConnect(schema: ConnectSchema): AvroSchema {
  return convert(schema, new Set(), false);
}
