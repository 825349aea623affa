/**
 * The Debezium encoding on the wire, both directions (`cdc.encoding: debezium`):
 * - producer: a table's Connect schemas (key struct, row, envelope v2; debezium-envelope.ts) rendered
 *   as Avro through the registry (Confluent AvroData's conventions, connect-avro.ts; TopicNameStrategy)
 *   or as Kafka Connect's JsonConverter `{schema, payload}` (connect-json.ts, no registry);
 * - consumer: an event in either rendering read back, its Connect values turned into the exact values
 *   parity's consumers compare (the table in serde.ts): a Decimal becomes its exact decimal text, a
 *   MicroTimestamp the timestamp text, and so on. One home for that mapping, so the reconciler, the
 *   cache versioner and the demo read either encoding alike.
 */
import { type Row, UNCHANGED_TOAST } from '../../services/core/change-event.js';
import {
  CONNECT_DATE,
  CONNECT_DECIMAL,
  CONNECT_TIME,
  CONNECT_TIMESTAMP,
  type ConnectField,
  type ConnectSchema,
  type ConnectStruct,
  type ConnectType,
  type ConnectValue,
  decimalText,
  fromTwosComplement,
} from '../../services/core/connect-schema.js';
import {
  type CivilDate,
  civilFromDays,
  floorDiv,
  MICROS_PER_DAY,
  TIMESTAMP_NEG_INFINITY,
  TIMESTAMP_POS_INFINITY,
  TWO_DIGITS,
  zeroPad,
} from '../../services/core/calendar.js';
import { ParityError } from '../../services/core/errors.js';
import type { TableShape } from '../../services/core/table-shape.js';
import { avroSchemaFromConnect } from './connect-avro.js';
import { connectSchemaJson, connectValueJson, javaFloatText } from './connect-json.js';
import { envelopeSchema, keySchema, rowSchema } from './debezium-envelope.js';

/** Debezium's `field.name.adjustment.mode`. */
export type FieldNameAdjustment = 'none' | 'avro' | 'avro_unicode';

/** A field name Avro accepts, the way Debezium's SchemaNameAdjuster makes one. */
export function adjustFieldName(name: string, mode: FieldNameAdjustment): string {
  if (mode === 'none') return name;
  let out = '';
  for (let i = 0; i < name.length; i++) {
    const ch = name[i]!;
    const ok = /[A-Za-z_]/.test(ch) || (i > 0 && /[0-9]/.test(ch));
    if (ok) out += ch;
    else if (mode === 'avro') out += '_';
    else out += `_u${ch.charCodeAt(0).toString(16).padStart(4, '0')}`;
  }
  return out;
}

/** The Connect schemas of one table in the Debezium encoding. */
export interface DebeziumSchemas {
  /** Null for a keyless table. */
  key: ConnectSchema | null;
  row: ConnectSchema;
  envelope: ConnectSchema;
  /** PostgreSQL column name -> field name, when `field.name.adjustment.mode` renamed any. */
  renames: ReadonlyMap<string, string>;
}

/**
 * Builds the key, row and envelope schemas of a Debezium-encoded shape. `keepOptional` names row fields
 * an earlier version of the value subject registered as optional (`registeredOptionalFields`): they
 * stay optional in the row whatever the column's NOT NULL says now, so a `SET NOT NULL` never narrows
 * a registered schema (which BACKWARD and FULL refuse). The key struct keeps the columns' own schemas
 * (its bytes decide the partition).
 */
export function debeziumSchemas(
  shape: TableShape,
  adjustment: FieldNameAdjustment = 'none',
  keepOptional: ReadonlySet<string> = new Set(),
): DebeziumSchemas {
  const renames = new Map<string, string>();
  const fields: ConnectField[] = [];
  const rowFields: ConnectField[] = [];
  for (const c of shape.columns) {
    if (!c.connect) throw new ParityError('PARITY_SERIALIZE', `column ${c.name} of ${shape.schema}.${shape.table} has no Connect schema`);
    const name = adjustFieldName(c.name, adjustment);
    if (name !== c.name) renames.set(c.name, name);
    fields.push({ name, schema: c.connect });
    rowFields.push(
      c.connect.optional || !keepOptional.has(name) ? { name, schema: c.connect } : { name, schema: { ...c.connect, optional: true } },
    );
  }
  const byName = new Map(shape.columns.map((c, i) => [c.name, fields[i]!]));
  const keyFields = shape.keyColumns.map((k) => byName.get(k)).filter((f): f is ConnectField => f !== undefined);
  const row = rowSchema(shape.topic, rowFields);
  return {
    key: keyFields.length > 0 ? keySchema(shape.topic, keyFields) : null,
    row,
    envelope: envelopeSchema(shape.topic, row),
    renames,
  };
}

