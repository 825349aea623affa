/**
 * Change events as Protobuf (`cdc.format: protobuf`): the envelope and key messages of
 * protobuf-schema.ts, encoded with protobufjs and framed with Confluent's wire format, message
 * indexes included (protobuf-wire.ts); and the reverse, from the registered schema text alone, so any
 * Confluent-framing reader gets back exactly the JS values the Avro path documents (serde.ts).
 */
import type protobuf from 'protobufjs';
import { type ChangeEnvelope, type Row, UNCHANGED_TOAST } from '../../services/core/change-event.js';
import { ParityError } from '../../services/core/errors.js';
import { protobufCodec } from './protobuf-runtime.js';
import { ENVELOPE_INDEXES, KEY_INDEXES, protobufKeySchema, protobufValueSchema } from './protobuf-schema.js';
import { decodeMessageIndexes, frameProtobuf } from './protobuf-wire.js';
import type { TableShape, ValueKind } from '../../services/core/table-shape.js';

type Plain = Record<string, unknown>;

/** A row message's fields: protobuf field name, column name, and whether it is a list message. */
interface RowField {
  field: string;
  column: string;
  list: boolean;
}

function rowFields(type: protobuf.Type): RowField[] {
  return type.fieldsArray.map((f) => {
    f.resolve();
    const resolved = f.resolvedType as protobuf.Type | null;
    const list =
      resolved !== null && 'fields' in resolved && resolved.fields.items !== undefined && resolved.fields.unavailable !== undefined;
    const jsonName = (f.options as Plain | undefined)?.json_name;
    return { field: f.name, column: typeof jsonName === 'string' ? jsonName : f.name, list };
  });
}

function rowToMessage(row: Row | null, fields: readonly RowField[]): Plain | null {
  if (row === null) return null;
  const out: Plain = {};
  for (const { field, column, list } of fields) {
    const value = row[column];
    if (value === null || value === undefined) continue;
    if (list) {
      out[field] =
        value === UNCHANGED_TOAST
          ? { unavailable: true }
          : { items: (value as unknown[]).map((v) => (v === null ? {} : { value: typeof v === 'bigint' ? v.toString() : v })) };
    } else {
      out[field] = typeof value === 'bigint' ? value.toString() : value;
    }
  }
  return out;
}

function messageToRow(message: Plain | null | undefined, fields: readonly RowField[]): Row | null {
  if (message === null || message === undefined) return null;
  const row: Row = {};
  for (const { field, column, list } of fields) {
    const value = message[field];
    if (list) {
      const l = value as { items?: { value?: unknown }[]; unavailable?: boolean } | null | undefined;
      row[column] =
        l === undefined || l === null
          ? null
          : l.unavailable
            ? UNCHANGED_TOAST
            : (l.items ?? []).map((i) => (i.value === undefined ? null : i.value));
    } else {
      // An absent optional field is SQL NULL.
      row[column] = value === undefined ? null : value;
    }
  }
  return row;
}

const TO_OBJECT: protobuf.IConversionOptions = { longs: String, bytes: String };

const INT8 = /^-?\d{1,19}$/;

/**
 * Whether a JS value is what its column kind documents. protobufjs' `fromObject` coerces silently
 * (`'x'` becomes 0 in an int32), so values are checked against their kind before it sees them.
 */
function fits(kind: ValueKind, value: unknown): boolean {
  switch (kind) {
    case 'boolean':
      return typeof value === 'boolean';
    case 'int':
      return typeof value === 'number' && Number.isInteger(value) && value >= -2147483648 && value <= 2147483647;
    case 'int8':
      return (
        (typeof value === 'string' && INT8.test(value)) ||
        (typeof value === 'number' && Number.isSafeInteger(value)) ||
        typeof value === 'bigint'
      );
    case 'float':
      return typeof value === 'number';
    case 'string':
    case 'bytea':
      return typeof value === 'string';
  }
}

function checkRow(
  row: Row | null,
  shape: TableShape,
  columns: readonly { name: string; kind: ValueKind; array?: boolean }[],
  what: string,
): void {
  if (row === null) return;
  const bad: string[] = [];
  for (const c of columns) {
    const v = row[c.name];
    if (v === null || v === undefined || v === UNCHANGED_TOAST) continue;
    const ok = c.array
      ? Array.isArray(v) && v.every((e) => e === null || fits(c.kind, typeof e === 'bigint' ? e.toString() : e))
      : fits(c.kind, v);
    if (!ok) bad.push(c.name);
  }
  if (bad.length > 0) {
    throw new ParityError(
      'PARITY_SERIALIZE',
      `cannot serialize a ${what} of ${shape.schema}.${shape.table} with its Protobuf schema (invalid: ${bad.join(', ')})`,
      {
        retriable: false,
        details: { topic: shape.topic, paths: bad },
        hint: 'a value does not fit its column type (multi-dimensional arrays are not supported in Protobuf; use cdc.format: json for them)',
      },
    );
  }
}

/** Encodes one table's keys and envelopes; the schemas are registered by the caller. */
export interface ProtobufTableWriter {
  valueSchema: string;
  keySchema: string;
  encodeValue(schemaId: number, envelope: ChangeEnvelope): Buffer;
  encodeKey(schemaId: number, key: Row): Buffer;
}

