/**
 * Change-event serialization through the schema registry, both directions, Confluent wire format
 * (magic byte 0, 4-byte schema id, payload). This is the stable API the reconciler, the cache versioner
 * and downstream consumers import; the CDC sink uses the encoder.
 *
 * Producer side, two encodings (services/core/table-shape.ts `EventEncoding`): exact-text (the values
 * below; Avro, JSON Schema or Protobuf) and Debezium's (Connect schemas and values, debezium-serde.ts;
 * Avro or Kafka Connect's JsonConverter). The decoder reads both, every format, and hands consumers
 * the values below whichever encoding wrote them.
 *
 * ## JS values in `envelope.before` / `envelope.after` and in `key`
 *
 * | PostgreSQL type                                   | JS value                                              |
 * |---------------------------------------------------|-------------------------------------------------------|
 * | bool                                              | `boolean`                                             |
 * | int2, int4                                        | `number`                                              |
 * | int8, oid, xid8                                   | `string`, exact decimal ("9223372036854775807")        |
 * | float4, float8                                    | `number`, including `NaN`, `Infinity`, `-Infinity`, `-0`; the value of PostgreSQL's shortest exact text (float4 `1.1` is `1.1`) |
 * | numeric                                           | `string`, exact text with its scale ("12.50", "NaN")   |
 * | text, varchar, char(n)                            | `string` (char(n) keeps its blank padding)             |
 * | date, time, timetz, timestamp, timestamptz, interval | `string`, PostgreSQL's exact text, ISO DateStyle, timestamptz in UTC ("2024-05-01 12:00:00.123456+00"), microseconds kept |
 * | uuid                                              | `string`, lower case                                   |
 * | json, jsonb                                       | `string`, PostgreSQL's text of the value (jsonb normalized by PostgreSQL, json as written) |
 * | bytea                                             | `string`, base64                                       |
 * | enum, domain over text, inet, money, xml, other   | `string`, PostgreSQL's text (a domain decodes as its base type) |
 * | one-dimensional array of any of the above         | `Array` of those values, `null` for NULL elements      |
 * | NULL                                              | `null`                                                 |
 * | unchanged TOASTed value (not sent by PostgreSQL)  | the string `UNCHANGED_TOAST` ("__debezium_unavailable_value"), never `undefined` |
 *
 * `envelope.source.ts_ms`, `ts_us`, `lsn` and `txId` are numbers. The position (dedupe key) comes
 * from the `parity.position` header (see services/core/change-event.ts).
 */
import avsc from 'avsc';
import type { SchemaRegistry } from '@kafkajs/confluent-schema-registry';
import { ParityError } from '../../services/core/errors.js';
import {
  type ChangeEnvelope,
  type Row,
  positionFromHeaders,
  positionFromSequence,
  positionHeaders,
} from '../../services/core/change-event.js';
import type { Position } from '../../services/core/lsn.js';
import type { RegistryClient, SchemaFormat } from './registry-client.js';
import { type TableShape, shapeFingerprint, stableJson } from '../../services/core/table-shape.js';
import type { ConnectSchema, ConnectStruct } from '../../services/core/connect-schema.js';
import { avroSchemaFromConnect } from './connect-avro.js';
import {
  MESSAGE_KEY_SCHEMA,
  SOURCE_SCHEMA,
  TRANSACTION_KEY_SCHEMA,
  TRANSACTION_VALUE_SCHEMA,
  messageValueSchema,
} from './debezium-envelope.js';
import {
  ConnectJsonWriter,
  type DebeziumSchemas,
  type FieldNameAdjustment,
  type FieldType,
  avroValue,
  debeziumAvroSchemas,
  debeziumSchemas,
  envelopeNullDefaults,
  exactRow,
  exactValue,
  fieldTypeOfAvro,
  fieldTypeOfConnectJson,
  hasMap,
  parseConnectJson,
  registeredOptionalFields,
  renamedRow,
} from './debezium-serde.js';
import { connectValueJson } from './connect-json.js';
import { writeEnvelope } from './avro-envelope.js';
import { type DebeziumAvroWriter, compileAvroWriter, debeziumAvroWriterFromEnv } from './debezium-writer.js';
import { protobufChangeReader, protobufTableWriter, registrySchemaById } from './protobuf-encode.js';
import { COLUMN_DOC_PREFIX, avroFieldName, avroKeySchema, avroValueSchema, jsonKeySchema, jsonValueSchema } from './value-schema.js';

export type { ChangeEnvelope, Row } from '../../services/core/change-event.js';
export type { Position } from '../../services/core/lsn.js';
export type { ColumnShape, TableShape, ValueKind } from '../../services/core/table-shape.js';
export { tableShape } from '../../services/core/table-shape.js';
export { createRegistryClient, type RegistryClient, type SchemaFormat } from './registry-client.js';

const MAGIC_BYTE = 0;

/** One change read back from Kafka. */
export interface DecodedChange {
  topic: string;
  /** The partition, from the message or as the caller passed it to `decode`; else -1. */
  partition: number;
  offset: string;
  /** The Kafka message timestamp (when the producer created it), milliseconds. */
  timestampMs: number;
  /** The primary-key row, or null (a TRUNCATE event has no key). */
  key: Row | null;
  envelope: ChangeEnvelope;
  /** (commit LSN, ordinal): unique per change, the dedupe key and the resume position. */
  position: Position;
}

/** Zig-zag varint bytes of an Avro long; safe integers without BigInt (the common case). */
const LONG_SCRATCH = Buffer.alloc(10);
const FAST_LIMIT = 2 ** 52;

const FAST_LIMIT_BIG = BigInt(FAST_LIMIT);
const LOW_35 = 2n ** 35n - 1n;

/** The zig-zag varint bytes of an Avro long (a view of a scratch buffer: copy it to keep it). */
export function writeLong(value: string | number | bigint): Buffer {
  // Longs past 2^52 are timestamps in nanoseconds: the commit's (same for a whole transaction) and the
  // processing time's (same within a millisecond). Their bytes are kept for the next event.
  if (typeof value === 'bigint' && (value >= FAST_LIMIT_BIG || value <= -FAST_LIMIT_BIG)) {
    const slot = value === bigSlots[0].value ? bigSlots[0] : value === bigSlots[1].value ? bigSlots[1] : null;
    if (slot) return slot.bytes;
    const bytes = Buffer.from(longBytes(value));
    bigSlots[nextSlot] = { value, bytes };
    nextSlot = 1 - nextSlot;
    return bytes;
  }
  return longBytes(value);
}