/**
 * The row fields an Avro envelope (a value subject's registered schema) holds as optional: a union with
 * `null` in the record of `before`/`after`. Anything else (no such record, a schema parity did not
 * write) gives none: nothing is widened.
 */
export function registeredOptionalFields(envelope: unknown): Set<string> {
  const out = new Set<string>();
  if (envelope === null || typeof envelope !== 'object' || Array.isArray(envelope)) return out;
  const fields = (envelope as { fields?: unknown }).fields;
  if (!Array.isArray(fields)) return out;
  for (const f of fields as { name?: unknown; type?: unknown }[]) {
    if (f.name !== 'before' && f.name !== 'after') continue;
    const branches = Array.isArray(f.type) ? f.type : [f.type];
    const record = branches.find(
      (b): b is { type: string; fields: unknown } => typeof b === 'object' && b !== null && (b as { type?: unknown }).type === 'record',
    );
    if (!record || !Array.isArray(record.fields)) continue;
    for (const column of record.fields as { name?: unknown; type?: unknown }[]) {
      if (typeof column.name === 'string' && Array.isArray(column.type) && column.type.includes('null')) out.add(column.name);
    }
    return out;
  }
  return out;
}

/** A row keyed by the schema's field names (a copy only when names were adjusted). */
export function renamedRow(row: Row | null, renames: ReadonlyMap<string, string>): Row | null {
  if (row === null || renames.size === 0) return row;
  const out: Row = {};
  for (const name in row) out[renames.get(name) ?? name] = row[name];
  return out;
}

/**
 * Connect's `Struct.get`, as Debezium's Avro converter (AvroData) reads each field: a null (or missing)
 * column whose schema has a non-null default is written as that default. JsonConverter does the same
 * (`replace.null.with.default`, connect-json.ts). Only the row's own columns carry defaults (the
 * envelope, source and nested structs have none that can meet a null). Returns the envelope itself
 * when nothing is replaced, so the hot path copies only rows that hold such a NULL.
 */
export function envelopeNullDefaults(row: ConnectSchema): (envelope: ConnectStruct) => ConnectStruct {
  const defaulted = row.fields!.filter((f) => f.schema.default !== undefined && f.schema.default !== null);
  if (defaulted.length === 0) return (envelope) => envelope;
  const fill = (r: ConnectStruct | null): ConnectStruct | null => {
    if (r === null || r === undefined) return r;
    let out: ConnectStruct | null = null;
    for (const f of defaulted) {
      const v = r[f.name];
      if (v === null || v === undefined) {
        out ??= { ...r };
        out[f.name] = f.schema.default!;
      }
    }
    return out ?? r;
  };
  return (envelope) => {
    const before = fill(envelope.before as ConnectStruct | null);
    const after = fill(envelope.after as ConnectStruct | null);
    return before === envelope.before && after === envelope.after ? envelope : { ...envelope, before, after };
  };
}

/** JsonConverter's document with the schema text made once per table (the payload per event). */
export class ConnectJsonWriter {
  private readonly prefix: Buffer;
  private static readonly SUFFIX = Buffer.from('}');

  constructor(private readonly schema: ConnectSchema) {
    this.prefix = Buffer.from(`{"schema":${connectSchemaJson(schema)},"payload":`);
  }

  write(value: ConnectValue): Buffer {
    const payload = Buffer.from(connectValueJson(this.schema, value));
    return Buffer.concat([this.prefix, payload, ConnectJsonWriter.SUFFIX], this.prefix.length + payload.length + 1);
  }
}

/** Avro schemas (as JSON) of the Debezium schemas, as Confluent's AvroConverter registers them. */
export function debeziumAvroSchemas(schemas: DebeziumSchemas): { key: unknown; value: unknown } {
  return { key: schemas.key ? avroSchemaFromConnect(schemas.key) : null, value: avroSchemaFromConnect(schemas.envelope) };
}

/** True when `schema` has a map anywhere (maps are JS `Map`s in Connect values, objects in avsc's). */
export function hasMap(schema: ConnectSchema): boolean {
  if (schema.type === 'map') return true;
  if (schema.type === 'array') return hasMap(schema.items!);
  if (schema.type === 'struct') return schema.fields!.some((f) => hasMap(f.schema));
  return false;
}