/** Builds the writer for a table shape: its two schemas and their encoders. */
export function protobufTableWriter(shape: TableShape): ProtobufTableWriter {
  const valueSchema = protobufValueSchema(shape);
  const keySchema = protobufKeySchema(shape);
  const value = protobufCodec(valueSchema);
  const key = protobufCodec(keySchema);
  const envelopeType = value.typeAt(ENVELOPE_INDEXES);
  const keyType = key.typeAt(KEY_INDEXES);
  const valueFields = rowFields(value.typeAt(value.indexesOf('Value') ?? []));
  const keyFields = rowFields(keyType);

  const byName = new Map(shape.columns.map((c) => [c.name, c]));
  const keyColumns = shape.keyColumns.map((k) => byName.get(k) ?? { name: k, kind: 'string' as const });
  const encode = (type: protobuf.Type, object: Plain): Uint8Array => type.encode(type.fromObject(object)).finish();

  return {
    valueSchema,
    keySchema,
    encodeValue(schemaId, envelope) {
      checkRow(envelope.before, shape, shape.columns, 'value');
      checkRow(envelope.after, shape, shape.columns, 'value');
      const s = envelope.source;
      const object: Plain = {
        before: rowToMessage(envelope.before, valueFields),
        after: rowToMessage(envelope.after, valueFields),
        source: {
          version: s.version,
          connector: s.connector,
          name: s.name,
          ts_ms: s.ts_ms,
          snapshot: s.snapshot,
          db: s.db,
          sequence: s.sequence,
          ts_us: s.ts_us,
          schema: s.schema,
          table: s.table,
          ...(s.txId === null || s.txId === undefined ? {} : { txId: s.txId }),
          lsn: s.lsn,
        },
        op: envelope.op,
        ts_ms: envelope.ts_ms,
      };
      for (const k of ['before', 'after'] as const) if (object[k] === null) delete object[k];
      return frameProtobuf(schemaId, ENVELOPE_INDEXES, encode(envelopeType, object));
    },
    encodeKey(schemaId, row) {
      checkRow(row, shape, keyColumns, 'key');
      return frameProtobuf(schemaId, KEY_INDEXES, encode(keyType, rowToMessage(row, keyFields) ?? {}));
    },
  };
}

function toNumber(value: unknown): number | null {
  if (value === null || value === undefined) return null;
  return typeof value === 'number' ? value : Number(value);
}

/**
 * Reads change events written with a registered value or key schema (its text): unframes the message
 * indexes, decodes that message and maps it back to column names and the documented JS values.
 */
export function protobufChangeReader(schemaText: string): { readEnvelope(payload: Buffer): ChangeEnvelope; readKey(payload: Buffer): Row } {
  const codec = protobufCodec(schemaText);
  const envelopeIndexes = codec.indexesOf('Envelope');
  const valueIndexes = codec.indexesOf('Value');
  const valueFields = valueIndexes ? rowFields(codec.typeAt(valueIndexes)) : [];
  return {
    readEnvelope(payload) {
      const { indexes, message } = decodeMessageIndexes(payload);
      if (!envelopeIndexes || indexes.join('.') !== envelopeIndexes.join('.')) {
        throw new ParityError('PARITY_DECODE', `the value's message indexes [${indexes.join(', ')}] do not name the Envelope message`);
      }
      const type = codec.typeAt(indexes);
      const o = type.toObject(type.decode(message), TO_OBJECT) as Plain;
      const source = (o.source ?? {}) as Plain;
      return {
        before: messageToRow(o.before as Plain | undefined, valueFields),
        after: messageToRow(o.after as Plain | undefined, valueFields),
        op: o.op as ChangeEnvelope['op'],
        ts_ms: toNumber(o.ts_ms) ?? 0,
        source: {
          version: source.version as string,
          connector: source.connector as 'postgresql',
          name: source.name as string,
          db: source.db as string,
          schema: source.schema as string,
          table: source.table as string,
          ts_ms: toNumber(source.ts_ms) ?? 0,
          ts_us: toNumber(source.ts_us) ?? 0,
          lsn: toNumber(source.lsn) ?? 0,
          txId: toNumber(source.txId),
          snapshot: (source.snapshot ?? 'false') as ChangeEnvelope['source']['snapshot'],
          sequence: source.sequence as string,
        },
      };
    },
    readKey(payload) {
      const { indexes, message } = decodeMessageIndexes(payload);
      const type = codec.typeAt(indexes);
      // Key fields have no presence: a zero value is on the wire as nothing, so defaults are the values.
      const o = type.toObject(type.decode(message), { ...TO_OBJECT, defaults: true }) as Plain;
      return messageToRow(o, rowFields(type)) as Row;
    },
  };
}

/**
 * A schema's text and type by id, through the registry's REST API (`GET /schemas/ids/{id}`);
 * undefined when the registry does not know the id. Network failures are PARITY_CONNECTION.
 */
export async function registrySchemaById(
  registryUrl: string,
  id: number,
  fetchImpl: typeof fetch = fetch,
): Promise<{ schema: string; schemaType: string } | undefined> {
  let response: Response;
  try {
    response = await fetchImpl(`${registryUrl.replace(/\/+$/, '')}/schemas/ids/${id}`, {
      headers: { accept: 'application/vnd.schemaregistry.v1+json, application/json' },
      signal: AbortSignal.timeout(10_000),
    });
  } catch (err) {
    throw new ParityError('PARITY_CONNECTION', `cannot fetch schema ${id} from the registry: ${(err as Error).message}`, { cause: err });
  }
  if (response.status === 404) return undefined;
  if (!response.ok) throw new ParityError('PARITY_CONNECTION', `cannot fetch schema ${id} from the registry: HTTP ${response.status}`);
  const body = (await response.json()) as { schema: string; schemaType?: string };
  return { schema: body.schema, schemaType: body.schemaType ?? 'AVRO' };
}
