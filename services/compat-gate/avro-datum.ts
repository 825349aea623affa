import avro from 'avsc';
import { isParityError, ParityError } from '../core/errors.js';
import { barePrimitives } from '../../connectors/kafka-sink/serde.js';
import { parseAvroSchema, type AvroField, type AvroSchema } from './avro-schema.js';

/**
 * Reads one Avro datum written with a writer schema as a consumer with a different reader schema
 * would, following Avro's schema resolution per datum.
 *
 * avsc decodes the bytes with the writer schema (that part is plain Avro binary); the projection onto
 * the reader schema is done here rather than with avsc's `createResolver`, because avsc refuses a
 * whole schema pair as soon as any branch or symbol could fail, while Avro's decoders fail only on a
 * datum that actually hits the gap (a writer union whose string branch the reader lacks still reads
 * every int; an enum symbol the reader lacks fails only when written). A live check must count the
 * events that fail, not declare every event unreadable.
 */

/** A datum the reader schema cannot read; the message names the Avro rule that failed. */
export class AvroResolutionError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'AvroResolutionError';
  }
}

function nameOf(schema: AvroSchema): string {
  return 'fullName' in schema ? schema.fullName : schema.type;
}

/** avsc's key for a union branch when unions are wrapped: the full name of named types, else the type. */
function branchKey(schema: AvroSchema): string {
  return nameOf(schema);
}

function sameNamed(
  reader: AvroSchema & { name: string; aliases: string[] },
  writer: AvroSchema & { name: string; fullName: string },
): boolean {
  return reader.name === writer.name || reader.aliases.includes(writer.fullName);
}

/** Whether a writer value of type `writer` can be promoted to `reader` without looking at it. */
function promotable(reader: AvroSchema, writer: AvroSchema): boolean {
  switch (reader.type) {
    case 'long':
      return writer.type === 'int';
    case 'float':
      return writer.type === 'int' || writer.type === 'long';
    case 'double':
      return writer.type === 'int' || writer.type === 'long' || writer.type === 'float';
    case 'bytes':
      return writer.type === 'string';
    case 'string':
      return writer.type === 'bytes';
    default:
      return false;
  }
}

/**
 * The reader union branch a writer type resolves to, in Avro's order of preference: the same type
 * (and, for named types, the same full name), then a named type with the same unqualified name or an
 * alias, then a promotion.
 */
function pickBranch(reader: { types: AvroSchema[] }, writer: AvroSchema): AvroSchema | undefined {
  const exact = reader.types.find(
    (b) => b.type === writer.type && (!('fullName' in b) || b.fullName === (writer as { fullName?: string }).fullName),
  );
  if (exact) return exact;
  if ('fullName' in writer) {
    const named = reader.types.find((b) => b.type === writer.type && 'name' in b && sameNamed(b, writer));
    if (named) return named;
  }
  // Arrays and maps of any item type match by kind; their items are resolved afterwards.
  const structural = reader.types.find((b) => b.type === writer.type && (b.type === 'array' || b.type === 'map'));
  if (structural) return structural;
  return reader.types.find((b) => promotable(b, writer));
}

function toNumber(value: unknown): number {
  return typeof value === 'bigint' ? Number(value) : (value as number);
}

/** Projects a value decoded with `writer` (unions wrapped) onto `reader`. */
export function resolveDatum(reader: AvroSchema, writer: AvroSchema, value: unknown): unknown {
  if (writer.type === 'union') {
    if (value === null) {
      const nullBranch = writer.types.find((b) => b.type === 'null');
      if (!nullBranch) throw new AvroResolutionError('null written for a union without a null branch');
      return resolveDatum(reader, nullBranch, null);
    }
    const [key, inner] = Object.entries(value as Record<string, unknown>)[0] ?? [];
    const branch = writer.types.find((b) => branchKey(b) === key);
    if (!branch) throw new AvroResolutionError(`writer union has no branch ${String(key)}`);
    return resolveDatum(reader, branch, inner);
  }
  if (reader.type === 'union') {
    const branch = pickBranch(reader, writer);
    if (!branch) throw new AvroResolutionError(`Found ${nameOf(writer)}, expecting union`);
    return resolveDatum(branch, writer, value);
  }
  if (reader.type !== writer.type) {
    if (!promotable(reader, writer)) throw new AvroResolutionError(`Found ${nameOf(writer)}, expecting ${nameOf(reader)}`);
    switch (reader.type) {
      case 'long':
        return value;
      case 'float':
        // Java reads the value into a 32-bit float: precision beyond 24 bits is lost, as consumers see it.
        return Math.fround(toNumber(value));
      case 'double':
        return toNumber(value);
      case 'bytes':
        return Buffer.from(value as string, 'utf8');
      default:
        return (value as Buffer).toString('utf8');
    }
  }
  switch (reader.type) {
    case 'record': {
      const w = writer as typeof reader;
      if (!sameNamed(reader, w)) throw new AvroResolutionError(`Found ${w.fullName}, expecting ${reader.fullName}`);
      const source = value as Record<string, unknown>;
      const out: Record<string, unknown> = {};
      for (const field of reader.fields) {
        const from = writerFieldFor(w.fields, field);
        if (from) out[field.name] = resolveDatum(field.type, from.type, source[from.name]);
        else if (field.hasDefault) out[field.name] = defaultValue(field.type, field.default);
        else throw new AvroResolutionError(`Found ${w.fullName}, expecting ${reader.fullName}, missing required field ${field.name}`);
      }
      return out;
    }
    case 'enum': {
      const w = writer as typeof reader;
      if (!sameNamed(reader, w)) throw new AvroResolutionError(`Found ${w.fullName}, expecting ${reader.fullName}`);
      const symbol = value as string;
      if (reader.symbols.includes(symbol)) return symbol;
      if (reader.default !== undefined) return reader.default;
      throw new AvroResolutionError(`No match for ${symbol}`);
    }
    case 'fixed': {
      const w = writer as typeof reader;
      if (!sameNamed(reader, w)) throw new AvroResolutionError(`Found ${w.fullName}, expecting ${reader.fullName}`);
      if (reader.size !== w.size) throw new AvroResolutionError(`Fixed size mismatch: found ${w.size}, expecting ${reader.size}`);
      return value;
    }
    case 'array':
      return (value as unknown[]).map((item) => resolveDatum(reader.items, (writer as typeof reader).items, item));
    case 'map':
      return Object.fromEntries(
        Object.entries(value as Record<string, unknown>).map(([k, v]) => [
          k,
          resolveDatum(reader.values, (writer as typeof reader).values, v),
        ]),
      );
    default:
      return value;
  }
}

