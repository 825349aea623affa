/**
 * PostgreSQL text output -> exact JS values (the table in connectors/kafka-sink/serde.ts). The stream
 * and the snapshots both read every column as text and convert it here, so a row decodes identically
 * whichever path delivered it. `pg`'s process-global type parsers are never consulted: they turn
 * timestamps into Dates (losing microseconds) and would make CDC output depend on whatever else in the
 * process called `setTypeParser`.
 */
import { ParityError } from '../../services/core/errors.js';
import type { ColumnShape, ValueKind } from '../../services/core/table-shape.js';

/** Built-in scalar type OIDs whose JS value is not a plain string. */
const SCALAR_KINDS: ReadonlyMap<number, ValueKind> = new Map<number, ValueKind>([
  [16, 'boolean'], // bool
  [17, 'bytea'],
  [20, 'int8'],
  [21, 'int'], // int2
  [23, 'int'], // int4
  [26, 'int8'], // oid: unsigned 32-bit, kept exact as text
  [28, 'int8'], // xid
  [5069, 'int8'], // xid8
  [700, 'float'], // float4
  [701, 'float'], // float8
]);

/** What a column's type resolves to after following domains and arrays. */
export interface ResolvedType {
  kind: ValueKind;
  array: boolean;
  /** The type's name, for schema docs. */
  name: string;
  /**
   * pg_type.typname after following domains (the element's for an array): what Debezium maps
   * (debezium-types.ts). Absent for the built-in OIDs, whose `name` is already that.
   */
  baseName?: string;
  /** A domain's own typmod (pg_type.typtypmod), used when the column has none. */
  domainTypmod?: number;
  /** An enum's labels in sort order (the element's for an array of enums). */
  enumLabels?: readonly string[] | null;
  /**
   * An array's element separator in its text: the element type's pg_type.typdelim (`;` for `box`,
   * `,` for every other built-in type). Absent: arrayDelimiter's built-in knowledge.
   */
  delimiter?: string;
}

/** The kind of a built-in scalar OID, or 'string' for every type whose text is its value. */
export function scalarKind(oid: number): ValueKind {
  return SCALAR_KINDS.get(oid) ?? 'string';
}

export type TextConverter = (text: string) => unknown;

function scalarConverter(kind: ValueKind): TextConverter {
  switch (kind) {
    case 'boolean':
      return (t) => t === 't';
    case 'int':
      return (t) => Number(t);
    case 'float':
      // PostgreSQL prints the shortest exact text ("NaN", "Infinity", "-Infinity", "-0" included);
      // Number() reads each of those back to the same double.
      return (t) => Number(t);
    case 'bytea':
      return byteaToBase64;
    case 'int8':
    case 'string':
      return (t) => t;
  }
}

/** bytea text output (hex format, `\x0a0b`; or the legacy escape format: backslash-octal, doubled backslashes) -> bytes. */
export function byteaBytes(text: string): Buffer {
  if (text.startsWith('\\x')) return Buffer.from(text.slice(2), 'hex');
  const bytes: number[] = [];
  for (let i = 0; i < text.length; i++) {
    const ch = text[i]!;
    if (ch === '\\' && text[i + 1] === '\\') {
      bytes.push(0x5c);
      i++;
    } else if (ch === '\\') {
      bytes.push(Number.parseInt(text.slice(i + 1, i + 4), 8));
      i += 3;
    } else bytes.push(...Buffer.from(ch, 'utf8'));
  }
  return Buffer.from(bytes);
}

/** bytea text output -> base64 (parity's exact-text encoding). */
export function byteaToBase64(text: string): string {
  return byteaBytes(text).toString('base64');
}

/**
 * The element separator of an array of `elementType` (pg_type.typname) when pg_type's typdelim is not
 * at hand: `box` is the only built-in type whose elements are separated by `;` (its own text holds
 * commas: `(1,1),(0,0)`), every other built-in type uses `,`.
 */
export function arrayDelimiter(elementType: string): string {
  return elementType === 'box' ? ';' : ',';
}

/**
 * Parses PostgreSQL array text (`{1,2,NULL}`, `{"a b","c\"d"}`, `{{1,2},{3,4}}`, `[0:1]={7,8}`) into
 * nested arrays of element texts, null for NULL elements. `delimiter` is the element type's typdelim
 * (`{(1,1),(0,0);(3,3),(2,2)}` for `box[]`); a delimiter that is not the element type's splits inside
 * elements or refuses nested arrays.
 */
export function parseArrayText(text: string, delimiter = ','): unknown[] {
  let i = 0;
  if (text[0] === '[') {
    // Explicit bounds: `[lo:hi]={...}`; JS arrays start at 0 whatever the bounds.
    const eq = text.indexOf('=');
    if (eq < 0) throw new ParityError('PARITY_DECODE', `malformed array text ${JSON.stringify(text.slice(0, 40))}`);
    i = eq + 1;
  }
  function parse(): unknown[] {
    if (text[i] !== '{') throw new ParityError('PARITY_DECODE', `malformed array text at ${i}: ${JSON.stringify(text.slice(0, 40))}`);
    i++;
    const out: unknown[] = [];
    if (text[i] === '}') {
      i++;
      return out;
    }
    for (;;) {
      if (text[i] === '{') out.push(parse());
      else if (text[i] === '"') {
        i++;
        let value = '';
        while (text[i] !== '"') {
          if (text[i] === '\\') i++;
          if (i >= text.length) throw new ParityError('PARITY_DECODE', 'unterminated quoted array element');
          value += text[i];
          i++;
        }
        i++;
        out.push(value);
      } else {
        let end = i;
        while (end < text.length && text[end] !== delimiter && text[end] !== '}') end++;
        const raw = text.slice(i, end).trim();
        out.push(raw === 'NULL' ? null : raw);
        i = end;
      }
      if (text[i] === delimiter) {
        i++;
        continue;
      }
      if (text[i] === '}') {
        i++;
        return out;
      }
      throw new ParityError('PARITY_DECODE', `malformed array text at ${i}: ${JSON.stringify(text.slice(0, 40))}`);
    }
  }
  return parse();
}

function mapNested(values: unknown[], convert: TextConverter): unknown[] {
  return values.map((v) => (v === null ? null : Array.isArray(v) ? mapNested(v, convert) : convert(v as string)));
}

/** The converter for a resolved column type: text in, exact JS value out. */
export function converterFor(type: ResolvedType): TextConverter {
  const scalar = scalarConverter(type.kind);
  if (!type.array) return scalar;
  const delimiter = type.delimiter ?? arrayDelimiter(type.baseName ?? type.name.replace(/\[\]$/, ''));
  return (text) => mapNested(parseArrayText(text, delimiter), scalar);
}

/** A column the source reads: its shape for the registry and its text converter. */
export interface DecodedColumn extends ColumnShape {
  convert: TextConverter;
  /**
   * The value of an unchanged TOASTed column PostgreSQL did not send; default UNCHANGED_TOAST (the
   * Debezium encoding gives it in the column's own Connect type, as Debezium does).
   */
  unavailable?: unknown;
  /**
   * What a required (NOT NULL) column holds when PostgreSQL did not send it: a key-only old tuple
   * (REPLICA IDENTITY DEFAULT). Debezium writes the column default, else its type's zero; exact-text null.
   */
  fallback?: unknown;
}

export function decodedColumn(name: string, type: ResolvedType): DecodedColumn {
  return { name, kind: type.kind, array: type.array, pgType: type.name, convert: converterFor(type) };
}