/**
 * A Connect value as avsc writes it under the schema from connect-avro.ts: maps become objects (and an
 * int64 its decimal text, which serde's long type takes too). Needed only for schemas with a map
 * (`hasMap`): serde's long type takes a bigint as it is, so every other value goes to avsc uncopied.
 */
export function avroValue(schema: ConnectSchema, value: ConnectValue): unknown {
  if (value === null || value === undefined) return null;
  switch (schema.type) {
    case 'int64':
      return typeof value === 'bigint' ? value.toString() : value;
    case 'map': {
      const m = value as Map<ConnectValue, ConnectValue>;
      if (schema.keys!.type === 'string' && !schema.keys!.optional) {
        const out: Record<string, unknown> = {};
        for (const [k, v] of m) out[String(k)] = avroValue(schema.values!, v);
        return out;
      }
      return [...m].map(([k, v]) => ({ key: avroValue(schema.keys!, k), value: avroValue(schema.values!, v) }));
    }
    case 'array':
      return (value as ConnectValue[]).map((v) => avroValue(schema.items!, v));
    case 'struct': {
      const out: Record<string, unknown> = {};
      for (const f of schema.fields!) out[f.name] = avroValue(f.schema, (value as ConnectStruct)[f.name] ?? null);
      return out;
    }
    default:
      return value;
  }
}

// ---------------------------------------------------------------------------------------------------
// Consumer side: Connect values -> parity's exact values

/** What the reader needs of a field's schema, from a Connect schema or from Avro's connect.* attributes. */
export interface FieldType {
  type: ConnectType;
  name?: string;
  parameters?: Readonly<Record<string, string>>;
  items?: FieldType;
  fields?: { name: string; type: FieldType }[];
}

/** One date object reused by {@link dateText}, so that a value allocates none. */
const civil: CivilDate = { year: 0, month: 0, day: 0 };

/**
 * `YYYY-MM-DD[ BC]` of a day number since 1970-01-01 (PostgreSQL's ISO DateStyle), by the kernel's
 * integer calendar arithmetic: PostgreSQL's dates reach 5874897 AD, far beyond a JavaScript Date.
 */
export function dateText(days: number): string {
  civilFromDays(days, civil);
  const bc = civil.year <= 0;
  const year = bc ? 1 - civil.year : civil.year;
  const body = `${year >= 1000 ? year : zeroPad(year, 4)}-${TWO_DIGITS[civil.month]}-${TWO_DIGITS[civil.day]}`;
  return bc ? `${body} BC` : body;
}

/** PostgreSQL's fraction: up to six digits, trailing zeros dropped. */
function fraction(micros: bigint): string {
  return micros === 0n ? '' : `.${zeroPad(micros, 6).replace(/0+$/, '')}`;
}

/** `HH:MM:SS[.ffffff]` of microseconds since midnight (24:00:00 kept). */
export function timeText(micros: bigint): string {
  const s = micros / 1_000_000n;
  return `${zeroPad(s / 3600n, 2)}:${zeroPad((s / 60n) % 60n, 2)}:${zeroPad(s % 60n, 2)}${fraction(micros % 1_000_000n)}`;
}

/** `YYYY-MM-DD HH:MM:SS[.ffffff]` of microseconds since the epoch (UTC). */
export function timestampText(micros: bigint): string {
  if (micros === TIMESTAMP_POS_INFINITY) return 'infinity';
  if (micros === TIMESTAMP_NEG_INFINITY) return '-infinity';
  const day = floorDiv(micros, MICROS_PER_DAY);
  const date = dateText(Number(day));
  const inDay = micros - day * MICROS_PER_DAY;
  const bc = date.endsWith(' BC');
  return `${bc ? date.slice(0, -3) : date} ${timeText(inDay)}${bc ? ' BC' : ''}`;
}

/** ZonedTimestamp (`2024-02-29T11:45:56.123456Z`) -> PostgreSQL's UTC text (`2024-02-29 11:45:56.123456+00`). */
export function zonedTimestampText(text: string): string {
  const m = /^([+-]?\d{4,})-(\d{2})-(\d{2})T(\d{2}:\d{2}:\d{2})(?:\.(\d+))?Z$/.exec(text);
  if (!m) return text;
  const frac = (m[5] ?? '').replace(/0+$/, '');
  let year = Number(m[1]);
  const bc = year <= 0;
  if (bc) year = 1 - year;
  return `${zeroPad(year, 4)}-${m[2]}-${m[3]} ${m[4]}${frac ? `.${frac}` : ''}+00${bc ? ' BC' : ''}`;
}

