/**
 * PostgreSQL column -> Connect schema and value, exactly as Debezium's PostgreSQL connector (3.x) maps
 * them, with its options by their names and meanings (`decimal.handling.mode`, `time.precision.mode`,
 * `binary.handling.mode`, `interval.handling.mode`, `hstore.handling.mode`, `money.fraction.digits`,
 * `include.unknown.datatypes`). Input is PostgreSQL's text output of each value (the stream and the
 * snapshots both read text), so a row converts identically whichever path delivered it.
 *
 * Checked against what Debezium 3.6.0.Final itself wrote for the same rows:
 * test/conformance/debezium-3.6.0/ and test/unit/connectors/debezium-types.test.ts.
 */
import {
  CONNECT_DATE,
  CONNECT_DECIMAL,
  CONNECT_TIME,
  CONNECT_TIMESTAMP,
  type ConnectSchema,
  type ConnectValue,
  DECIMAL_PRECISION_PARAMETER,
  twosComplementBytes,
} from '../../services/core/connect-schema.js';
import {
  type CivilDate,
  civilFromDays,
  daysFromCivil,
  floorDiv,
  MICROS_PER_DAY,
  TIMESTAMP_NEG_INFINITY,
  TIMESTAMP_POS_INFINITY,
  zeroPad,
} from '../../services/core/calendar.js';
import { ParityError } from '../../services/core/errors.js';
import { arrayDelimiter, byteaBytes, parseArrayText } from './value-decoder.js';

export type DecimalHandlingMode = 'precise' | 'double' | 'string';
export type TimePrecisionMode = 'adaptive' | 'adaptive_time_microseconds' | 'connect';
export type BinaryHandlingMode = 'bytes' | 'base64' | 'base64-url-safe' | 'hex';
export type IntervalHandlingMode = 'numeric' | 'string';
export type HstoreHandlingMode = 'json' | 'map';

/** Debezium's type-mapping options, named as Debezium names them, with Debezium's defaults. */
export interface DebeziumTypeOptions {
  'decimal.handling.mode': DecimalHandlingMode;
  'time.precision.mode': TimePrecisionMode;
  'binary.handling.mode': BinaryHandlingMode;
  'interval.handling.mode': IntervalHandlingMode;
  'hstore.handling.mode': HstoreHandlingMode;
  'money.fraction.digits': number;
  'include.unknown.datatypes': boolean;
}

export const DEBEZIUM_TYPE_DEFAULTS: Readonly<DebeziumTypeOptions> = {
  'decimal.handling.mode': 'precise',
  'time.precision.mode': 'adaptive',
  'binary.handling.mode': 'bytes',
  'interval.handling.mode': 'numeric',
  'hstore.handling.mode': 'json',
  'money.fraction.digits': 2,
  'include.unknown.datatypes': false,
};

/** What the catalog says about a column (pg_attribute, pg_type after domains, pg_attrdef, pg_enum). */
export interface PgColumnFacts {
  name: string;
  /** pg_type.typname of the column's type after following domains; arrays as `_int4` or with `array`. */
  type: string;
  /** A one-dimensional array of `type` (when `type` is the element's name). */
  array?: boolean;
  /** pg_attribute.atttypmod (-1: none). */
  typmod: number;
  notNull: boolean;
  /** A key column is required in the key and in the value row, as Debezium writes it. */
  key?: boolean;
  /** pg_get_expr(adbin): the default's SQL text, or null. */
  defaultExpr?: string | null;
  /** Labels of an enum type, in sort order. */
  enumLabels?: readonly string[] | null;
  /** An array's element separator (the element type's pg_type.typdelim); absent: arrayDelimiter(type). */
  delimiter?: string;
}

/** A column as Debezium writes it: its schema, and PostgreSQL text -> Connect value. */
export interface DebeziumColumn {
  name: string;
  schema: ConnectSchema;
  fromText(text: string): ConnectValue;
}

interface Mapping {
  schema: Omit<ConnectSchema, 'optional'>;
  /** Text -> value; `null` where Debezium writes null for a value it cannot represent (numeric NaN). */
  convert(text: string): ConnectValue;
}