const bigSlots: [{ value: bigint; bytes: Buffer }, { value: bigint; bytes: Buffer }] = [
  { value: 0n, bytes: Buffer.of(0) },
  { value: 0n, bytes: Buffer.of(0) },
];
let nextSlot = 0;

function longBytes(value: string | number | bigint): Buffer {
  let n: number | null = null;
  if (typeof value === 'number') n = value;
  else if (typeof value === 'bigint') {
    if (value < FAST_LIMIT_BIG && value > -FAST_LIMIT_BIG) n = Number(value);
  } else if (value.length < 16) n = Number(value);
  let len = 0;
  if (n !== null && Number.isInteger(n) && Math.abs(n) < FAST_LIMIT) {
    let z = n >= 0 ? n * 2 : -n * 2 - 1;
    while (z >= 0x80) {
      LONG_SCRATCH[len++] = (z % 0x80) | 0x80;
      z = Math.floor(z / 0x80);
    }
    LONG_SCRATCH[len++] = z;
  } else {
    // Past 2^52 (Debezium's ts_ns on every event): the zig-zag value in BigInt once, then its low 35 bits
    // (five varint groups) and the rest as numbers, instead of a BigInt shift and mask per group.
    const b = BigInt(value);
    const z = b >= 0n ? b << 1n : (-b << 1n) - 1n;
    let low = Number(z & LOW_35);
    let high = Number(z >> 35n);
    if (high === 0) {
      while (low >= 0x80) {
        LONG_SCRATCH[len++] = (low % 0x80) | 0x80;
        low = Math.floor(low / 0x80);
      }
      LONG_SCRATCH[len++] = low;
    } else {
      for (let i = 0; i < 5; i++) {
        LONG_SCRATCH[len++] = (low % 0x80) | 0x80;
        low = Math.floor(low / 0x80);
      }
      while (high >= 0x80) {
        LONG_SCRATCH[len++] = (high % 0x80) | 0x80;
        high = Math.floor(high / 0x80);
      }
      LONG_SCRATCH[len++] = high;
    }
  }
  return LONG_SCRATCH.subarray(0, len);
}

/** An Avro long's varint bytes back to its exact decimal text. */
export function readLong(buf: Buffer): string {
  if (buf.length <= 7) {
    let z = 0;
    let mul = 1;
    for (let i = 0; i < buf.length; i++) {
      z += (buf[i]! & 0x7f) * mul;
      mul *= 0x80;
    }
    return String(z % 2 === 0 ? z / 2 : -(z + 1) / 2);
  }
  let z = 0n;
  for (let i = buf.length - 1; i >= 0; i--) z = (z << 7n) | BigInt(buf[i]! & 0x7f);
  return ((z & 1n) === 0n ? z >> 1n : -((z + 1n) >> 1n)).toString();
}

/**
 * Avro `long` carried as an exact decimal string in JS (int8 columns), written from a string, number or
 * bigint. Every long in our schemas goes through it; the decoder turns the envelope's own longs back
 * into numbers. `noUnpack`: avsc hands over the varint bytes themselves (no 8-byte repacking).
 */
const INT8_AS_STRING = avsc.types.LongType.__with(
  {
    fromBuffer: readLong,
    toBuffer: writeLong,
    fromJSON: (value: unknown) => String(value),
    toJSON: (value: string) => Number(value),
    isValid: (value: unknown) =>
      (typeof value === 'string' && /^-?\d+$/.test(value)) ||
      (typeof value === 'number' && Number.isSafeInteger(value)) ||
      typeof value === 'bigint',
    compare: (a: string, b: string) => {
      const x = BigInt(a);
      const y = BigInt(b);
      return x < y ? -1 : x > y ? 1 : 0;
    },
  },
  true,
);

const AVRO_PRIMITIVES = new Set(['null', 'boolean', 'int', 'long', 'float', 'double', 'bytes', 'string']);

/**
 * `schema` with every primitive written as its bare name: a `{"type": "long", "connect.name": ...}`
 * (Connect's attributes, connect-avro.ts) would otherwise get avsc's own long type instead of the
 * registry's exact one. The attributes change nothing in the binary encoding; nor does a logical type,
 * which avsc is given no implementation of: Connect's Timestamp (`timestamp-millis`, a bigint) kept
 * as avsc's own long was refused on every event (`time.precision.mode: connect`).
 */
export function barePrimitives(schema: unknown): unknown {
  if (Array.isArray(schema)) return schema.map(barePrimitives);
  if (schema === null || typeof schema !== 'object') return schema;
  const s = schema as Record<string, unknown>;
  if (typeof s.type === 'string' && AVRO_PRIMITIVES.has(s.type)) return s.type;
  if (s.type === 'record' || s.type === 'error')
    return { ...s, fields: (s.fields as Record<string, unknown>[]).map((f) => ({ ...f, type: barePrimitives(f.type) })) };
  if (s.type === 'array') return { ...s, items: barePrimitives(s.items) };
  if (s.type === 'map') return { ...s, values: barePrimitives(s.values) };
  if (typeof s.type === 'object') return { ...s, type: barePrimitives(s.type) };
  return s;
}

/** The avsc type serde uses for `schema` (int8 longs carried as exact decimal strings). */
export function avroType(schema: unknown): avsc.Type {
  return avsc.Type.forSchema(barePrimitives(schema) as avsc.Schema, {
    registry: { long: INT8_AS_STRING } as unknown as Record<string, avsc.Type>,
    wrapUnions: 'auto',
  });
}

function frame(schemaId: number, payload: Buffer): Buffer {
  const out = Buffer.allocUnsafe(5 + payload.length);
  out.writeUInt8(MAGIC_BYTE, 0);
  out.writeUInt32BE(schemaId, 1);
  payload.copy(out, 5);
  return out;
}

let scratch = Buffer.allocUnsafe(64 * 1024);