function writerFieldFor(fields: AvroField[], readerField: AvroField): AvroField | undefined {
  return fields.find((f) => f.name === readerField.name) ?? fields.find((f) => readerField.aliases.includes(f.name));
}

/** A field default from its JSON form (a union default belongs to the first branch). */
function defaultValue(type: AvroSchema, json: unknown): unknown {
  const t = type.type === 'union' ? type.types[0] : type;
  if (!t) return json;
  if ((t.type === 'bytes' || t.type === 'fixed') && typeof json === 'string') return Buffer.from(json, 'latin1');
  if (t.type === 'record' && json !== null && typeof json === 'object') {
    const src = json as Record<string, unknown>;
    return Object.fromEntries(
      t.fields.map((f) => [
        f.name,
        f.name in src ? defaultValue(f.type, src[f.name]) : f.hasDefault ? defaultValue(f.type, f.default) : undefined,
      ]),
    );
  }
  return json;
}

/** Decodes Avro binary with a writer schema and projects each datum onto a reader schema. */
export interface AvroDatumReader {
  /** Throws AvroResolutionError when the reader cannot read this datum, or a decoding error for corrupt bytes. */
  read(payload: Buffer): unknown;
}

/**
 * Builds a reader for (reader schema, writer schema), both as Avro JSON (text or value).
 * Schema problems are PARITY_BAD_INPUT; per-datum problems surface from `read`.
 */
export function createAvroDatumReader(readerSchema: string | unknown, writerSchema: string | unknown): AvroDatumReader {
  const reader = parseAvroSchema(readerSchema);
  const writer = parseAvroSchema(writerSchema);
  let writerType: avro.Type;
  try {
    const json = typeof writerSchema === 'string' ? (JSON.parse(writerSchema) as unknown) : writerSchema;
    writerType = avroDatumType(json, true);
  } catch (err) {
    if (isParityError(err)) throw err;
    throw new ParityError('PARITY_BAD_INPUT', `avsc cannot load the writer schema: ${err instanceof Error ? err.message : String(err)}`, {
      cause: err,
    });
  }
  return {
    read(payload: Buffer): unknown {
      return resolveDatum(reader, writer, writerType.fromBuffer(payload));
    },
  };
}

const SAFE = 2n ** 53n;

/**
 * Avro `long` as an exact JS value: a number when it is a safe integer, else a bigint. avsc's own long
 * refuses anything past 2^53 ("potential precision loss"), and Debezium's events carry nanosecond
 * timestamps (`ts_ns`, about 1.7e18) in every event.
 */
const EXACT_LONG = avro.types.LongType.__with({
  fromBuffer: (buf: Buffer) => {
    const v = buf.readBigInt64LE();
    return v > -SAFE && v < SAFE ? Number(v) : v;
  },
  toBuffer: (value: number | bigint) => {
    const buf = Buffer.alloc(8);
    buf.writeBigInt64LE(BigInt(value));
    return buf;
  },
  fromJSON: (value: unknown) => (typeof value === 'bigint' ? value : Number(value)),
  toJSON: (value: number | bigint) => Number(value),
  isValid: (value: unknown) => typeof value === 'bigint' || Number.isSafeInteger(value),
  compare: (a: number | bigint, b: number | bigint) => (a < b ? -1 : a > b ? 1 : 0),
});

/**
 * The avsc type the live checks read (and, for connect-json events, write) datums with: longs exact
 * (EXACT_LONG), unions wrapped (`{branch: value}`, what `resolveDatum` expects) or, for writing, plain.
 */
export function avroDatumType(schema: unknown, wrapUnions: boolean): avro.Type {
  return avro.Type.forSchema(barePrimitives(schema) as avro.Schema, {
    registry: { long: EXACT_LONG } as unknown as Record<string, avro.Type>,
    wrapUnions: wrapUnions ? true : 'auto',
  });
}

/**
 * Encodes a datum with a schema, for producers and tests. Union values follow avsc's default: plain
 * values where the union is unambiguous (e.g. ["null", "string"]), `{branch: value}` otherwise.
 */
export function encodeAvroDatum(schema: string | unknown, datum: unknown): Buffer {
  const json = typeof schema === 'string' ? (JSON.parse(schema) as unknown) : schema;
  return avro.Type.forSchema(json as avro.Schema).toBuffer(datum);
}