/** Debezium's average month for MicroDuration: 365.25 / 12 days, in microseconds. */
const MICROS_PER_MONTH = 2_629_800_000_000n;
/**
 * What Debezium 3.6 writes for a `date` of `infinity` / `-infinity`, observed: a streamed scalar gives
 * PostgreSQL's internal day numbers shifted to the Unix epoch; array elements (and snapshot scalars,
 * which parity does not imitate) give the JDBC driver's constants narrowed to int32 days.
 */
const DATE_INFINITY = { stream: [-2_147_472_692, -2_147_472_691], array: [-622_191_234, -625_821_272] } as const;

function semantic(type: ConnectSchema['type'], name: string, parameters?: Record<string, string>): Omit<ConnectSchema, 'optional'> {
  return { type, name, version: 1, ...(parameters ? { parameters } : {}) };
}

/** `numeric(p,s)` typmod -> [precision, scale]; null when unconstrained. */
export function numericTypmod(typmod: number): [number, number] | null {
  if (typmod < 4) return null;
  const t = typmod - 4;
  const scaleBits = t & 0x7ff;
  // PostgreSQL 15 allows a negative scale, stored as an 11-bit two's complement.
  const scale = scaleBits & 0x400 ? scaleBits - 0x800 : scaleBits;
  return [(t >> 16) & 0xffff, scale];
}

/** Unscaled integer and scale of a decimal text ("-399841.62" -> [-39984162n, 2]); null for NaN/±Infinity. */
export function parseDecimal(text: string): [bigint, number] | null {
  const m = /^([+-]?)(\d*)(?:\.(\d*))?(?:[eE]([+-]?\d+))?$/.exec(text.trim());
  if (!m) return null;
  const frac = m[3] ?? '';
  let scale = frac.length - (m[4] ? Number(m[4]) : 0);
  let digits = `${m[2] ?? ''}${frac}` || '0';
  if (scale < 0) {
    digits += '0'.repeat(-scale);
    scale = 0;
  }
  const unscaled = BigInt(digits);
  return [m[1] === '-' ? -unscaled : unscaled, scale];
}

function rescale(unscaled: bigint, from: number, to: number): bigint {
  if (to === from) return unscaled;
  if (to > from) return unscaled * 10n ** BigInt(to - from);
  const div = 10n ** BigInt(from - to);
  // HALF_UP, as Java's BigDecimal.setScale would be asked to round a value PostgreSQL already rounded.
  const q = unscaled / div;
  const r = unscaled % div;
  const twice = (r < 0n ? -r : r) * 2n;
  return twice >= div ? q + (unscaled < 0n ? -1n : 1n) : q;
}

function decimalMapping(options: DebeziumTypeOptions, precisionScale: [number, number] | null, fixedScale?: number): Mapping {
  const mode = options['decimal.handling.mode'];
  if (mode === 'double') return { schema: { type: 'float64' }, convert: (t) => Number(t.replace(/[^0-9eE.+-]|^\s+|\s+$/g, '')) };
  if (mode === 'string') return { schema: { type: 'string' }, convert: (t) => t };
  const scale = fixedScale ?? precisionScale?.[1];
  if (scale === undefined) {
    // Unconstrained numeric: Debezium's VariableScaleDecimal, a struct of the scale and the unscaled bytes.
    return {
      schema: {
        type: 'struct',
        name: 'io.debezium.data.VariableScaleDecimal',
        version: 1,
        doc: 'Variable scaled decimal',
        fields: [
          { name: 'scale', schema: { type: 'int32', optional: false } },
          { name: 'value', schema: { type: 'bytes', optional: false } },
        ],
      },
      convert: (t) => {
        const d = parseDecimal(t);
        if (!d) return null;
        return { scale: d[1], value: twosComplementBytes(d[0]) };
      },
    };
  }
  const parameters: Record<string, string> = { scale: String(scale) };
  if (precisionScale) parameters[DECIMAL_PRECISION_PARAMETER] = String(precisionScale[0]);
  return {
    schema: semantic('bytes', CONNECT_DECIMAL, parameters),
    convert: (t) => {
      const fast = smallDecimalBytes(t, scale);
      if (fast !== null) return fast;
      const d = parseDecimal(t);
      return d ? twosComplementBytes(rescale(d[0], d[1], scale)) : null;
    },
  };
}

