/**
 * A hand-written Avro binary writer for the Debezium encoding's keys and envelopes (the CDC hot path).
 * avsc spent about a fifth of the connector's busy CPU on them; this writes the same bytes straight
 * into one reused buffer.
 *
 * The plan is compiled once per registered Avro schema (connect-avro.ts's output, exactly as it went
 * to the registry): one writer function per field, chosen from the schema, so whatever the schema
 * says (a field made optional, a default, a semantic name) the bytes follow. Each record gets a
 * generated function that reads its fields by name (avsc does the same), so the property reads stay
 * monomorphic.
 *
 * Byte for byte what serde's avsc types write (test/unit/connectors/debezium-writer.test.ts compares the
 * two over every type the Debezium encoding maps). Where avsc would refuse a value or do something
 * unusual with it (a value of the wrong type, `undefined` where the field's default is not null, a long
 * outside int64, a non-string-keyed map), the writer gives up on the whole event and the caller
 * encodes it with avsc, which writes it or says which column is wrong. Schemas with parts
 * connect-avro.ts never writes (enums, fixed, unions other than null + one type) compile to null:
 * that table goes through avsc.
 */
import { ParityError } from '../../services/core/errors.js';

/** The reusable output buffer: grows by doubling, never shrinks. */
export class AvroOut {
  buf: Buffer;
  pos = 0;

  constructor(initial = 64 * 1024) {
    this.buf = Buffer.allocUnsafe(initial);
  }

  ensure(n: number): void {
    if (this.pos + n <= this.buf.length) return;
    const next = Buffer.allocUnsafe(Math.max(this.buf.length * 2, this.pos + n));
    this.buf.copy(next, 0, 0, this.pos);
    this.buf = next;
  }
}

/** Thrown (one shared instance, no stack) when a value needs avsc's general path. */
class Unwritable extends Error {
  constructor() {
    super('value needs the general Avro path');
  }
}
const UNWRITABLE = new Unwritable();

type Write = (o: AvroOut, v: unknown) => void;

const FAST_LIMIT = 2 ** 52;
const FAST_LIMIT_BIG = BigInt(FAST_LIMIT);
const INT64_MAX = 2n ** 63n - 1n;
const INT64_MIN = -(2n ** 63n);
const LOW_35 = 2n ** 35n - 1n;

/** Zig-zag varint of an integer below 2^52 in magnitude (room already ensured). */
function varlong(o: AvroOut, n: number): void {
  const buf = o.buf;
  let pos = o.pos;
  if (n >= -0x40000000 && n < 0x40000000) {
    let z = ((n << 1) ^ (n >> 31)) >>> 0;
    while (z >= 0x80) {
      buf[pos++] = (z & 0x7f) | 0x80;
      z >>>= 7;
    }
    buf[pos++] = z;
  } else {
    let z = n >= 0 ? n * 2 : -n * 2 - 1;
    while (z >= 0x80) {
      buf[pos++] = (z % 0x80) | 0x80;
      z = Math.floor(z / 0x80);
    }
    buf[pos++] = z;
  }
  o.pos = pos;
}

/** Zig-zag varint of an int64 past 2^52 (Debezium's ts_ns): BigInt once, then 35-bit halves as numbers. */
function varbig(o: AvroOut, b: bigint): void {
  const z = b >= 0n ? b << 1n : (-b << 1n) - 1n;
  let low = Number(z & LOW_35);
  let high = Number(z >> 35n);
  const buf = o.buf;
  let pos = o.pos;
  if (high === 0) {
    while (low >= 0x80) {
      buf[pos++] = (low % 0x80) | 0x80;
      low = Math.floor(low / 0x80);
    }
    buf[pos++] = low;
  } else {
    for (let i = 0; i < 5; i++) {
      buf[pos++] = (low % 0x80) | 0x80;
      low = Math.floor(low / 0x80);
    }
    while (high >= 0x80) {
      buf[pos++] = (high % 0x80) | 0x80;
      high = Math.floor(high / 0x80);
    }
    buf[pos++] = high;
  }
  o.pos = pos;
}

const writeNull: Write = (_o, v) => {
  if (v !== null) throw UNWRITABLE;
};

const writeBoolean: Write = (o, v) => {
  if (typeof v !== 'boolean') throw UNWRITABLE;
  o.ensure(1);
  o.buf[o.pos++] = v ? 1 : 0;
};

const writeInt: Write = (o, v) => {
  // avsc's own check: an int32 (so -0 passes, 1.5 and 2^31 do not).
  if (typeof v !== 'number' || v !== (v | 0)) throw UNWRITABLE;
  o.ensure(5);
  varlong(o, v as number);
};