/** MicroDuration -> PostgreSQL's interval text of the same length (days and months are not recoverable). */
export function durationText(micros: bigint): string {
  const negative = micros < 0n;
  const abs = negative ? -micros : micros;
  const s = abs / 1_000_000n;
  return `${negative ? '-' : ''}${zeroPad(s / 3600n, 2)}:${zeroPad((s / 60n) % 60n, 2)}:${zeroPad(s % 60n, 2)}${fraction(abs % 1_000_000n)}`;
}

function big(value: unknown): bigint {
  return typeof value === 'bigint' ? value : BigInt(value as string | number);
}

function bytesOf(value: unknown): Buffer {
  if (Buffer.isBuffer(value)) return value;
  if (typeof value === 'string') return Buffer.from(value, 'base64');
  return Buffer.from(value as Uint8Array);
}

/** Debezium's Bits bytes (little-endian) -> the bit string, `length` digits when the type fixes it. */
function bitsText(value: unknown, length: number | undefined): string {
  const b = bytesOf(value);
  let n = 0n;
  for (let i = b.length - 1; i >= 0; i--) n = (n << 8n) | BigInt(b[i]!);
  const text = n.toString(2);
  return length !== undefined && length < 100_000 ? text.padStart(length, '0') : text === '0' ? '' : text;
}

/**
 * One Connect value (as Avro or JSON delivered it) -> parity's exact value for the column. Values the
 * Debezium encoding does not keep (a numeric NaN is null; an interval's months and days are folded into
 * microseconds) come back as close as the encoding allows.
 */
export function exactValue(type: FieldType, value: unknown): unknown {
  if (value === null || value === undefined) return null;
  if (value === UNCHANGED_TOAST) return value;
  switch (type.name) {
    case CONNECT_DECIMAL:
      return decimalText(fromTwosComplement(bytesOf(value)), Number(type.parameters?.scale ?? 0));
    case 'io.debezium.data.VariableScaleDecimal': {
      const s = value as { scale: unknown; value: unknown };
      return decimalText(fromTwosComplement(bytesOf(s.value)), Number(s.scale));
    }
    case 'io.debezium.time.Date':
    case CONNECT_DATE: {
      const days = Number(value);
      if (days === -2_147_472_692 || days === -622_191_234) return 'infinity';
      if (days === -2_147_472_691 || days === -625_821_272) return '-infinity';
      return dateText(days);
    }
    case 'io.debezium.time.Time':
    case CONNECT_TIME:
      return timeText(big(value) * 1000n);
    case 'io.debezium.time.MicroTime':
      return timeText(big(value));
    case 'io.debezium.time.NanoTime':
      return timeText(big(value) / 1000n);
    case 'io.debezium.time.Timestamp':
    case CONNECT_TIMESTAMP: {
      const ms = big(value);
      if (ms === TIMESTAMP_POS_INFINITY / 1000n) return 'infinity';
      if (ms === TIMESTAMP_NEG_INFINITY / 1000n) return '-infinity';
      return timestampText(ms * 1000n);
    }
    case 'io.debezium.time.MicroTimestamp':
      return timestampText(big(value));
    case 'io.debezium.time.NanoTimestamp':
      return timestampText(big(value) / 1000n);
    case 'io.debezium.time.ZonedTimestamp':
      return zonedTimestampText(String(value));
    case 'io.debezium.time.ZonedTime':
      return String(value).replace(/Z$/, '+00');
    case 'io.debezium.time.MicroDuration':
      return durationText(big(value));
    case 'io.debezium.data.Bits':
      return bitsText(value, type.parameters?.length === undefined ? undefined : Number(type.parameters.length));
    case 'io.debezium.data.geometry.Point': {
      const p = value as { x: number; y: number };
      return `(${p.x},${p.y})`;
    }
    default:
      break;
  }
  switch (type.type) {
    case 'int64':
      return String(value);
    case 'int8':
    case 'int16':
    case 'int32':
      return Number(value);
    case 'float32': {
      const n = typeof value === 'string' ? Number(value) : (value as number);
      // float4's exact value is its shortest text, as PostgreSQL prints it.
      return Number.isFinite(n) && n !== 0 ? Number(javaFloatText(n)) : n;
    }
    case 'float64':
      return typeof value === 'string' ? Number(value) : value;
    case 'bytes':
      return bytesOf(value).toString('base64');
    case 'array':
      return (value as unknown[]).map((v) => exactValue(type.items!, v));
    default:
      return value;
  }
}

