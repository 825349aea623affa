/**
 * Normalization: equal data must compare equal across representations. For every compared column
 * the pair of types (old side, new side) picks one rule; each side then renders its value as the
 * same canonical text, either inside the database (`sqlNormalize`, used by batch verification so
 * checksums run where the data is) or in this process (`jsNormalize`, used by stream verification
 * on decoded change events). The two must agree byte for byte; test/unit/reconciler and the
 * integration suite check them against each other on a real PostgreSQL.
 *
 * Rules (the spec's `normalize` block sets the knobs):
 * - integers and numerics: exact decimal, trailing fraction zeros dropped (numeric scale);
 * - a float on either side: both rounded to `floatDigits` significant digits (6 with float4),
 *   half away from zero; -0 is 0; NaN and +-Infinity compare as themselves;
 * - timestamps: timestamptz seen in `timeZone`, cut to the lower precision of the two sides and
 *   `timestampPrecision`, by `timestampRounding` (round = what storing into timestamp(p) does);
 * - text: char(n) padding stripped (`trimChar`), NULL equals '' when `nullEqualsEmpty`;
 * - uuid: lower case, also against text; json/jsonb: the jsonb canonical text; bytea: hex.
 */
import { ParityError } from '../core/errors.js';
import { literal } from '../core/sql.js';
import type { Spec } from '../core/spec.js';
import { canonicalDecimal, roundSignificant, specialNumber } from './decimal.js';
import { jsonbText } from './jsonb-text.js';
import { formatDate, formatTimestamp, parseTimestamp, roundMicros, toZoneWall, truncateMicros, type Micros } from './timestamp-text.js';

export type NormalizeOptions = Spec['normalize'];

export type TypeFamily =
  | 'integer'
  | 'numeric'
  | 'float4'
  | 'float8'
  | 'timestamp'
  | 'timestamptz'
  | 'date'
  | 'text'
  | 'char'
  | 'uuid'
  | 'json'
  | 'bool'
  | 'bytea'
  | 'other';

/** A column's type as the database reports it, resolved to a family. */
export interface ColumnType {
  /** Type name as declared, e.g. "timestamp(3) without time zone" or "integer". */
  name: string;
  /** Name to cast text to without a typmod (so nothing is truncated), e.g. "character varying", "bpchar". */
  castName: string;
  family: TypeFamily;
  /** Fraction digits of timestamps (typmod), 6 when undeclared; null for other types. */
  precision: number | null;
}

/** Built-in type OIDs and their families (domains are resolved to their base type first). */
const FAMILY_BY_OID: Record<number, TypeFamily> = {
  20: 'integer',
  21: 'integer',
  23: 'integer',
  26: 'integer',
  1700: 'numeric',
  700: 'float4',
  701: 'float8',
  1114: 'timestamp',
  1184: 'timestamptz',
  1082: 'date',
  25: 'text',
  1043: 'text',
  19: 'text',
  1042: 'char',
  2950: 'uuid',
  114: 'json',
  3802: 'json',
  16: 'bool',
  17: 'bytea',
};

/** Family of a (base) type OID; `category` is pg_type.typcategory, `isEnum` for enum types. */
export function familyOf(oid: number, category: string, isEnum: boolean): TypeFamily {
  const known = FAMILY_BY_OID[oid];
  if (known) return known;
  if (isEnum || category === 'S') return 'text';
  return 'other';
}

export type Rule =
  | { kind: 'integer' }
  | { kind: 'decimal' }
  | { kind: 'float'; digits: number }
  | { kind: 'timestamp'; precision: number; rounding: 'truncate' | 'round'; timeZone: string }
  | { kind: 'date' }
  | { kind: 'text'; trim: boolean; nullEqualsEmpty: boolean }
  | { kind: 'uuid' }
  | { kind: 'json' }
  | { kind: 'bool' }
  | { kind: 'bytea' }
  | { kind: 'plain' };

const NUMBERS = new Set<TypeFamily>(['integer', 'numeric', 'float4', 'float8']);
const TIMES = new Set<TypeFamily>(['timestamp', 'timestamptz', 'date']);
const TEXTS = new Set<TypeFamily>(['text', 'char']);