/**
 * The Connect Decimal bytes of a numeric's text at `scale` (0 or more) without BigInt, for the common
 * case: plain digits (an optional `-`, at most `scale` fraction digits, so no rounding) whose unscaled
 * value is a safe integer. The same bytes as twosComplementBytes(rescale(parseDecimal(text))); null for
 * anything else (that path handles it).
 */
export function smallDecimalBytes(text: string, scale: number): Buffer | null {
  // A negative scale (numeric(p,-s)) rounds every value: the general path.
  if (scale < 0) return null;
  const length = text.length;
  let i = 0;
  const negative = length > 0 && text.charCodeAt(0) === 45; // '-'
  if (negative) i++;
  let n = 0;
  let digits = 0;
  let fraction = -1;
  for (; i < length; i++) {
    const c = text.charCodeAt(i);
    if (c >= 48 && c <= 57) {
      // 15 digits stay below 2^53.
      if (++digits > 15) return null;
      n = n * 10 + (c - 48);
      if (fraction >= 0) fraction++;
    } else if (c === 46 && fraction < 0) {
      fraction = 0; // the decimal point
    } else return null;
  }
  if (digits === 0 || fraction > scale) return null;
  if (fraction < scale) {
    n *= 10 ** (scale - Math.max(0, fraction));
    if (!Number.isSafeInteger(n)) return null;
  }
  if (negative) n = -n;
  // Java's BigInteger.toByteArray: the fewest big-endian two's-complement bytes that keep the sign.
  let size = 1;
  for (let limit = 128; n >= limit || n < -limit; limit *= 256) size++;
  const out = Buffer.allocUnsafe(size);
  let v = n;
  for (let b = size - 1; b >= 0; b--) {
    const q = Math.floor(v / 256);
    out[b] = v - q * 256;
    v = q;
  }
  return out;
}

/** `$1,234.56`, `-$12.34`, `($12.34)` -> `1234.56`, `-12.34`. */
function moneyText(text: string): string {
  const negative = /^\s*-|^\s*\(|-\s*$/.test(text);
  const body = text.replace(/[^0-9.]/g, '');
  return negative ? `-${body}` : body;
}

/** Days since 1970-01-01 of `YYYY-MM-DD[ BC]` (proleptic Gregorian, as java.time). */
export function epochDay(text: string): number {
  const m = /^(\d{4,})-(\d{2})-(\d{2})( BC)?$/.exec(text);
  if (!m) throw new ParityError('PARITY_DECODE', `not a date in ISO DateStyle: ${JSON.stringify(text.slice(0, 40))}`);
  const month = Number(m[2]);
  const day = Number(m[3]);
  if (month < 1 || month > 12 || day < 1 || day > 31) {
    throw new ParityError('PARITY_DECODE', `not a date in ISO DateStyle: ${JSON.stringify(text.slice(0, 40))}`);
  }
  return daysFromCivil(m[4] ? 1 - Number(m[1]) : Number(m[1]), month, day);
}

/** Microseconds of `HH:MM:SS[.ffffff]` (24:00:00 included). */
export function timeMicros(text: string): bigint {
  const m = /^(\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,6}))?$/.exec(text);
  if (!m) throw new ParityError('PARITY_DECODE', `not a time: ${JSON.stringify(text.slice(0, 40))}`);
  const micros = BigInt((m[4] ?? '').padEnd(6, '0'));
  return ((BigInt(m[1]!) * 60n + BigInt(m[2]!)) * 60n + BigInt(m[3]!)) * 1_000_000n + micros;
}

/** Offset seconds of `+HH[:MM[:SS]]`. */
function offsetSeconds(text: string): number {
  const m = /^([+-])(\d{2})(?::?(\d{2}))?(?::?(\d{2}))?$/.exec(text);
  if (!m) throw new ParityError('PARITY_DECODE', `not a UTC offset: ${JSON.stringify(text)}`);
  const s = Number(m[2]) * 3600 + Number(m[3] ?? 0) * 60 + Number(m[4] ?? 0);
  return m[1] === '-' ? -s : s;
}

