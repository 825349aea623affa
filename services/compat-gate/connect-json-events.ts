/**
 * Live checks of topics written with `cdc.format: connect-json` (Kafka Connect's JsonConverter with
 * schemas, `{schema, payload}`): no registry and no wire-format header, the writer schema travels in
 * each event. The live check reads such an event the way Connect's own consumers see it: the embedded
 * Connect schema becomes the Avro schema Confluent's AvroData makes of it (connect-avro.ts), the payload
 * becomes an Avro datum of that schema, and each consumer's reader schema (Avro, or a Kafka Connect
 * schema in JsonConverter's JSON) reads it through Avro's schema resolution, like the registry's events.
 */
import { avroSchemaFromConnect } from '../../connectors/kafka-sink/connect-avro.js';
import { parseConnectJson } from '../../connectors/kafka-sink/debezium-serde.js';
import type { ConnectSchema, ConnectType } from '../core/connect-schema.js';
import { avroDatumType } from './avro-datum.js';

/** One connect-json event: its embedded schema (JSON text as re-serialized: the writer's identity) and payload. */
export interface ConnectJsonEvent {
  schemaText: string;
  payload: unknown;
}

/** A connect-json writer schema, read once per distinct embedded schema. */
export interface ConnectJsonWriter {
  /** The Connect schema's name (`<prefix>.<schema>.<table>.Envelope`), when it has one. */
  schemaName?: string;
  /** The Avro schema AvroData makes of it (JSON text). */
  avroSchema: string;
  /** The payload as Avro binary of `avroSchema`; throws when the payload does not fit its own schema. */
  encode(payload: unknown): Buffer;
}

const CONNECT_TYPES: Record<string, ConnectType> = {
  int8: 'int8',
  int16: 'int16',
  int32: 'int32',
  int64: 'int64',
  float: 'float32',
  double: 'float64',
  boolean: 'boolean',
  string: 'string',
  bytes: 'bytes',
  array: 'array',
  map: 'map',
  struct: 'struct',
};

/**
 * True for a JSON value shaped like JsonConverter's schema: a Connect type name, and `struct` or the
 * `optional` flag JsonConverter always writes (an Avro `{"type": "string"}` has none).
 */
export function isConnectSchemaJson(json: unknown): json is Record<string, unknown> {
  if (json === null || typeof json !== 'object' || Array.isArray(json)) return false;
  const { type, optional } = json as { type?: unknown; optional?: unknown };
  if (typeof type !== 'string' || !(type in CONNECT_TYPES)) return false;
  return type === 'struct' || typeof optional === 'boolean';
}

/** JsonConverter's schema JSON as a Connect schema (the inverse of connect-json.ts's `connectSchemaJson`). */
export function connectSchemaFromJson(json: Record<string, unknown>, where = 'schema'): ConnectSchema {
  const type = CONNECT_TYPES[String(json.type)];
  if (!type) throw new Error(`${where}: ${JSON.stringify(json.type)} is not a Kafka Connect type`);
  const schema: ConnectSchema = { type, optional: json.optional === true };
  if (typeof json.name === 'string') schema.name = json.name;
  if (typeof json.version === 'number') schema.version = json.version;
  if (typeof json.doc === 'string') schema.doc = json.doc;
  if (json.parameters && typeof json.parameters === 'object') schema.parameters = json.parameters as Record<string, string>;
  if (type === 'struct') {
    const fields = json.fields;
    if (!Array.isArray(fields)) throw new Error(`${where}: a struct needs "fields"`);
    schema.fields = (fields as Record<string, unknown>[]).map((f, i) => ({
      name: String(f.field),
      schema: connectSchemaFromJson(f, `${where}.fields[${i}]`),
    }));
  } else if (type === 'array') {
    schema.items = connectSchemaFromJson(json.items as Record<string, unknown>, `${where}.items`);
  } else if (type === 'map') {
    schema.keys = connectSchemaFromJson(json.keys as Record<string, unknown>, `${where}.keys`);
    schema.values = connectSchemaFromJson(json.values as Record<string, unknown>, `${where}.values`);
  }
  if (json.default !== undefined) schema.default = connectDefault(schema, json.default);
  return schema;
}

/** A default as JsonConverter writes it -> the Connect value connect-avro.ts renders (bytes as Buffer). */
function connectDefault(schema: ConnectSchema, value: unknown): ConnectSchema['default'] {
  if (value === null) return null;
  if (schema.type === 'bytes' && typeof value === 'string') return Buffer.from(value, 'base64');
  return value as ConnectSchema['default'];
}