/**
 * Runs `write` over the shared scratch buffer (the payload after the 5-byte wire header) and returns the
 * framed copy: one allocation, one copy. `write` returns the end, a negative number when the scratch is
 * too small (minus the missing bytes, or -1 when unknown: it doubles), or null to give up.
 */
function framed(schemaId: number, write: (buf: Buffer) => number | null): Buffer | null {
  for (;;) {
    const end = write(scratch);
    if (end === null) return null;
    if (end > 0) {
      const out = Buffer.allocUnsafe(end);
      scratch.copy(out, 0, 0, end);
      out.writeUInt8(MAGIC_BYTE, 0);
      out.writeUInt32BE(schemaId, 1);
      return out;
    }
    scratch = Buffer.allocUnsafe(Math.max(scratch.length * 2, scratch.length - end + 5));
  }
}

/** Avro-encodes `value` after the 5-byte wire header. */
function frameAvro(schemaId: number, type: avsc.Type, value: unknown): Buffer {
  return framed(schemaId, (buf) => type.encode(value, buf, 5))!;
}

/** The envelope through the fast path (avro-envelope.ts); null when it needs avsc's general path. */
function frameEnvelope(schemaId: number, rowType: avsc.Type, envelope: ChangeEnvelope): Buffer | null {
  return framed(schemaId, (buf) => {
    try {
      return writeEnvelope(rowType, envelope, buf, 5);
    } catch {
      return null; // a row avsc refuses: the general path says which field
    }
  });
}

// ---------------------------------------------------------------------------------------------------
// Producer side

/** The event formats: the registry's three, and Kafka Connect's JsonConverter (no registry). */
export type EventFormat = SchemaFormat | 'connect-json';

/** Encodes one table's keys and envelopes with its registered schemas. */
export interface TableEncoder {
  readonly shape: TableShape;
  readonly format: EventFormat;
  /** Null for a keyless table, and for connect-json (no registry). */
  readonly keySchemaId: number | null;
  /** 0 for connect-json (no registry). */
  readonly valueSchemaId: number;
  /**
   * Debezium encoding: the Connect schemas, the key as Debezium's key-change headers write it, and
   * (`provide.transaction.metadata`) the transaction topic's encoder.
   */
  readonly debezium?: { schemas: DebeziumSchemas; keyHeader(key: Row): string; transactions?: ConnectRecordEncoder };
  /** Null for a keyless table or a TRUNCATE event. */
  encodeKey(key: Row | null): Buffer | null;
  /** Exact-text: the ChangeEnvelope; debezium: the envelope struct of debezium-envelope.ts. */
  encodeValue(envelope: ChangeEnvelope | ConnectStruct): Buffer;
}

export interface ChangeEncoder {
  /**
   * Registers the key and value schemas of `shape` under `<topic>-key` / `<topic>-value`
   * (TopicNameStrategy) once per distinct shape, and returns its encoder. Throws
   * PARITY_SCHEMA_REJECTED when the registry refuses the schema (e.g. incompatible change).
   */
  forTable(shape: TableShape): Promise<TableEncoder>;
  /**
   * Debezium's logical-decoding message topic (debezium encoding): its records' encoder (Avro: the
   * schemas registered under `<topic>-key` / `<topic>-value` at the first call) and, with
   * `transactionTopic`, the transaction topic's encoder. `content` follows `binary.handling.mode`.
   */
  forMessages(topic: string, content: 'bytes' | 'string'): Promise<MessageEncoder>;
}

/** The encoders a logical decoding message needs. */
export interface MessageEncoder {
  messages: ConnectRecordEncoder;
  transactions?: ConnectRecordEncoder;
}

export interface ChangeEncoderOptions {
  registry: RegistryClient;
  format: EventFormat;
  /** Debezium's `field.name.adjustment.mode` (debezium encoding). */
  fieldNameAdjustment?: FieldNameAdjustment;
  /**
   * Debezium's transaction-metadata topic (`provide.transaction.metadata`): every Debezium-encoded
   * table's encoder then carries the encoder of its BEGIN/END records.
   */
  transactionTopic?: string;
  /**
   * How the debezium encoding's Avro is written: `compiled` (debezium-writer.ts, the default) or
   * `avsc` (the reference it is tested against). Default: PARITY_DEBEZIUM_WRITER, else compiled.
   */
  debeziumAvroWriter?: DebeziumAvroWriter;
}

/** Encodes the records of a topic whose key and value are fixed Connect schemas (the transaction topic). */
export interface ConnectRecordEncoder {
  readonly topic: string;
  encodeKey(key: ConnectStruct): Buffer;
  encodeValue(value: ConnectStruct): Buffer;
}

/** A fixed-schema topic's encoder: Avro registered under `<topic>-key` / `<topic>-value`, or JsonConverter. */
async function connectRecordEncoder(
  options: ChangeEncoderOptions,
  topic: string,
  keySchema: ConnectSchema,
  valueSchema: ConnectSchema,
): Promise<ConnectRecordEncoder> {
  if (options.format === 'connect-json') {
    const keys = new ConnectJsonWriter(keySchema);
    const values = new ConnectJsonWriter(valueSchema);
    return { topic, encodeKey: (k) => keys.write(k), encodeValue: (v) => values.write(v) };
  }
  const keyAvro = avroSchemaFromConnect(keySchema);
  const valueAvro = avroSchemaFromConnect(valueSchema);
  const keyId = await options.registry.register(`${topic}-key`, keyAvro, 'avro');
  const valueId = await options.registry.register(`${topic}-value`, valueAvro, 'avro');
  const keyType = avroType(keyAvro);
  const valueType = avroType(valueAvro);
  return {
    topic,
    encodeKey: (k) => frameAvro(keyId, keyType, avroValue(keySchema, k)),
    encodeValue: (v) => frameAvro(valueId, valueType, avroValue(valueSchema, v)),
  };
}