/** Picks the comparison rule for a column from the types of its two sides. */
export function comparisonRule(a: ColumnType, b: ColumnType, options: NormalizeOptions): Rule {
  const fa = a.family;
  const fb = b.family;
  if (NUMBERS.has(fa) && NUMBERS.has(fb)) {
    if (fa === 'float4' || fb === 'float4') return { kind: 'float', digits: Math.min(options.floatDigits, 6) };
    if (fa === 'float8' || fb === 'float8') return { kind: 'float', digits: options.floatDigits };
    if (fa === 'integer' && fb === 'integer') return { kind: 'integer' };
    return { kind: 'decimal' };
  }
  if (TIMES.has(fa) && TIMES.has(fb)) {
    if (fa === 'date' && fb === 'date') return { kind: 'date' };
    const precision = Math.min(options.timestampPrecision, a.precision ?? 6, b.precision ?? 6);
    return { kind: 'timestamp', precision, rounding: options.timestampRounding, timeZone: options.timeZone };
  }
  if ((fa === 'uuid' && (fb === 'uuid' || TEXTS.has(fb))) || (fb === 'uuid' && TEXTS.has(fa))) return { kind: 'uuid' };
  if (fa === 'json' && (fb === 'json' || TEXTS.has(fb))) return { kind: 'json' };
  if (fb === 'json' && TEXTS.has(fa)) return { kind: 'json' };
  if (TEXTS.has(fa) && TEXTS.has(fb)) {
    return { kind: 'text', trim: options.trimChar && (fa === 'char' || fb === 'char'), nullEqualsEmpty: options.nullEqualsEmpty };
  }
  if (fa === 'bool' && fb === 'bool') return { kind: 'bool' };
  if (fa === 'bytea' && fb === 'bytea') return { kind: 'bytea' };
  // Mixed families (e.g. integer vs text) compare as PostgreSQL's text output of each side.
  return TEXTS.has(fa) || TEXTS.has(fb)
    ? { kind: 'text', trim: options.trimChar && (fa === 'char' || fb === 'char'), nullEqualsEmpty: options.nullEqualsEmpty }
    : { kind: 'plain' };
}

/** `to_char` picture that rounds to `digits` significant digits in scientific notation. */
function sciPicture(digits: number): string {
  return digits <= 1 ? '9EEEE' : `9.${'9'.repeat(digits - 1)}EEEE`;
}

/**
 * Canonical texts of these rules never contain ",", "'" or "~" (digits, signs, ".", ":", spaces,
 * hex, NaN/Infinity, BC, true/false), so tuples of them need no quoting.
 */
export function isPlainRule(rule: Rule): boolean {
  return ['integer', 'decimal', 'float', 'timestamp', 'date', 'uuid', 'bool', 'bytea'].includes(rule.kind);
}

/**
 * SQL text of the canonical form of `expr` (a column or mapping expression of type `type`) under
 * `rule`; NULL stays NULL. Sessions running it must use DateStyle ISO and
 * TimeZone UTC (see dialect.ts).
 */
export function sqlNormalize(expr: string, type: ColumnType, rule: Rule): string {
  const e = `(${expr})`;
  switch (rule.kind) {
    case 'integer':
      return `${e}::text`;
    case 'decimal':
      return type.family === 'integer' ? `${e}::text` : `trim_scale(${e}::numeric)::text`;
    case 'float':
      // Through text, floats keep their shortest exact digits (the same digits JS prints), so both
      // sides round the same decimal; the CASE keeps NaN/Infinity away from to_char.
      return `CASE WHEN ${e}::text IN ('NaN', 'Infinity', '-Infinity') THEN ${e}::text ELSE trim_scale(to_char(${e}::text::numeric, '${sciPicture(rule.digits)}')::numeric)::text END`;
    case 'timestamp': {
      // The canonical form is PostgreSQL's own text output of the wall-clock timestamp (ISO DateStyle:
      // fraction without trailing zeros, " BC" suffix, "infinity"), the cheapest form to produce.
      const wall =
        type.family === 'timestamptz' ? `(${e} AT TIME ZONE ${literal(rule.timeZone)})` : type.family === 'date' ? `${e}::timestamp` : e;
      const p = rule.precision;
      if (p >= 6) return `${wall}::text`;
      if (rule.rounding === 'round') return `${wall}::timestamp(${p})::text`;
      return `CASE WHEN isfinite(${wall}) THEN (${wall} - (extract(microseconds FROM ${wall})::bigint % ${10 ** (6 - p)}) * interval '1 microsecond')::text ELSE ${wall}::text END`;
    }
    case 'date':
      return `${e}::text`;
    case 'text': {
      // bpchar -> text already drops the padding; concat() keeps it, for trimChar: false.
      let t = type.family === 'char' && !rule.trim ? `CASE WHEN ${e} IS NULL THEN NULL ELSE concat(${e}) END` : `${e}::text`;
      if (rule.trim) t = `rtrim(${t}, ' ')`;
      if (rule.nullEqualsEmpty) t = `NULLIF(${t}, '')`;
      return t;
    }
    case 'uuid':
      return `lower(${e}::text)`;
    case 'json':
      return `${e}::jsonb::text`;
    case 'bool':
      return `${e}::text`;
    case 'bytea':
      return `encode(${e}, 'hex')`;
    case 'plain':
      return `${e}::text`;
  }
}