/** A JsonConverter payload value -> the plain avsc value of the Avro schema AvroData makes of `schema`. */
export function avroValueOfConnectJson(schema: ConnectSchema, value: unknown, where = 'payload'): unknown {
  if (value === null || value === undefined) {
    if (schema.optional) return null;
    if (schema.default !== undefined && schema.default !== null) return avroValueOfConnectJson(schema, schema.default, where);
    throw new Error(`${where}: null in a required ${schema.type}`);
  }
  switch (schema.type) {
    case 'int8':
    case 'int16':
    case 'int32':
      if (Number.isInteger(value)) return value;
      break;
    case 'boolean':
      if (typeof value === 'boolean') return value;
      break;
    case 'string':
      if (typeof value === 'string') return value;
      break;
    case 'int64':
      if (typeof value === 'bigint') return value;
      if (Number.isInteger(value)) return BigInt(value as number);
      break;
    case 'float32':
    case 'float64':
      // JsonConverter writes NaN and the infinities as JSON strings.
      if (typeof value === 'number') return value;
      if (typeof value === 'string' && /^(NaN|-?Infinity)$/.test(value)) return Number(value);
      break;
    case 'bytes':
      if (typeof value === 'string') return Buffer.from(value, 'base64');
      break;
    case 'array':
      if (Array.isArray(value)) return value.map((v, i) => avroValueOfConnectJson(schema.items!, v, `${where}[${i}]`));
      break;
    case 'map': {
      const stringKeys = schema.keys!.type === 'string' && !schema.keys!.optional;
      if (stringKeys && typeof value === 'object' && !Array.isArray(value)) {
        return Object.fromEntries(
          Object.entries(value as Record<string, unknown>).map(([k, v]) => [k, avroValueOfConnectJson(schema.values!, v, `${where}.${k}`)]),
        );
      }
      // Other keys: JsonConverter writes [[key, value], ...], AvroData an array of {key, value} records.
      if (!stringKeys && Array.isArray(value)) {
        return (value as unknown[][]).map(([k, v], i) => ({
          key: avroValueOfConnectJson(schema.keys!, k, `${where}[${i}].key`),
          value: avroValueOfConnectJson(schema.values!, v, `${where}[${i}].value`),
        }));
      }
      break;
    }
    case 'struct':
      if (typeof value === 'object' && !Array.isArray(value)) {
        const row = value as Record<string, unknown>;
        return Object.fromEntries(schema.fields!.map((f) => [f.name, avroValueOfConnectJson(f.schema, row[f.name], `${where}.${f.name}`)]));
      }
      break;
  }
  throw new Error(`${where}: ${JSON.stringify(typeof value === 'bigint' ? String(value) : value)} is not a ${schema.type}`);
}

/**
 * Reads a Kafka message value as a connect-json event, or undefined when it is not one (not JSON, or
 * JSON without a Connect `schema` and a `payload`).
 */
export function parseConnectJsonEvent(value: Buffer): ConnectJsonEvent | undefined {
  if (value.length < 2 || value[0] !== 0x7b) return undefined;
  let doc: unknown;
  try {
    doc = parseConnectJson(value.toString('utf8'));
  } catch {
    return undefined;
  }
  if (doc === null || typeof doc !== 'object' || !('schema' in doc) || !('payload' in doc)) return undefined;
  const { schema, payload } = doc as { schema: unknown; payload: unknown };
  if (!isConnectSchemaJson(schema)) return undefined;
  return { schemaText: JSON.stringify(schema, (_k, v: unknown) => (typeof v === 'bigint' ? Number(v) : v)), payload };
}

/** The writer of an embedded schema (`ConnectJsonEvent.schemaText`); a schema it cannot read fails each `encode`. */
export function connectJsonWriter(schemaText: string): ConnectJsonWriter {
  let schema: ConnectSchema;
  let avroSchema: string;
  let type: ReturnType<typeof avroDatumType>;
  try {
    schema = connectSchemaFromJson(JSON.parse(schemaText) as Record<string, unknown>);
    const avro = avroSchemaFromConnect(schema);
    avroSchema = JSON.stringify(avro);
    type = avroDatumType(avro, false);
  } catch (err) {
    const reason = err instanceof Error ? err.message : String(err);
    return {
      avroSchema: '"null"',
      encode: () => {
        throw new Error(`the embedded schema cannot be read: ${reason}`);
      },
    };
  }
  return {
    ...(schema.name !== undefined ? { schemaName: schema.name } : {}),
    avroSchema,
    encode: (payload) => type.toBuffer(avroValueOfConnectJson(schema, payload)),
  };
}

/**
 * A consumer's reader schema for a connect-json topic as Avro JSON: an Avro schema as it is, a Kafka
 * Connect schema (JsonConverter's JSON, `{"type": "struct", ...}`) as AvroData renders it.
 */
export function readerAvroSchema(readerSchema: string): string {
  const json = JSON.parse(readerSchema) as unknown;
  if (isConnectSchemaJson(json)) return JSON.stringify(avroSchemaFromConnect(connectSchemaFromJson(json, 'reader schema')));
  return readerSchema;
}