export function createChangeEncoder(givenOptions: ChangeEncoderOptions): ChangeEncoder {
  const options = { ...givenOptions, debeziumAvroWriter: givenOptions.debeziumAvroWriter ?? debeziumAvroWriterFromEnv() };
  const cache = new Map<string, Promise<TableEncoder>>();
  let transactions: Promise<ConnectRecordEncoder> | null = null;
  const transactionEncoder = (): Promise<ConnectRecordEncoder> | null => {
    if (!options.transactionTopic) return null;
    if (!transactions) {
      transactions = connectRecordEncoder(options, options.transactionTopic, TRANSACTION_KEY_SCHEMA, TRANSACTION_VALUE_SCHEMA);
      transactions.catch(() => (transactions = null));
    }
    return transactions;
  };
  let messages: Promise<MessageEncoder> | null = null;
  return {
    forMessages(topic, content) {
      if (!messages) {
        messages = (async () => {
          const pendingTransactions = transactionEncoder();
          const encoder = await connectRecordEncoder(options, topic, MESSAGE_KEY_SCHEMA, messageValueSchema(content));
          return pendingTransactions ? { messages: encoder, transactions: await pendingTransactions } : { messages: encoder };
        })();
        // A rejected registration must be retried later, not remembered.
        messages.catch(() => (messages = null));
      }
      return messages;
    },
    forTable(shape) {
      const fp = shapeFingerprint(shape);
      let pending = cache.get(fp);
      if (!pending) {
        pending = buildEncoder(options, shape, transactionEncoder);
        // A rejected registration must be retried later, not remembered.
        pending.catch(() => cache.delete(fp));
        cache.set(fp, pending);
      }
      return pending;
    },
  };
}

/** A Debezium-encoded table: Connect schemas as Avro through the registry, or as JsonConverter documents. */
async function buildDebeziumEncoder(
  options: ChangeEncoderOptions,
  shape: TableShape,
  transactionEncoder: () => Promise<ConnectRecordEncoder> | null,
): Promise<TableEncoder> {
  const { registry, format } = options;
  const pendingTransactions = transactionEncoder();
  const transactions = pendingTransactions ? await pendingTransactions : undefined;
  // A field the value subject already holds as optional stays optional (SET NOT NULL would otherwise
  // narrow it, which BACKWARD and FULL refuse): the registry is the record of what consumers were promised.
  const registered = format === 'avro' && registry.latest ? await registry.latest(`${shape.topic}-value`) : null;
  const keepOptional = registered ? registeredOptionalFields(registered.schema) : undefined;
  const schemas = debeziumSchemas(shape, options.fieldNameAdjustment ?? 'none', keepOptional);
  const { renames } = schemas;
  const keyHeader = (key: Row): string => connectValueJson(schemas.key!, renamedRow(key, renames) as ConnectStruct);
  const renamedEnvelope = (e: ConnectStruct): ConnectStruct =>
    renames.size === 0
      ? e
      : {
          ...e,
          before: renamedRow(e.before as Row | null, renames) as ConnectStruct,
          after: renamedRow(e.after as Row | null, renames) as ConnectStruct,
        };
  if (format === 'connect-json') {
    const keyWriter = schemas.key ? new ConnectJsonWriter(schemas.key) : null;
    const valueWriter = new ConnectJsonWriter(schemas.envelope);
    return {
      shape,
      format,
      keySchemaId: null,
      valueSchemaId: 0,
      debezium: { schemas, keyHeader, ...(transactions ? { transactions } : {}) },
      encodeKey: (key) => (key && keyWriter ? keyWriter.write(renamedRow(key, renames) as ConnectStruct) : null),
      encodeValue: (envelope) => valueWriter.write(renamedEnvelope(envelope as ConnectStruct)),
    };
  }
  if (format !== 'avro') {
    throw new ParityError('PARITY_BAD_INPUT', `cdc.format ${format} does not carry the debezium encoding`, {
      retriable: false,
      hint: 'write cdc.format: avro or connect-json, or cdc.encoding: exact-text',
    });
  }
  // Debezium's default (`none`) keeps column names as they are; one Avro cannot name is a configuration
  // problem, said once, not a registry refusal retried forever.
  const invalid = schemas.row.fields!.find((f) => !/^[A-Za-z_][A-Za-z0-9_]*$/.test(f.name));
  if (invalid) {
    throw new ParityError(
      'PARITY_BAD_INPUT',
      `column ${JSON.stringify(invalid.name)} of ${shape.schema}.${shape.table} is not a valid Avro field name`,
      {
        retriable: false,
        hint: 'set cdc.debezium."field.name.adjustment.mode" to avro or avro_unicode (as Debezium needs for such columns), or use cdc.format: connect-json',
      },
    );
  }
  const avro = debeziumAvroSchemas(schemas);
  const valueSchemaId = await registry.register(`${shape.topic}-value`, avro.value, 'avro');
  const keySchemaId = avro.key ? await registry.register(`${shape.topic}-key`, avro.key, 'avro') : null;
  const keyType = avro.key ? avroType(avro.key) : null;
  const valueType = avroType(avro.value);
  // The hot path hands avsc the Connect values as they are; only maps (hstore.handling.mode: map) need a copy.
  const copyKey = schemas.key !== null && hasMap(schemas.key);
  const copyValue = hasMap(schemas.envelope);
  // AvroData writes a NULL column that has a default as the default (Connect's Struct.get), as JsonConverter does.
  const nullDefaults = envelopeNullDefaults(schemas.row);
  // The hand-written writers, compiled from the very schemas registered above; an event they cannot
  // write (null) goes through avsc, which writes it or names the column that does not fit.
  const compiled = options.debeziumAvroWriter !== 'avsc';
  const keyWriter = compiled && avro.key ? compileAvroWriter(avro.key) : null;
  // The envelope's and the source block's strings (op, names, snapshot marker) repeat from event to event.
  const valueWriter = compiled ? compileAvroWriter(avro.value, new Set([schemas.envelope.name!, SOURCE_SCHEMA.name!])) : null;
  return {
    shape,
    format,
    keySchemaId,
    valueSchemaId,
    debezium: { schemas, keyHeader, ...(transactions ? { transactions } : {}) },
    encodeKey(key) {
      if (!key || keySchemaId === null || !keyType || !schemas.key) return null;
      const value = renamedRow(key, renames) as ConnectStruct;
      return (
        keyWriter?.frame(keySchemaId, value) ??
        encodeAvro(keySchemaId, keyType, copyKey ? avroValue(schemas.key, value) : value, shape, 'key')
      );
    },
    encodeValue(envelope) {
      const value = nullDefaults(renamedEnvelope(envelope as ConnectStruct));
      return (
        valueWriter?.frame(valueSchemaId, value) ??
        encodeAvro(valueSchemaId, valueType, copyValue ? avroValue(schemas.envelope, value) : value, shape, 'value')
      );
    },
  };
}