/** Microseconds since the epoch of `YYYY-MM-DD HH:MM:SS[.ffffff][+HH[:MM]][ BC]`, at UTC unless an offset is given. */
export function epochMicros(text: string): bigint {
  const m = /^(\d{4,}-\d{2}-\d{2}) (\d{2}:\d{2}:\d{2}(?:\.\d{1,6})?)([+-]\d{2}(?::?\d{2}){0,2})?( BC)?$/.exec(text);
  if (!m) throw new ParityError('PARITY_DECODE', `not a timestamp in ISO DateStyle: ${JSON.stringify(text.slice(0, 40))}`);
  const day = epochDay(`${m[1]}${m[4] ?? ''}`);
  const offset = m[3] ? BigInt(offsetSeconds(m[3])) * 1_000_000n : 0n;
  return BigInt(day) * MICROS_PER_DAY + timeMicros(m[2]!) - offset;
}

const INT64_MAX = 9_223_372_036_854_775_807n;

/**
 * {@link epochMicros} of a `timestamp`, refused where Debezium's int64 field cannot carry it truthfully:
 * from 294247 AD on the microseconds pass 2^63 - 1 (Debezium's TimeUnit conversion then saturates or
 * wraps to a wrong value, silently), and the one instant equal to the JDBC driver's `infinity` constant
 * would read back as `infinity`. A clear stop beats a wrong value in every consumer.
 */
function representableMicros(text: string, unit: 1n | 1000n): bigint {
  const micros = epochMicros(text);
  const value = micros / unit;
  if (value > INT64_MAX || value === TIMESTAMP_POS_INFINITY / unit) {
    throw new ParityError(
      'PARITY_DECODE',
      `timestamp ${JSON.stringify(text)} cannot be written as a Debezium MicroTimestamp/Timestamp: ${
        value > INT64_MAX ? 'its microseconds since 1970 exceed a 64-bit integer' : "it equals the value Debezium writes for 'infinity'"
      }`,
      {
        hint: "change the value in the source (PostgreSQL's own limit is 294276 AD), or stream the table with the exact-text encoding",
      },
    );
  }
  return micros;
}

/** java.time's ISO fraction: as many digits as needed (none for zero). */
function isoFraction(micros: bigint): string {
  if (micros === 0n) return '';
  return `.${zeroPad(micros, 6).replace(/0+$/, '')}`;
}

/** One date object reused by {@link zonedTimestamp}, so that a value allocates none. */
const civil: CivilDate = { year: 0, month: 0, day: 0 };

/** ZonedTimestamp text: UTC, `Z`, with the column's fractional digits (Debezium pads to the precision). */
export function zonedTimestamp(micros: bigint, precision: number): string {
  const days = floorDiv(micros, MICROS_PER_DAY);
  const inDay = micros - days * MICROS_PER_DAY;
  const seconds = inDay / 1_000_000n;
  const frac = inDay - seconds * 1_000_000n;
  // Calendar arithmetic, not Date: timestamptz reaches 294276 AD and 4714 BC.
  const { year, month, day } = civilFromDays(Number(days), civil);
  // java.time's ISO_LOCAL_DATE: four digits at least, `-` before a year before 1 BC, `+` after 9999.
  const yearText = year < 0 ? `-${zeroPad(-year, 4)}` : year > 9999 ? `+${year}` : zeroPad(year, 4);
  const base = `${yearText}-${zeroPad(month, 2)}-${zeroPad(day, 2)}T${zeroPad(seconds / 3600n, 2)}:${zeroPad((seconds / 60n) % 60n, 2)}:${zeroPad(seconds % 60n, 2)}`;
  const digits = Math.min(Math.max(precision, 0), 6);
  const fraction = digits === 0 ? '' : `.${zeroPad(frac, 6).slice(0, digits)}`;
  return `${base}${fraction}Z`;
}

// The CDC session's timestamptz text is at UTC (TimeZone=UTC): `2026-12-06 23:44:13.1234+00`.
const UTC_TIMESTAMP = /^(\d{4}-\d{2}-\d{2}) (\d{2}:\d{2}:\d{2})(?:\.(\d{1,6}))?\+00$/;

/**
 * ZonedTimestamp text of a timestamptz's text: {@link zonedTimestamp} of {@link epochMicros}, by string
 * work alone for the common case (a four-digit AD year at offset +00, every event's timestamp), which
 * is several times faster than the BigInt arithmetic.
 */