/**
 * A long as serde's exact long type takes it: a bigint or a safe integer (a string would be accepted
 * there too; Connect values never are one, so it goes to avsc). Each field keeps the bytes of its last
 * value: the commit's times and txId repeat for a whole transaction, the processing times within a
 * millisecond, and a long past 2^52 (nanoseconds) costs BigInt arithmetic to write.
 */
function longWriter(): Write {
  const UNSET = Symbol('unset');
  let last: unknown = UNSET;
  const lastBytes = Buffer.alloc(10);
  let lastLength = 0;
  return (o, v) => {
    o.ensure(10);
    const buf = o.buf;
    if (v === last) {
      let pos = o.pos;
      for (let i = 0; i < lastLength; i++) buf[pos++] = lastBytes[i]!;
      o.pos = pos;
      return;
    }
    const start = o.pos;
    if (typeof v === 'bigint') {
      if (v < FAST_LIMIT_BIG && v > -FAST_LIMIT_BIG) varlong(o, Number(v));
      else if (v > INT64_MAX || v < INT64_MIN) throw UNWRITABLE;
      else varbig(o, v);
    } else if (typeof v === 'number' && Number.isSafeInteger(v)) {
      if (v < FAST_LIMIT && v > -FAST_LIMIT) varlong(o, v);
      else varbig(o, BigInt(v));
    } else throw UNWRITABLE;
    last = v;
    lastLength = o.pos - start;
    for (let i = 0; i < lastLength; i++) lastBytes[i] = buf[start + i]!;
  };
}

const writeFloat: Write = (o, v) => {
  if (typeof v !== 'number') throw UNWRITABLE;
  o.ensure(4);
  o.buf.writeFloatLE(v, o.pos);
  o.pos += 4;
};

const writeDouble: Write = (o, v) => {
  if (typeof v !== 'number') throw UNWRITABLE;
  o.ensure(8);
  o.buf.writeDoubleLE(v, o.pos);
  o.pos += 8;
};

/**
 * A string as avsc writes it: the UTF-8 length, then the bytes. Up to 64 bytes avsc encodes by hand,
 * a lone surrogate as its own three bytes (ED A0 80 for U+D800) where Buffer writes U+FFFD; the same
 * loop here keeps even that identical (PostgreSQL text never holds one).
 */
function writeStringValue(o: AvroOut, s: string): void {
  const len = Buffer.byteLength(s);
  o.ensure(len + 5);
  varlong(o, len);
  const buf = o.buf;
  let pos = o.pos;
  if (len > 64) {
    (buf as Buffer & { utf8Write(s: string, offset: number, length: number): number }).utf8Write(s, pos, len);
    o.pos = pos + len;
    return;
  }
  for (let i = 0; i < s.length; i++) {
    let c1 = s.charCodeAt(i);
    if (c1 < 0x80) buf[pos++] = c1;
    else if (c1 < 0x800) {
      buf[pos++] = (c1 >> 6) | 0xc0;
      buf[pos++] = (c1 & 0x3f) | 0x80;
    } else if ((c1 & 0xfc00) === 0xd800 && i + 1 < s.length && (s.charCodeAt(i + 1) & 0xfc00) === 0xdc00) {
      c1 = 0x10000 + ((c1 & 0x03ff) << 10) + (s.charCodeAt(i + 1) & 0x03ff);
      i++;
      buf[pos++] = (c1 >> 18) | 0xf0;
      buf[pos++] = ((c1 >> 12) & 0x3f) | 0x80;
      buf[pos++] = ((c1 >> 6) & 0x3f) | 0x80;
      buf[pos++] = (c1 & 0x3f) | 0x80;
    } else {
      buf[pos++] = (c1 >> 12) | 0xe0;
      buf[pos++] = ((c1 >> 6) & 0x3f) | 0x80;
      buf[pos++] = (c1 & 0x3f) | 0x80;
    }
  }
  o.pos = pos;
}

const writeString: Write = (o, v) => {
  if (typeof v !== 'string') throw UNWRITABLE;
  writeStringValue(o, v);
};

/**
 * A string field whose value mostly repeats from event to event (the source block's version, names,
 * snapshot marker; the op): the bytes of the last value are kept and copied while the same value comes.
 */
function repeatedStringWriter(): Write {
  const cache = Buffer.allocUnsafe(69);
  let last: string | null = null;
  let length = 0;
  return (o, v) => {
    if (v === last) {
      o.ensure(length);
      const buf = o.buf;
      let pos = o.pos;
      for (let i = 0; i < length; i++) buf[pos++] = cache[i]!;
      o.pos = pos;
      return;
    }
    if (typeof v !== 'string') throw UNWRITABLE;
    const start = o.pos;
    writeStringValue(o, v);
    if (o.pos - start <= cache.length) {
      last = v;
      length = o.pos - start;
      o.buf.copy(cache, 0, start, o.pos);
    } else last = null;
  };
}