async function buildEncoder(
  options: ChangeEncoderOptions,
  shape: TableShape,
  transactionEncoder: () => Promise<ConnectRecordEncoder> | null,
): Promise<TableEncoder> {
  if (shape.encoding === 'debezium') return buildDebeziumEncoder(options, shape, transactionEncoder);
  const { registry } = options;
  if (options.format === 'connect-json') {
    throw new ParityError('PARITY_BAD_INPUT', 'cdc.format connect-json carries the debezium encoding only', {
      retriable: false,
      hint: 'write cdc.encoding: debezium, or cdc.format: avro, json or protobuf',
    });
  }
  const format: SchemaFormat = options.format;
  const hasKey = shape.keyColumns.length > 0;
  if (format === 'protobuf') {
    const writer = protobufTableWriter(shape);
    const valueSchemaId = await registry.register(`${shape.topic}-value`, writer.valueSchema, 'protobuf');
    const keySchemaId = hasKey ? await registry.register(`${shape.topic}-key`, writer.keySchema, 'protobuf') : null;
    return {
      shape,
      format,
      keySchemaId,
      valueSchemaId,
      encodeKey: (key) => (!key || keySchemaId === null ? null : writer.encodeKey(keySchemaId, key)),
      encodeValue: (envelope) => writer.encodeValue(valueSchemaId, envelope as ChangeEnvelope),
    };
  }
  if (format === 'avro') {
    const keySchema = avroKeySchema(shape);
    const valueSchema = avroValueSchema(shape);
    const valueSchemaId = await registry.register(`${shape.topic}-value`, valueSchema, 'avro');
    const keySchemaId = hasKey ? await registry.register(`${shape.topic}-key`, keySchema, 'avro') : null;
    const keyType = avroType(keySchema);
    const valueType = avroType(valueSchema);
    // The row record alone (the envelope's `before` branch), for the envelope's fast path.
    const rowType = avroType((valueSchema.fields as { type: unknown[] }[])[0]!.type[1]);
    const renames = shape.columns.filter((c) => avroFieldName(c.name) !== c.name).map((c) => [c.name, avroFieldName(c.name)] as const);
    const toAvroRow = (row: Row | null): Row | null => {
      if (row === null || renames.length === 0) return row;
      const out: Row = { ...row };
      for (const [from, to] of renames) {
        out[to] = row[from];
        delete out[from];
      }
      return out;
    };
    return {
      shape,
      format,
      keySchemaId,
      valueSchemaId,
      encodeKey(key) {
        if (!key || keySchemaId === null) return null;
        return encodeAvro(keySchemaId, keyType, toAvroRow(key), shape, 'key');
      },
      encodeValue(change) {
        const envelope = change as ChangeEnvelope;
        const value =
          renames.length === 0 ? envelope : { ...envelope, before: toAvroRow(envelope.before), after: toAvroRow(envelope.after) };
        return frameEnvelope(valueSchemaId, rowType, value) ?? encodeAvro(valueSchemaId, valueType, value, shape, 'value');
      },
    };
  }
  const valueSchemaId = await registry.register(`${shape.topic}-value`, jsonValueSchema(shape), 'json');
  const keySchemaId = hasKey ? await registry.register(`${shape.topic}-key`, jsonKeySchema(shape), 'json') : null;
  const floats = shape.columns.filter((c) => c.kind === 'float').map((c) => c.name);
  const toJsonRow = (row: Row | null): Row | null => {
    if (row === null || floats.length === 0) return row;
    const out: Row = { ...row };
    for (const name of floats) out[name] = floatToJson(row[name]);
    return out;
  };
  return {
    shape,
    format,
    keySchemaId,
    valueSchemaId,
    encodeKey(key) {
      if (!key || keySchemaId === null) return null;
      return frame(keySchemaId, Buffer.from(JSON.stringify(toJsonRow(key))));
    },
    encodeValue(change) {
      const envelope = change as ChangeEnvelope;
      const value = { ...envelope, before: toJsonRow(envelope.before), after: toJsonRow(envelope.after) };
      return frame(valueSchemaId, Buffer.from(JSON.stringify(value)));
    },
  };
}

function encodeAvro(schemaId: number, type: avsc.Type, value: unknown, shape: TableShape, what: string): Buffer {
  try {
    return frameAvro(schemaId, type, value);
  } catch (err) {
    // The column and its types only: avsc's own message quotes the value, which can be personal data
    // and would reach the pause reason, /healthz, logs and `cdc status`.
    const paths: string[] = [];
    const columns: string[] = [];
    type.isValid(value, {
      errorHook: (path: string[], _value: unknown, invalidType: avsc.Type) => {
        paths.push(path.join('.'));
        const column = [...path]
          .reverse()
          .map((p) => shape.columns.find((c) => avroFieldName(c.name) === p))
          .find((c) => c !== undefined);
        // A nullable column is a union with null: name the branch the value was meant for.
        const branches = (invalidType as { types?: avsc.Type[] }).types;
        const meant = branches?.find((t) => (t as { typeName?: string }).typeName !== 'null') ?? invalidType;
        const avroName = ((meant as { typeName?: string }).typeName ?? '').replace(/^abstract:/, '');
        const avro = avroName ? `Avro ${avroName}` : 'its Avro type';
        columns.push(column ? `column ${column.name} (${column.pgType ?? column.kind}, ${avro})` : `field ${path.join('.')} (${avro})`);
      },
    });
    const where =
      columns.length > 0 ? `: ${[...new Set(columns)].join(', ')} holds a value that does not fit` : ` (${(err as Error).name})`;
    throw new ParityError(
      'PARITY_SERIALIZE',
      `cannot serialize a ${what} of ${shape.schema}.${shape.table} with its Avro schema${where} (the value is not shown)`,
      {
        retriable: false,
        details: { topic: shape.topic, paths },
        hint: 'a value does not fit its column type (multi-dimensional arrays are not supported in Avro; use cdc.format: json for them)',
      },
    );
  }
}