export function zonedTimestampOfText(text: string, precision: number): string {
  const m = UTC_TIMESTAMP.exec(text);
  if (!m || m[1]! < '0001') return zonedTimestamp(epochMicros(text), precision);
  const digits = Math.min(Math.max(precision, 0), 6);
  const fraction = digits === 0 ? '' : `.${(m[3] ?? '').padEnd(6, '0').slice(0, digits)}`;
  return `${m[1]}T${m[2]}${fraction}Z`;
}

/** ZonedTime text: the time at UTC (`13:45:56+02` -> `11:45:56Z`). */
export function zonedTime(text: string): string {
  const m = /^(\d{2}:\d{2}:\d{2}(?:\.\d{1,6})?)([+-]\d{2}(?::?\d{2}){0,2})$/.exec(text);
  if (!m) throw new ParityError('PARITY_DECODE', `not a time with time zone: ${JSON.stringify(text.slice(0, 40))}`);
  let micros = (timeMicros(m[1]!) - BigInt(offsetSeconds(m[2]!)) * 1_000_000n) % MICROS_PER_DAY;
  if (micros < 0n) micros += MICROS_PER_DAY;
  const s = micros / 1_000_000n;
  return `${zeroPad(s / 3600n, 2)}:${zeroPad((s / 60n) % 60n, 2)}:${zeroPad(s % 60n, 2)}${isoFraction(micros % 1_000_000n)}Z`;
}

interface IntervalParts {
  months: bigint;
  days: bigint;
  micros: bigint;
}

/** PostgreSQL's `postgres` IntervalStyle text (`1 year 2 mons 3 days 04:05:06.789`, `-1 days`, `-00:00:01`). */
export function parseInterval(text: string): IntervalParts {
  let months = 0n;
  let days = 0n;
  let micros = 0n;
  const tokens = text.trim().split(/\s+/);
  for (let i = 0; i < tokens.length; i++) {
    const token = tokens[i]!;
    const time = /^([+-]?)(\d+):(\d{2}):(\d{2})(?:\.(\d{1,6}))?$/.exec(token);
    if (time) {
      const v =
        ((BigInt(time[2]!) * 60n + BigInt(time[3]!)) * 60n + BigInt(time[4]!)) * 1_000_000n + BigInt((time[5] ?? '').padEnd(6, '0'));
      micros += time[1] === '-' ? -v : v;
      continue;
    }
    const unit = tokens[i + 1];
    if (!/^[+-]?\d+$/.test(token) || unit === undefined) {
      throw new ParityError('PARITY_DECODE', `not an interval in postgres IntervalStyle: ${JSON.stringify(text.slice(0, 60))}`);
    }
    const n = BigInt(token);
    i++;
    if (/^years?$/.test(unit)) months += n * 12n;
    else if (/^mons?$/.test(unit)) months += n;
    else if (/^days?$/.test(unit)) days += n;
    else throw new ParityError('PARITY_DECODE', `unknown interval unit ${JSON.stringify(unit)}`);
  }
  return { months, days, micros };
}

/** io.debezium.time.Interval: ISO 8601 (`P1Y2M3DT4H5M6.789S`). */
export function isoInterval(p: IntervalParts): string {
  const years = p.months / 12n;
  const months = p.months % 12n;
  const sign = p.micros < 0n ? '-' : '';
  const abs = p.micros < 0n ? -p.micros : p.micros;
  const hours = abs / 3_600_000_000n;
  const minutes = (abs / 60_000_000n) % 60n;
  const seconds = (abs / 1_000_000n) % 60n;
  const frac = abs % 1_000_000n;
  const secondsText = frac === 0n ? `${seconds}` : `${seconds}${isoFraction(frac)}`;
  return `P${years}Y${months}M${p.days}DT${sign}${hours}H${sign}${minutes}M${sign}${secondsText}S`;
}

/** Bit string text (`101`) -> Debezium's Bits bytes: the number, little-endian, no trailing zero bytes. */
export function bitsBytes(text: string): Buffer {
  let n = text === '' ? 0n : BigInt(`0b${text}`);
  const out: number[] = [];
  while (n > 0n) {
    out.push(Number(n & 0xffn));
    n >>= 8n;
  }
  return Buffer.from(out);
}