const writeBytes: Write = (o, v) => {
  if (!Buffer.isBuffer(v)) throw UNWRITABLE;
  o.ensure(v.length + 10);
  varlong(o, v.length);
  v.copy(o.buf, o.pos);
  o.pos += v.length;
};

function arrayWriter(items: Write): Write {
  return (o, v) => {
    if (!Array.isArray(v)) throw UNWRITABLE;
    o.ensure(10);
    if (v.length > 0) {
      varlong(o, v.length);
      for (let i = 0; i < v.length; i++) items(o, v[i]);
      o.ensure(1);
    }
    o.buf[o.pos++] = 0;
  };
}

/**
 * A map: a Connect map (a JS Map; anything else goes to avsc's path, as serde's copy takes only Maps)
 * is first made the object avsc is given (debezium-serde.ts avroValue), so the keys come in the same
 * order (Object.keys puts integer-like keys first).
 */
function mapWriter(values: Write): Write {
  return (o, v) => {
    if (!(v instanceof Map)) throw UNWRITABLE;
    const obj: Record<string, unknown> = {};
    for (const [k, x] of v) obj[String(k)] = x;
    const keys = Object.keys(obj);
    o.ensure(10);
    if (keys.length > 0) {
      varlong(o, keys.length);
      for (const k of keys) {
        writeStringValue(o, k);
        values(o, obj[k]);
      }
      o.ensure(1);
    }
    o.buf[o.pos++] = 0;
  };
}

/** ["null", T] or [T, "null"]: the branch index, then T. */
function nullableWriter(inner: Write, nullFirst: boolean): Write {
  const nullIndex = nullFirst ? 0 : 2;
  const valueIndex = nullFirst ? 2 : 0;
  return (o, v) => {
    o.ensure(1);
    if (v === null) {
      o.buf[o.pos++] = nullIndex;
      return;
    }
    o.buf[o.pos++] = valueIndex;
    inner(o, v);
  };
}

/** True for what avsc's unwrapped union files under "object" (a record or map branch). */
function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v) && !Buffer.isBuffer(v) && !(v instanceof Map);
}

interface FieldPlan {
  name: string;
  write: Write;
  /** The field's Avro default is null: `undefined` is written as null, as avsc writes the default. */
  nullDefault: boolean;
}

/**
 * A record: a generated function reads each field by its (quoted) name and calls that field's writer;
 * `undefined` is a null where the default is null, anything else the general path.
 */
function recordWriter(fields: FieldPlan[]): Write {
  const args = ['U', 'isObject'];
  const values: unknown[] = [UNWRITABLE, isPlainObject];
  let body =
    'return function writeRecord(o, v) {\n  if (v === null || typeof v !== "object" || (v.constructor !== Object && !isObject(v))) throw U;\n  let x;\n';
  fields.forEach((f, i) => {
    args.push(`w${i}`);
    values.push(f.write);
    body += `  x = v[${JSON.stringify(f.name)}];\n`;
    body += f.nullDefault ? `  w${i}(o, x === undefined ? null : x);\n` : `  if (x === undefined) throw U;\n  w${i}(o, x);\n`;
  });
  body += '};';
  // Field names are JSON-quoted: nothing of the schema reaches the code as code.
  return new Function(...args, body)(...values) as Write;
}

/** Why a schema is not compiled (it goes through avsc). */
class NotCompiled extends Error {}

type AvroSchema = string | Record<string, unknown> | AvroSchema[];

const PRIMITIVES: Record<string, () => Write> = {
  null: () => writeNull,
  boolean: () => writeBoolean,
  int: () => writeInt,
  long: longWriter,
  float: () => writeFloat,
  double: () => writeDouble,
  string: () => writeString,
  bytes: () => writeBytes,
};

/**
 * `repeat`: the value is a field of a record named in `repeated` (its strings mostly repeat). Named
 * records are kept in `named` by full name.
 */