/** JSON has no NaN, Infinity or -0; they travel as strings and the decoder restores them. */
function floatToJson(value: unknown): unknown {
  if (typeof value === 'number') {
    if (Number.isNaN(value)) return 'NaN';
    if (value === Infinity) return 'Infinity';
    if (value === -Infinity) return '-Infinity';
    if (Object.is(value, -0)) return '-0';
    return value;
  }
  if (Array.isArray(value)) return value.map(floatToJson);
  return value;
}

function floatFromJson(value: unknown): unknown {
  if (typeof value === 'string') {
    if (value === 'NaN') return NaN;
    if (value === 'Infinity') return Infinity;
    if (value === '-Infinity') return -Infinity;
    if (value === '-0') return -0;
    return value;
  }
  if (Array.isArray(value)) return value.map(floatFromJson);
  return value;
}

/** A change as a Kafka message, with the dedupe-key headers. */
export interface EncodedChange {
  topic: string;
  partition: number;
  key: Buffer | null;
  /** Null for a tombstone (the debezium encoding writes one after each delete). */
  value: Buffer | null;
  /** Header values as text; Buffers hold UTF-8 text too (see HEADERS in services/core/change-event.ts). */
  headers: Record<string, string | Buffer>;
  /** Producer timestamp (ms since the epoch), as text. */
  timestamp?: string;
}

/**
 * The partition of a key: murmur2 of the key's canonical text (column values in key order), modulo the
 * topic's partitions. Independent of the key schema id, so a re-registered key schema never moves a key.
 */
export function partitionForKey(key: Row | null, keyColumns: readonly string[], partitions: number): number {
  if (!key || keyColumns.length === 0 || partitions <= 1) return 0;
  if (keyColumns.length === 1) {
    const hash = singleKeyHash(key[keyColumns[0]!] ?? null);
    if (hash !== null) return (hash & 0x7fffffff) % partitions;
  }
  const text = stableJson(keyColumns.map((k) => key[k] ?? null));
  return (murmur2(Buffer.from(text)) & 0x7fffffff) % partitions;
}

const KEY_TEXT = Buffer.allocUnsafe(512);

/**
 * murmur2 of stableJson([v]) for a one-column key of a finite number, a bigint or a string (the common
 * keys), written into one reused buffer: the same text, so the same partition, without the array, the
 * string checks and a Buffer per event. Null for anything else (stableJson's general path).
 */
function singleKeyHash(v: unknown): number | null {
  let text: string;
  if (typeof v === 'number') {
    if (!Number.isFinite(v)) return null;
    text = `[${v}]`;
  } else if (typeof v === 'bigint') text = `["${v}"]`;
  else if (typeof v === 'string') {
    if (v.length > 100) return null;
    text = `[${JSON.stringify(v)}]`;
  } else return null;
  // At most 3 bytes per UTF-16 unit: a string of up to 100 units, escaped, fits 512 bytes.
  if (text.length * 3 > KEY_TEXT.length) return null;
  return murmur2(KEY_TEXT, KEY_TEXT.write(text, 0));
}

/** Kafka's murmur2 (the Java client's default partitioner hash) of `data`'s first `length` bytes. */
export function murmur2(data: Buffer, length: number = data.length): number {
  const seed = 0x9747b28c;
  const m = 0x5bd1e995;
  const r = 24;
  let h = seed ^ length;
  const length4 = Math.floor(length / 4);
  for (let i = 0; i < length4; i++) {
    const i4 = i * 4;
    let k = (data[i4]! & 0xff) + ((data[i4 + 1]! & 0xff) << 8) + ((data[i4 + 2]! & 0xff) << 16) + ((data[i4 + 3]! & 0xff) << 24);
    k = Math.imul(k, m);
    k ^= k >>> r;
    k = Math.imul(k, m);
    h = Math.imul(h, m);
    h ^= k;
  }
  const rest = length % 4;
  const tail = length - rest;
  if (rest === 3) h ^= (data[tail + 2]! & 0xff) << 16;
  if (rest >= 2) h ^= (data[tail + 1]! & 0xff) << 8;
  if (rest >= 1) {
    h ^= data[tail]! & 0xff;
    h = Math.imul(h, m);
  }
  h ^= h >>> 13;
  h = Math.imul(h, m);
  h ^= h >>> 15;
  return h;
}

/** Builds the Kafka message for one change: key, value, partition and the position headers. */
export function encodeChange(
  encoder: TableEncoder,
  change: {
    key: Row | null;
    envelope: ChangeEnvelope | ConnectStruct;
    position: Position;
    txId: number | null;
    commitTimeUs: bigint;
    partition?: number;
    /** Precomputed headers (the CDC connector reuses one transaction's constant header values). */
    headers?: Record<string, string | Buffer>;
  },
  partitions: number,
): EncodedChange {
  return {
    topic: encoder.shape.topic,
    partition: change.partition ?? partitionForKey(change.key, encoder.shape.keyColumns, partitions),
    key: encoder.encodeKey(change.key),
    value: encoder.encodeValue(change.envelope),
    headers: change.headers ?? positionHeaders(change.position, change.txId, change.commitTimeUs),
  };
}

// ---------------------------------------------------------------------------------------------------
// Consumer side

interface ValueReader {
  read(payload: Buffer): unknown;
  /** Maps a decoded row back to PostgreSQL column names and values. */
  row(row: Row | null): Row | null;
}