/** Little-endian WKB of a 2-D point, as Debezium's geometry.Point carries it. */
function pointWkb(x: number, y: number): Buffer {
  const b = Buffer.alloc(21);
  b.writeUInt8(1, 0);
  b.writeUInt32LE(1, 1);
  b.writeDoubleLE(x, 5);
  b.writeDoubleLE(y, 13);
  return b;
}

/** hstore text (`"a"=>"1", "b"=>NULL`) -> entries. */
export function parseHstore(text: string): [string, string | null][] {
  const out: [string, string | null][] = [];
  const re = /\s*"((?:[^"\\]|\\.)*)"\s*=>\s*(?:"((?:[^"\\]|\\.)*)"|(NULL))\s*,?/gy;
  let m: RegExpExecArray | null;
  const unescape = (s: string) => s.replace(/\\(.)/g, '$1');
  while ((m = re.exec(text)) !== null) out.push([unescape(m[1]!), m[3] ? null : unescape(m[2]!)]);
  return out;
}

/**
 * Bytes as `binary.handling.mode` writes them: the bytes themselves, or Java's Base64 (padded), its
 * URL-safe Base64 (also padded: `Base64.getUrlEncoder()`, unlike Node's unpadded `base64url`) or hex.
 */
export function binaryValue(bytes: Buffer, mode: BinaryHandlingMode): Buffer | string {
  switch (mode) {
    case 'bytes':
      return bytes;
    case 'base64':
      return bytes.toString('base64');
    case 'base64-url-safe':
      return bytes.toString('base64').replace(/\+/g, '-').replace(/\//g, '_');
    case 'hex':
      return bytes.toString('hex');
  }
}

function binaryMapping(mode: BinaryHandlingMode): Mapping {
  if (mode === 'bytes') return { schema: { type: 'bytes' }, convert: byteaBytes };
  return { schema: { type: 'string' }, convert: (t) => binaryValue(byteaBytes(t), mode) };
}

/** `time(p)` / `timestamp(p)` precision: the typmod, or 6 when unconstrained. */
function temporalPrecision(typmod: number): number {
  return typmod >= 0 ? typmod : 6;
}

const STRING_TYPES = new Set([
  'text',
  'varchar',
  'bpchar',
  'char',
  'name',
  'citext',
  'inet',
  'cidr',
  'macaddr',
  'macaddr8',
  'int4range',
  'int8range',
  'numrange',
  'tsrange',
  'tstzrange',
  'daterange',
  'int4multirange',
  'int8multirange',
  'nummultirange',
  'tsmultirange',
  'tstzmultirange',
  'datemultirange',
]);

function scalarMapping(facts: PgColumnFacts, type: string, options: DebeziumTypeOptions, inArray = false): Mapping | null {
  switch (type) {
    case 'bool':
      return { schema: { type: 'boolean' }, convert: (t) => t === 't' || t === 'true' };
    case 'int2':
      return { schema: { type: 'int16' }, convert: Number };
    case 'int4':
      return { schema: { type: 'int32' }, convert: Number };
    case 'int8':
    case 'oid':
      return { schema: { type: 'int64' }, convert: (t) => BigInt(t) };
    case 'float4':
      return { schema: { type: 'float32' }, convert: (t) => Math.fround(Number(t)) };
    case 'float8':
      return { schema: { type: 'float64' }, convert: Number };
    case 'numeric':
      return decimalMapping(options, numericTypmod(facts.typmod));
    case 'money': {
      const m = decimalMapping(options, null, options['money.fraction.digits']);
      return { schema: m.schema, convert: (t) => m.convert(moneyText(t)) };
    }
    case 'bytea':
      return binaryMapping(options['binary.handling.mode']);
    case 'uuid':
      return { schema: semantic('string', 'io.debezium.data.Uuid'), convert: (t) => t };
    case 'json':
    case 'jsonb':
      return { schema: semantic('string', 'io.debezium.data.Json'), convert: (t) => t };
    case 'xml':
      return { schema: semantic('string', 'io.debezium.data.Xml'), convert: (t) => t };
    case 'ltree':
      return { schema: semantic('string', 'io.debezium.data.Ltree'), convert: (t) => t };
    case 'bit':
    case 'varbit': {
      const length = facts.typmod > 0 ? facts.typmod : 2_147_483_647;
      if (type === 'bit' && length === 1) return { schema: { type: 'boolean' }, convert: (t) => t === '1' };
      return { schema: semantic('bytes', 'io.debezium.data.Bits', { length: String(length) }), convert: bitsBytes };
    }
    case 'date':
    case 'time':
    case 'timetz':
    case 'timestamp':
    case 'timestamptz':
    case 'interval':
      return temporalMapping(facts, type, options, inArray);
    case 'point':
      return pointMapping();
    case 'hstore':
      return hstoreMapping(options);
    default:
      if (facts.enumLabels && facts.enumLabels.length > 0) {
        return { schema: semantic('string', 'io.debezium.data.Enum', { allowed: facts.enumLabels.join(',') }), convert: (t) => t };
      }
      if (STRING_TYPES.has(type)) return { schema: { type: 'string' }, convert: (t) => t };
      if (options['include.unknown.datatypes']) return { schema: { type: 'bytes' }, convert: (t) => Buffer.from(t, 'utf8') };
      return null;
  }
}

/** Dates, times, timestamps and intervals, by `time.precision.mode` and `interval.handling.mode`. */
function temporalMapping(facts: PgColumnFacts, type: string, options: DebeziumTypeOptions, inArray: boolean): Mapping {
  const precise = options['time.precision.mode'];
  switch (type) {
    case 'date':
      return {
        schema: precise === 'connect' ? semantic('int32', CONNECT_DATE) : semantic('int32', 'io.debezium.time.Date'),
        convert: (t) => {
          const [positive, negative] = inArray ? DATE_INFINITY.array : DATE_INFINITY.stream;
          return t === 'infinity' ? positive : t === '-infinity' ? negative : epochDay(t);
        },
      };
    case 'time': {
      const p = temporalPrecision(facts.typmod);
      if (precise === 'connect' || (precise === 'adaptive' && p <= 3)) {
        const name = precise === 'connect' ? CONNECT_TIME : 'io.debezium.time.Time';
        return { schema: semantic('int32', name), convert: (t) => Number(timeMicros(t) / 1000n) };
      }
      return { schema: semantic('int64', 'io.debezium.time.MicroTime'), convert: timeMicros };
    }
    case 'timetz':
      return { schema: semantic('string', 'io.debezium.time.ZonedTime'), convert: zonedTime };
    case 'timestamp': {
      const p = temporalPrecision(facts.typmod);
      const micros = (t: string, unit: 1n | 1000n) =>
        t === 'infinity' ? TIMESTAMP_POS_INFINITY : t === '-infinity' ? TIMESTAMP_NEG_INFINITY : representableMicros(t, unit);
      // adaptive and adaptive_time_microseconds agree on timestamps: milliseconds up to precision 3.
      if (precise === 'connect' || p <= 3) {
        const name = precise === 'connect' ? CONNECT_TIMESTAMP : 'io.debezium.time.Timestamp';
        return { schema: semantic('int64', name), convert: (t) => floorDiv(micros(t, 1000n), 1000n) };
      }
      return { schema: semantic('int64', 'io.debezium.time.MicroTimestamp'), convert: (t) => micros(t, 1n) };
    }
    case 'timestamptz': {
      const p = temporalPrecision(facts.typmod);
      return {
        schema: semantic('string', 'io.debezium.time.ZonedTimestamp'),
        convert: (t) => (t === 'infinity' || t === '-infinity' ? t : zonedTimestampOfText(t, p)),
      };
    }
    default:
      if (options['interval.handling.mode'] === 'string') {
        return { schema: semantic('string', 'io.debezium.time.Interval'), convert: (t) => isoInterval(parseInterval(t)) };
      }
      return {
        schema: semantic('int64', 'io.debezium.time.MicroDuration'),
        convert: (t) => {
          const p = parseInterval(t);
          return p.months * MICROS_PER_MONTH + p.days * MICROS_PER_DAY + p.micros;
        },
      };
  }
}

/** Debezium's geometry struct for `point` (x, y and its WKB); a fresh schema object per column. */
function pointMapping(): Mapping {
  return {
    schema: {
      type: 'struct',
      name: 'io.debezium.data.geometry.Point',
      version: 1,
      doc: 'Geometry (POINT)',
      fields: [
        { name: 'x', schema: { type: 'float64', optional: false } },
        { name: 'y', schema: { type: 'float64', optional: false } },
        { name: 'wkb', schema: { type: 'bytes', optional: true } },
        { name: 'srid', schema: { type: 'int32', optional: true } },
      ],
    },
    convert: (t) => {
      const [x, y] = t.replace(/[()]/g, '').split(',').map(Number) as [number, number];
      return { x, y, wkb: pointWkb(x, y), srid: null };
    },
  };
}

/** `hstore` as a map or as JSON text (`hstore.handling.mode`). */
function hstoreMapping(options: DebeziumTypeOptions): Mapping {
  if (options['hstore.handling.mode'] === 'map') {
    return {
      schema: { type: 'map', keys: { type: 'string', optional: false }, values: { type: 'string', optional: true } },
      convert: (t) => new Map<ConnectValue, ConnectValue>(parseHstore(t)),
    };
  }
  return { schema: semantic('string', 'io.debezium.data.Json'), convert: (t) => JSON.stringify(Object.fromEntries(parseHstore(t))) };
}

/**
 * The literal of a column default as PostgreSQL prints it (`7`, `true`, `'new'::text`, `(-5)`,
 * `'2024-01-01'::date`), or null when the default is an expression (a function call, a sequence):
 * Debezium carries only constant defaults into the schema.
 */
export function defaultLiteral(expr: string | null | undefined): string | null {
  if (!expr) return null;
  let e = expr.trim();
  while (e.startsWith('(') && e.endsWith(')')) e = e.slice(1, -1).trim();
  const quoted = /^'((?:[^']|'')*)'(?:::[\w\s."[\]()]+)?$/.exec(e);
  if (quoted) return quoted[1]!.replace(/''/g, "'");
  if (/^NULL(::[\w\s."[\]()]+)?$/i.test(e)) return null;
  if (/^[+-]?\d+(\.\d+)?([eE][+-]?\d+)?(::[\w\s."[\]()]+)?$/.test(e)) return e.replace(/::.*$/, '');
  if (/^(true|false)$/i.test(e)) return e.toLowerCase();
  return null;
}

/**
 * The Debezium schema and converter of one column, or null when Debezium would leave the column out
 * (an unknown type with `include.unknown.datatypes` off).
 */
export function debeziumColumn(facts: PgColumnFacts, options: DebeziumTypeOptions = DEBEZIUM_TYPE_DEFAULTS): DebeziumColumn | null {
  const isArray = facts.array === true || (facts.type.startsWith('_') && facts.array !== false);
  const base = isArray && facts.type.startsWith('_') ? facts.type.slice(1) : facts.type;
  const scalar = scalarMapping(facts, base, options, isArray);
  if (!scalar) return null;
  const optional = !(facts.notNull || facts.key === true);
  let mapping: Mapping = scalar;
  if (isArray) {
    const element = scalar;
    const delimiter = facts.delimiter ?? arrayDelimiter(base);
    mapping = {
      // Debezium declares enum array elements required, every other element type optional.
      schema: { type: 'array', items: { ...element.schema, optional: element.schema.name !== 'io.debezium.data.Enum' } },
      convert: (t) => {
        const parsed = parseArrayText(t, delimiter);
        const walk = (values: unknown[]): ConnectValue[] =>
          values.map((v) => (v === null ? null : Array.isArray(v) ? walk(v) : element.convert(v as string)));
        return walk(parsed);
      },
    };
  }
  const schema: ConnectSchema = { ...mapping.schema, optional };
  const literal = defaultLiteral(facts.defaultExpr);
  if (literal !== null) {
    try {
      const value = mapping.convert(literal);
      if (value !== null) schema.default = value;
    } catch {
      // A default whose text this type cannot read is left out, as Debezium does for expressions.
    }
  }
  // Field order in the object must follow Connect's rendering: keep `default` after the rest.
  const ordered: ConnectSchema = { type: schema.type, optional: schema.optional };
  for (const k of ['fields', 'items', 'keys', 'values', 'name', 'version', 'doc', 'parameters', 'default'] as const) {
    if (schema[k] !== undefined) (ordered as unknown as Record<string, unknown>)[k] = schema[k];
  }
  return { name: facts.name, schema: ordered, fromText: mapping.convert };
}