function asText(value: unknown): string {
  if (typeof value === 'string') return value;
  if (typeof value === 'number' || typeof value === 'bigint' || typeof value === 'boolean') return String(value);
  if (value instanceof Date) return value.toISOString();
  if (Buffer.isBuffer(value)) return `\\x${value.toString('hex')}`;
  return JSON.stringify(value);
}

function badValue(value: unknown, rule: Rule, type: ColumnType): ParityError {
  return new ParityError(
    'PARITY_DECODE',
    `cannot normalize ${JSON.stringify(asText(value)).slice(0, 80)} as ${type.name} (${rule.kind} comparison)`,
    {
      hint: 'the value does not look like PostgreSQL text output of that type; check the change event serde',
    },
  );
}

function timestampWall(value: unknown, type: ColumnType, rule: Extract<Rule, { kind: 'timestamp' }>): Micros | string {
  const parsed = parseTimestamp(asText(value));
  if (parsed === null) throw badValue(value, rule, type);
  if (parsed === 'infinity' || parsed === '-infinity') return parsed;
  if (parsed.offsetSeconds !== null) {
    // Text with an offset is an instant (timestamptz output): see it on the rule's wall clock.
    return toZoneWall(parsed.wall - BigInt(parsed.offsetSeconds) * 1_000_000n, rule.timeZone);
  }
  return parsed.wall;
}

/**
 * The JS twin of `sqlNormalize` for a value as PostgreSQL prints it (strings) or as a decoder
 * hands it over (numbers, booleans, Buffers, parsed JSON). Returns null for NULL.
 */
export function jsNormalize(value: unknown, type: ColumnType, rule: Rule): string | null {
  if (value === null || value === undefined) {
    return null;
  }
  switch (rule.kind) {
    case 'integer':
    case 'decimal': {
      const out = canonicalDecimal(asText(value));
      if (out === null) throw badValue(value, rule, type);
      return out;
    }
    case 'float': {
      if (typeof value === 'number' && Number.isNaN(value)) return 'NaN';
      if (typeof value === 'number' && !Number.isFinite(value)) return value > 0 ? 'Infinity' : '-Infinity';
      const text = asText(value);
      const special = specialNumber(text);
      if (special) return special;
      const out = roundSignificant(text, rule.digits);
      if (out === null) throw badValue(value, rule, type);
      return out;
    }
    case 'timestamp': {
      let wall = timestampWall(value, type, rule);
      if (typeof wall === 'string') return wall;
      if (rule.precision < 6) wall = rule.rounding === 'round' ? roundMicros(wall, rule.precision) : truncateMicros(wall, rule.precision);
      return formatTimestamp(wall);
    }
    case 'date': {
      const parsed = parseTimestamp(asText(value));
      if (parsed === null) throw badValue(value, rule, type);
      if (parsed === 'infinity' || parsed === '-infinity') return parsed;
      return formatDate(parsed.wall);
    }
    case 'text': {
      let t: string | null = asText(value);
      if (rule.trim || type.family === 'char') {
        // PostgreSQL's bpchar -> text drops trailing blanks even without trimChar; keep the padding only
        // for char columns when trimChar is off (sqlNormalize uses concat() there).
        if (rule.trim) t = t.replace(/ +$/, '');
      }
      if (rule.nullEqualsEmpty && t === '') t = null;
      return t;
    }
    case 'uuid':
      return asText(value).toLowerCase();
    case 'json':
      try {
        return jsonbText(value);
      } catch {
        throw badValue(value, rule, type);
      }
    case 'bool': {
      const t = asText(value).toLowerCase();
      if (t === 'true' || t === 't') return 'true';
      if (t === 'false' || t === 'f') return 'false';
      throw badValue(value, rule, type);
    }
    case 'bytea': {
      if (Buffer.isBuffer(value)) return value.toString('hex');
      const t = asText(value);
      if (t.startsWith('\\x')) return t.slice(2).toLowerCase();
      // Change events carry bytea as base64 (see DESIGN.md, "Change events").
      return Buffer.from(t, 'base64').toString('hex');
    }
    case 'plain':
      return asText(value);
  }
}