function avroReader(rawSchema: unknown, valueRecord: 'Envelope' | 'Key'): ValueReader {
  const type = avroType(rawSchema);
  const schema = rawSchema as { fields?: { name: string; type: unknown }[] };
  let fields: { name: string; doc?: string }[] = [];
  if (valueRecord === 'Key') fields = (schema.fields ?? []) as { name: string; doc?: string }[];
  else {
    const before = schema.fields?.find((f) => f.name === 'before');
    const record = Array.isArray(before?.type) ? (before.type as unknown[]).find((t) => typeof t === 'object' && t !== null) : undefined;
    fields = (record as { fields?: { name: string; doc?: string }[] } | undefined)?.fields ?? [];
  }
  const names = fields.map((f) => [f.name, f.doc?.startsWith(COLUMN_DOC_PREFIX) ? f.doc.slice(COLUMN_DOC_PREFIX.length) : f.name] as const);
  // Debezium's envelope (it has a transaction block) and every key: Connect values -> exact values.
  const debezium = valueRecord === 'Key' || (schema.fields ?? []).some((f) => f.name === 'transaction');
  if (debezium) {
    const recordSchema =
      valueRecord === 'Key' ? schema : (schema.fields?.find((f) => f.name === 'before')?.type ?? { type: 'record', fields: [] });
    const typed = new Map((fieldTypeOfAvro(recordSchema).fields ?? []).map((f) => [f.name, f.type] as const));
    return {
      read: (payload) => type.fromBuffer(payload),
      row(row) {
        if (row === null) return null;
        const out: Row = {};
        for (const [field, column] of names) {
          const t = typed.get(field);
          out[column] = t ? exactValue(t, row[field]) : row[field];
        }
        return out;
      },
    };
  }
  return {
    read: (payload) => type.fromBuffer(payload),
    row(row) {
      if (row === null) return null;
      // avsc returns record instances; consumers get plain objects keyed by the PostgreSQL column names.
      const out: Row = {};
      for (const [field, column] of names) out[column] = row[field];
      return out;
    },
  };
}

function jsonReader(rawSchema: unknown, valueRecord: 'Envelope' | 'Key'): ValueReader {
  const schema = rawSchema as { properties?: Record<string, { anyOf?: { properties?: Record<string, unknown> }[] }> };
  let columns: Record<string, unknown> = {};
  if (valueRecord === 'Key') columns = (schema.properties ?? {}) as Record<string, unknown>;
  else columns = schema.properties?.after?.anyOf?.find((s) => s.properties)?.properties ?? {};
  const floats = Object.entries(columns)
    .filter(([, def]) => JSON.stringify(def).includes('parity-kind:float'))
    .map(([name]) => name);
  return {
    read: (payload) => JSON.parse(payload.toString('utf8')) as unknown,
    row(row) {
      if (row === null || floats.length === 0) return row;
      const out: Row = { ...row };
      for (const name of floats) out[name] = floatFromJson(row[name]);
      return out;
    },
  };
}

/** Reads the raw schema behind a registry id from what @kafkajs/confluent-schema-registry caches. */
async function rawSchemaFor(registry: SchemaRegistry, id: number): Promise<{ format: SchemaFormat; raw: unknown }> {
  const schema = (await registry.getSchema(id)) as unknown as { validate?: unknown; schema?: (opts?: unknown) => unknown };
  // JsonSchema keeps Ajv's compiled validator, which carries the raw schema it was compiled from.
  const validator = schema.validate as { schema?: unknown } | undefined;
  if (typeof schema.validate === 'function' && validator?.schema !== undefined) {
    return { format: 'json', raw: validator.schema };
  }
  if (typeof schema.schema === 'function') return { format: 'avro', raw: schema.schema({ exportAttrs: true }) };
  throw new ParityError('PARITY_DECODE', `schema ${id} is neither Avro nor JSON Schema`);
}

/** The parts of a consumed Kafka message the decoder reads (a @platformatic/kafka message fits). */
export interface RawKafkaMessage {
  key?: Buffer | null;
  value?: Buffer | null;
  headers?: ReadonlyMap<string, Buffer | string> | Record<string, unknown>;
  offset: bigint | string;
  timestamp: bigint | string;
  partition?: number;
}

export interface ChangeDecoder {
  /**
   * Decodes one change event. Throws ParityError('PARITY_DECODE') on undecodable input (no value, bad
   * magic byte, unknown schema, no position header); a registry outage is PARITY_CONNECTION (retriable).
   * `partition` overrides the message's own partition in the result.
   */
  decode(topic: string, message: RawKafkaMessage, partition?: number): Promise<DecodedChange>;
}

export interface ChangeDecoderOptions {
  /**
   * The registry's REST base URL. With it, Protobuf events decode too: their schema text is read
   * through REST and their message indexes are honoured (the npm registry client cannot do either),
   * and Debezium-encoded Avro events get their semantic names (needed to read them back exactly).
   */
  registryUrl?: string;
  /** The HTTP path to it when it needs a CA or credentials (core/registry-http.ts registryFetch). */
  registryFetch?: typeof fetch;
}