function compile(
  schema: AvroSchema,
  named: Map<string, Write>,
  namespace: string | undefined,
  repeated: ReadonlySet<string>,
  repeat = false,
): Write {
  if (typeof schema === 'string') {
    if (repeat && schema === 'string') return repeatedStringWriter();
    const primitive = PRIMITIVES[schema];
    if (primitive) return primitive();
    const ref = named.get(schema) ?? (namespace ? named.get(`${namespace}.${schema}`) : undefined);
    if (!ref) throw new NotCompiled(`unknown type name ${schema}`);
    return ref;
  }
  if (Array.isArray(schema)) {
    if (schema.length !== 2) throw new NotCompiled('a union of other than two branches');
    const nullAt = schema.indexOf('null');
    if (nullAt < 0 || schema.lastIndexOf('null') !== nullAt) throw new NotCompiled('a union without exactly one null');
    // avsc picks a union's branch by the value's kind (object, array, Buffer, ...) before the branch's own
    // check; each writer below checks the same kinds, so a value of another kind goes to avsc either way.
    return nullableWriter(compile(schema[1 - nullAt]!, named, namespace, repeated, repeat), nullAt === 0);
  }
  const type = schema.type as AvroSchema;
  switch (type) {
    case 'record': {
      const ns = typeof schema.namespace === 'string' ? schema.namespace : namespace;
      const name = String(schema.name);
      const full = name.includes('.') ? name : ns ? `${ns}.${name}` : name;
      const recordNs = name.includes('.') ? name.slice(0, name.lastIndexOf('.')) : ns;
      // Registered before its fields compile, so a field may name it (connect-avro never does).
      let self: Write = () => {
        throw new NotCompiled(`record ${full} used before it is compiled`);
      };
      named.set(full, (o, v) => self(o, v));
      const fields = (schema.fields as { name: string; type: AvroSchema; default?: unknown }[]).map((f) => ({
        name: f.name,
        write: compile(f.type, named, recordNs, repeated, repeated.has(full)),
        nullDefault: 'default' in f && f.default === null,
      }));
      self = recordWriter(fields);
      named.set(full, self);
      return self;
    }
    case 'array':
      return arrayWriter(compile(schema.items as AvroSchema, named, namespace, repeated));
    case 'map':
      return mapWriter(compile(schema.values as AvroSchema, named, namespace, repeated));
    case 'enum':
    case 'fixed':
    case 'error':
      throw new NotCompiled(`Avro ${type} is not written by connect-avro`);
    default:
      // A primitive with attributes (connect.name, logicalType, ...): the attributes change nothing in
      // the bytes (serde gives avsc no logical types and writes these as the bare primitive).
      if (typeof type === 'string' && PRIMITIVES[type]) return compile(type, named, namespace, repeated, repeat);
      return compile(type, named, namespace, repeated, repeat);
  }
}

/** A compiled writer for one registered Avro schema. */
export interface CompiledAvroWriter {
  /**
   * The Confluent-framed message (magic byte, schema id, Avro body) of `value`; null when the value
   * needs avsc's general path (see the module comment).
   */
  frame(schemaId: number, value: unknown): Buffer | null;
}

const OUT = new AvroOut();

/**
 * Compiles the writer of `schema` (the Avro schema as JSON, as registered). Returns null when the
 * schema has a part this writer does not handle; the caller then keeps avsc for it. `repeated`: full
 * names of records whose string fields mostly repeat from event to event (the envelope's, the source
 * block's): their last bytes are kept per field. It changes no byte.
 */
export function compileAvroWriter(schema: unknown, repeated: ReadonlySet<string> = new Set()): CompiledAvroWriter | null {
  let write: Write;
  try {
    write = compile(schema as AvroSchema, new Map(), undefined, repeated);
  } catch (err) {
    if (err instanceof NotCompiled) return null;
    throw err;
  }
  return {
    frame(schemaId, value) {
      const o = OUT;
      o.pos = 0;
      o.ensure(5);
      o.buf[0] = 0;
      o.buf.writeUInt32BE(schemaId, 1);
      o.pos = 5;
      try {
        write(o, value);
      } catch {
        // UNWRITABLE, or anything a value could still make go wrong here: avsc writes it or names the column.
        return null;
      }
      const out = Buffer.allocUnsafe(o.pos);
      o.buf.copy(out, 0, 0, o.pos);
      return out;
    },
  };
}

/** Which writer writes the debezium encoding's Avro. */
export type DebeziumAvroWriter = 'compiled' | 'avsc';

/**
 * PARITY_DEBEZIUM_WRITER (`compiled`, the default, or `avsc`): a switch for measuring and diagnosing
 * the writer against its reference (bench:cdc --debezium-writer), not a setting users need.
 */
export function debeziumAvroWriterFromEnv(env: NodeJS.ProcessEnv = process.env): DebeziumAvroWriter {
  const value = env.PARITY_DEBEZIUM_WRITER;
  if (value === undefined || value === '' || value === 'compiled') return 'compiled';
  if (value === 'avsc') return 'avsc';
  throw new ParityError('PARITY_BAD_INPUT', `PARITY_DEBEZIUM_WRITER must be compiled or avsc, got ${JSON.stringify(value)}`, {
    retriable: false,
    hint: 'unset PARITY_DEBEZIUM_WRITER (compiled is the default), or set it to avsc',
  });
}
