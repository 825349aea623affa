/**
 * Kafka Connect's data model, the lingua franca of Debezium: a schema (type, optionality, a semantic
 * name with version and parameters, a default) and the values it describes. parity derives one Connect
 * schema per captured table the way Debezium's PostgreSQL connector does, and every wire format
 * (Avro through the registry, Kafka Connect's JsonConverter) is a rendering of it, so a consumer that
 * holds Debezium's schema reads parity's events as Debezium's.
 */

export type ConnectType =
  | 'int8'
  | 'int16'
  | 'int32'
  | 'int64'
  | 'float32'
  | 'float64'
  | 'boolean'
  | 'string'
  | 'bytes'
  | 'array'
  | 'map'
  | 'struct';

/**
 * A Connect value. Integers of type int64 are `bigint` (exact); the other integer and float types are
 * numbers; `bytes` is a Buffer; a struct is a plain object with its fields in schema order; a map whose
 * keys are strings is a `Map`.
 */
export type ConnectValue =
  | null
  | boolean
  | number
  | bigint
  | string
  | Buffer
  | ConnectValue[]
  | ConnectStruct
  | Map<ConnectValue, ConnectValue>;

export interface ConnectStruct {
  [field: string]: ConnectValue;
}

export interface ConnectField {
  name: string;
  schema: ConnectSchema;
}

export interface ConnectSchema {
  type: ConnectType;
  optional: boolean;
  /** Semantic (logical) name, e.g. `io.debezium.time.MicroTimestamp`, or a struct's record name. */
  name?: string;
  version?: number;
  doc?: string;
  parameters?: Readonly<Record<string, string>>;
  /** The default, as a Connect value of this schema; absent when there is none. */
  default?: ConnectValue;
  /** Struct fields, in order. */
  fields?: ConnectField[];
  /** Array element schema. */
  items?: ConnectSchema;
  /** Map key and value schemas. */
  keys?: ConnectSchema;
  values?: ConnectSchema;
}

/** Kafka Connect's `Decimal` logical type: bytes of the unscaled value, two's complement big-endian. */
export const CONNECT_DECIMAL = 'org.apache.kafka.connect.data.Decimal';
export const CONNECT_DATE = 'org.apache.kafka.connect.data.Date';
export const CONNECT_TIME = 'org.apache.kafka.connect.data.Time';
export const CONNECT_TIMESTAMP = 'org.apache.kafka.connect.data.Timestamp';
/** The parameter Debezium and Confluent use for a Decimal's precision. */
export const DECIMAL_PRECISION_PARAMETER = 'connect.decimal.precision';

/** A struct schema; fields keep the order given. */
export function structSchema(
  name: string | undefined,
  fields: ConnectField[],
  optional = false,
  extra: Partial<ConnectSchema> = {},
): ConnectSchema {
  return { type: 'struct', fields, optional, ...(name === undefined ? {} : { name }), ...extra };
}

/** The same schema with another optionality (and no default when it becomes required without one). */
export function withOptional(schema: ConnectSchema, optional: boolean): ConnectSchema {
  return { ...schema, optional };
}

/** Java's `BigInteger.toByteArray()`: the shortest two's-complement big-endian bytes of `n`. */
export function twosComplementBytes(n: bigint): Buffer {
  if (n === 0n) return Buffer.from([0]);
  const bytes: number[] = [];
  let v = n;
  // Emit low bytes until what is left is pure sign extension of the last byte's top bit.
  for (;;) {
    const byte = Number(v & 0xffn);
    bytes.push(byte);
    v >>= 8n;
    if ((v === 0n && (byte & 0x80) === 0) || (v === -1n && (byte & 0x80) !== 0)) break;
  }
  return Buffer.from(bytes.reverse());
}

/** Inverse of {@link twosComplementBytes}. */
export function fromTwosComplement(bytes: Uint8Array): bigint {
  if (bytes.length === 0) return 0n;
  let n = 0n;
  for (const b of bytes) n = (n << 8n) | BigInt(b);
  if ((bytes[0]! & 0x80) !== 0) n -= 1n << BigInt(bytes.length * 8);
  return n;
}

/** Exact decimal text of `unscaled × 10^-scale` ("-399841.62", "0.000000001", "12"). */
export function decimalText(unscaled: bigint, scale: number): string {
  if (scale <= 0) return (unscaled * 10n ** BigInt(-scale)).toString();
  const negative = unscaled < 0n;
  const digits = (negative ? -unscaled : unscaled).toString().padStart(scale + 1, '0');
  return `${negative ? '-' : ''}${digits.slice(0, -scale)}.${digits.slice(-scale)}`;
}