export function createChangeDecoder(registry: SchemaRegistry, options: ChangeDecoderOptions = {}): ChangeDecoder {
  const readers = new Map<string, Promise<ValueReader>>();
  function readerFor(id: number, record: 'Envelope' | 'Key'): Promise<ValueReader> {
    const cacheKey = `${id}:${record}`;
    let pending = readers.get(cacheKey);
    if (!pending) {
      pending = (async () => {
        if (options.registryUrl) {
          const text = await registrySchemaById(options.registryUrl, id, options.registryFetch);
          if (text?.schemaType === 'PROTOBUF') {
            const reader = protobufChangeReader(text.schema);
            return {
              read: (payload: Buffer) => (record === 'Envelope' ? reader.readEnvelope(payload) : reader.readKey(payload)),
              row: (row: Row | null) => row,
            };
          }
          // The Avro text as registered: it keeps the connect.* attributes of primitives (a Debezium
          // MicroTimestamp is a long with a name), which avsc's parsed schema drops.
          if (text?.schemaType === 'AVRO') return avroReader(JSON.parse(text.schema) as unknown, record);
        }
        let found: { format: SchemaFormat; raw: unknown };
        try {
          found = await rawSchemaFor(registry, id);
        } catch (err) {
          if (err instanceof ParityError) throw err;
          const status = (err as { status?: number }).status;
          if (status === 404 || status === 40403)
            throw new ParityError('PARITY_DECODE', `schema id ${id} is unknown to the registry`, { cause: err });
          throw new ParityError('PARITY_CONNECTION', `cannot fetch schema ${id} from the registry: ${(err as Error).message}`, {
            cause: err,
          });
        }
        return found.format === 'avro' ? avroReader(found.raw, record) : jsonReader(found.raw, record);
      })();
      pending.catch(() => readers.delete(cacheKey));
      readers.set(cacheKey, pending);
    }
    return pending;
  }

  function unframe(buf: Buffer | null, topic: string, what: string): { id: number; payload: Buffer } {
    if (!buf || buf.length < 5) throw new ParityError('PARITY_DECODE', `${topic}: message ${what} is ${buf ? 'too short' : 'empty'}`);
    if (buf.readUInt8(0) !== MAGIC_BYTE)
      throw new ParityError('PARITY_DECODE', `${topic}: message ${what} does not start with the registry magic byte`);
    return { id: buf.readUInt32BE(1), payload: buf.subarray(5) };
  }

  return {
    async decode(topic, message, partitionArg) {
      const partition = partitionArg ?? message.partition ?? -1;
      if (message.value && message.value.length > 0 && message.value[0] === JSON_OPEN) {
        return decodeConnectJson(topic, message, partition);
      }
      const value = unframe(message.value ?? null, topic, 'value');
      const valueReader = await readerFor(value.id, 'Envelope');
      let raw: ChangeEnvelope;
      try {
        raw = valueReader.read(value.payload) as ChangeEnvelope;
      } catch (err) {
        throw new ParityError('PARITY_DECODE', `${topic}: cannot decode value with schema ${value.id}: ${(err as Error).message}`, {
          cause: err,
        });
      }
      let key: Row | null = null;
      if (message.key && message.key.length > 0) {
        const k = unframe(message.key, topic, 'key');
        const keyReader = await readerFor(k.id, 'Key');
        try {
          key = keyReader.row({ ...(keyReader.read(k.payload) as Row) });
        } catch (err) {
          throw new ParityError('PARITY_DECODE', `${topic}: cannot decode key with schema ${k.id}: ${(err as Error).message}`, {
            cause: err,
          });
        }
      }
      const source = raw.source as unknown as Record<string, unknown>;
      const envelope: ChangeEnvelope = {
        before: valueReader.row(raw.before),
        after: valueReader.row(raw.after),
        op: raw.op,
        ts_ms: toNumber(raw.ts_ms) ?? 0,
        source: {
          ...(source as unknown as ChangeEnvelope['source']),
          ts_ms: toNumber(source.ts_ms) ?? 0,
          ts_us: toNumber(source.ts_us) ?? 0,
          lsn: toNumber(source.lsn) ?? 0,
          txId: toNumber(source.txId),
        },
      };
      const headers =
        message.headers instanceof Map ? Object.fromEntries(message.headers) : (message.headers as Record<string, unknown> | undefined);
      const position = positionFromHeaders(headers) ?? positionFromSequence(envelope.source.sequence);
      if (!position)
        throw new ParityError(
          'PARITY_DECODE',
          `${topic}: message at offset ${message.offset} has no parity.position header and no source.sequence`,
        );
      return {
        topic,
        partition,
        offset: String(message.offset),
        timestampMs: Number(message.timestamp),
        key,
        envelope,
        position,
      };
    },
  };
}

/** `{`: a JsonConverter document (registry-framed values start with the magic byte 0). */
const JSON_OPEN = 0x7b;

/** The row fields of a JsonConverter envelope or key schema, as the reader's field types. */
function connectJsonFields(schema: Record<string, unknown> | undefined, record: 'Envelope' | 'Key'): { name: string; type: FieldType }[] {
  if (!schema) return [];
  const type = fieldTypeOfConnectJson(schema);
  if (record === 'Key') return type.fields ?? [];
  return type.fields?.find((f) => f.name === 'before')?.type.fields ?? [];
}

/** A change written as Kafka Connect's JsonConverter `{schema, payload}` (cdc.format: connect-json). */
function decodeConnectJson(topic: string, message: RawKafkaMessage, partition: number): DecodedChange {
  let doc: { schema?: Record<string, unknown>; payload?: Record<string, unknown> };
  let keyDoc: { schema?: Record<string, unknown>; payload?: Record<string, unknown> } | null = null;
  try {
    doc = parseConnectJson(message.value!.toString('utf8')) as typeof doc;
    if (message.key && message.key.length > 0) keyDoc = parseConnectJson(message.key.toString('utf8')) as typeof doc;
  } catch (err) {
    throw new ParityError(
      'PARITY_DECODE',
      `${topic}: message at offset ${message.offset} is not JsonConverter JSON: ${(err as Error).message}`,
      {
        cause: err,
      },
    );
  }
  const payload = doc.payload;
  if (!payload || typeof payload !== 'object' || !payload.source)
    throw new ParityError('PARITY_DECODE', `${topic}: message at offset ${message.offset} has no change-event payload`);
  const fields = connectJsonFields(doc.schema, 'Envelope');
  const source = payload.source as Record<string, unknown>;
  const envelope: ChangeEnvelope = {
    before: exactRow(fields, payload.before as Record<string, unknown> | null),
    after: exactRow(fields, payload.after as Record<string, unknown> | null),
    op: payload.op as ChangeEnvelope['op'],
    ts_ms: toNumber(payload.ts_ms) ?? 0,
    source: {
      ...(source as unknown as ChangeEnvelope['source']),
      ts_ms: toNumber(source.ts_ms) ?? 0,
      ts_us: toNumber(source.ts_us) ?? 0,
      lsn: toNumber(source.lsn) ?? 0,
      txId: toNumber(source.txId),
    },
  };
  const key = keyDoc?.payload ? exactRow(connectJsonFields(keyDoc.schema, 'Key'), keyDoc.payload) : null;
  const headers =
    message.headers instanceof Map ? Object.fromEntries(message.headers) : (message.headers as Record<string, unknown> | undefined);
  const position = positionFromHeaders(headers) ?? positionFromSequence(envelope.source.sequence);
  if (!position)
    throw new ParityError(
      'PARITY_DECODE',
      `${topic}: message at offset ${message.offset} has no parity.position header and no source.sequence`,
    );
  return { topic, partition, offset: String(message.offset), timestampMs: Number(message.timestamp), key, envelope, position };
}

function toNumber(value: unknown): number | null {
  if (value === null || value === undefined) return null;
  return typeof value === 'number' ? value : Number(value);
}