/** A decoded row (field names) -> exact values keyed by field name. */
export function exactRow(fields: readonly { name: string; type: FieldType }[], row: Record<string, unknown> | null): Row | null {
  if (row === null || row === undefined) return null;
  const out: Row = {};
  for (const f of fields) out[f.name] = exactValue(f.type, row[f.name]);
  return out;
}

/** A Connect schema as the reader's field type. */
export function fieldTypeOfConnect(schema: ConnectSchema): FieldType {
  return {
    type: schema.type,
    ...(schema.name === undefined ? {} : { name: schema.name }),
    ...(schema.parameters === undefined ? {} : { parameters: schema.parameters }),
    ...(schema.items ? { items: fieldTypeOfConnect(schema.items) } : {}),
    ...(schema.fields ? { fields: schema.fields.map((f) => ({ name: f.name, type: fieldTypeOfConnect(f.schema) })) } : {}),
  };
}

/** JsonConverter's schema JSON (`{"type":"struct","fields":[...],...}`) as the reader's field type. */
export function fieldTypeOfConnectJson(schema: Record<string, unknown>): FieldType {
  const type = String(schema.type);
  const connectType = (type === 'float' ? 'float32' : type === 'double' ? 'float64' : type) as ConnectType;
  const fields = schema.fields as Record<string, unknown>[] | undefined;
  return {
    type: connectType,
    ...(typeof schema.name === 'string' ? { name: schema.name } : {}),
    ...(schema.parameters ? { parameters: schema.parameters as Record<string, string> } : {}),
    ...(schema.items ? { items: fieldTypeOfConnectJson(schema.items as Record<string, unknown>) } : {}),
    ...(fields ? { fields: fields.map((f) => ({ name: String(f.field), type: fieldTypeOfConnectJson(f) })) } : {}),
  };
}

/** An Avro schema written by connect-avro.ts (or Confluent's AvroData) as the reader's field type. */
export function fieldTypeOfAvro(schema: unknown, named: Map<string, FieldType> = new Map()): FieldType {
  if (Array.isArray(schema)) {
    const branch = schema.find((s) => s !== 'null');
    return fieldTypeOfAvro(branch, named);
  }
  if (typeof schema === 'string') {
    const known = named.get(schema);
    if (known) return known;
    return { type: avroPrimitive(schema) };
  }
  const s = schema as Record<string, unknown>;
  const connectName = typeof s['connect.name'] === 'string' ? (s['connect.name'] as string) : undefined;
  const parameters = s['connect.parameters'] as Record<string, string> | undefined;
  const base: Omit<FieldType, 'type'> = {
    ...(connectName ? { name: connectName } : {}),
    ...(parameters ? { parameters } : {}),
  };
  switch (s.type) {
    case 'record': {
      const out: FieldType = { type: 'struct', ...base, fields: [] };
      const full = s.namespace ? `${s.namespace as string}.${s.name as string}` : (s.name as string);
      named.set(full, out);
      out.fields = (s.fields as { name: string; type: unknown }[]).map((f) => ({ name: f.name, type: fieldTypeOfAvro(f.type, named) }));
      return out;
    }
    case 'array':
      return { type: 'array', ...base, items: fieldTypeOfAvro(s.items, named) };
    case 'map':
      return { type: 'map', ...base };
    default: {
      const connectType = s['connect.type'] as ConnectType | undefined;
      return { type: connectType ?? avroPrimitive(s.type as string), ...base };
    }
  }
}

function avroPrimitive(name: string): ConnectType {
  switch (name) {
    case 'int':
      return 'int32';
    case 'long':
      return 'int64';
    case 'float':
      return 'float32';
    case 'double':
      return 'float64';
    default:
      return name as ConnectType;
  }
}

/** JSON.parse that keeps integers beyond 2^53 exact (as bigint), through the reviver's source text. */
export function parseConnectJson(text: string): unknown {
  return JSON.parse(text, (_key, value: unknown, context?: { source?: string }) => {
    if (typeof value === 'number' && !Number.isSafeInteger(value) && context?.source && /^-?\d+$/.test(context.source)) {
      return BigInt(context.source);
    }
    return value;
  });
}
