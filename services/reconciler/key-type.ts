/**
 * The common type a key column is compared in when its two sides are declared differently (the
 * usual key migrations: `int` -> `bigint`, `int` -> `numeric`, `varchar` -> `text`, `uuid` ->
 * `text`). Segment bounds, bisection split points, exact diffs, rechecks and repairs all compare
 * and order keys in this type, so a bound read from either side (the one with more rows, or wider
 * values such as bigint keys above 2^31) is valid on the other. Whenever a side's column compares
 * with a value of the common type without a cast (same type, integer widths through PostgreSQL's
 * cross-type btree operators, varchar against text), the column is used as it is and its index
 * stays usable; otherwise the side compares a cast of its column.
 */
import { ParityError } from '../core/errors.js';
import type { ColumnType } from './normalize.js';

/** How one side presents its key column in the common type. */
/** How one key column's text compares in the database's own order, when JS can reproduce it. */
export type KeyComparison = 'integer' | 'decimal' | 'bytes';

export type KeySideForm =
  /** The column itself: it compares with values of the common type as it is (index usable). */
  | 'column'
  /** `column::common`. */
  | 'cast'
  /** `lower(column::text)`: a text key paired with a uuid key (the uuid's canonical text is lower case). */
  | 'lower';

export interface KeyTypePlan {
  /** The type both sides compare in; its `castName` is what key texts are cast to. */
  common: ColumnType;
  source: KeySideForm;
  target: KeySideForm;
  /** Compare texts by bytes (COLLATE "C") whatever the columns' collations: a side is not its own text column. */
  forceByteOrder: boolean;
}

/** Types a spec may name in `reconcile.keyCasts`. */
export const KEY_CAST_TYPES = ['smallint', 'integer', 'bigint', 'numeric', 'text', 'uuid', 'date', 'timestamp', 'timestamptz'] as const;
export type KeyCastType = (typeof KEY_CAST_TYPES)[number];

const INTEGER_WIDTH: Record<string, number> = { smallint: 2, integer: 4, bigint: 8 };

/** Text types that compare with a text value without a cast (varchar's operators are text's). */
const NATIVE_TEXT = new Set(['text', 'character varying']);

function typeOf(castName: string): ColumnType {
  const family: ColumnType['family'] =
    castName in INTEGER_WIDTH
      ? 'integer'
      : castName === 'numeric'
        ? 'numeric'
        : castName === 'text'
          ? 'text'
          : castName === 'uuid'
            ? 'uuid'
            : castName === 'date'
              ? 'date'
              : castName === 'timestamp'
                ? 'timestamp'
                : castName === 'timestamptz'
                  ? 'timestamptz'
                  : 'other';
  const name =
    castName === 'timestamp' ? 'timestamp without time zone' : castName === 'timestamptz' ? 'timestamp with time zone' : castName;
  return {
    name,
    castName: castName === 'timestamp' ? 'timestamp' : castName,
    family,
    precision: family === 'timestamp' || family === 'timestamptz' ? 6 : null,
  };
}

/** The error for key types that have no common type: names both types, the column and the spec field. */
export function incomparableKeys(column: string, a: ColumnType, b: ColumnType): ParityError {
  return new ParityError(
    'PARITY_BAD_INPUT',
    `key column "${column}" is ${a.name} on the source and ${b.name} on the target, and parity knows no common type to compare them in`,
    {
      hint: `set reconcile.keyCasts.${column} in the spec to a type both sides can be cast to (one of ${KEY_CAST_TYPES.join(', ')}), e.g. keyCasts: { ${column}: text }`,
    },
  );
}

/**
 * Chooses the common type of a key column from the two sides' types (`cast`: the spec's
 * `reconcile.keyCasts` entry, which wins). Throws PARITY_BAD_INPUT when there is none.
 */
export function chooseKeyType(column: string, source: ColumnType, target: ColumnType, cast?: KeyCastType): KeyTypePlan {
  if (cast !== undefined) {
    const common = typeOf(cast);
    const form = (t: ColumnType): KeySideForm => (t.castName === common.castName ? 'column' : 'cast');
    const plan = { common, source: form(source), target: form(target) };
    return { ...plan, forceByteOrder: common.family === 'text' && (plan.source !== 'column' || plan.target !== 'column') };
  }
  if (source.castName === target.castName) return { common: source, source: 'column', target: 'column', forceByteOrder: false };
  const fa = source.family;
  const fb = target.family;
  if (fa === 'integer' && fb === 'integer') {
    const wa = INTEGER_WIDTH[source.castName];
    const wb = INTEGER_WIDTH[target.castName];
    // Integer widths compare across types in one btree operator family: no cast, indexes usable.
    if (wa !== undefined && wb !== undefined)
      return { common: wa >= wb ? source : target, source: 'column', target: 'column', forceByteOrder: false };
    // oid (unsigned 32-bit) fits in bigint.
    const common = typeOf('bigint');
    return { common, source: wa !== undefined ? 'column' : 'cast', target: wb !== undefined ? 'column' : 'cast', forceByteOrder: false };
  }
  if ((fa === 'integer' || fa === 'numeric') && (fb === 'integer' || fb === 'numeric')) {
    return {
      common: typeOf('numeric'),
      source: fa === 'numeric' ? 'column' : 'cast',
      target: fb === 'numeric' ? 'column' : 'cast',
      forceByteOrder: false,
    };
  }
  const texty = (f: ColumnType['family']): boolean => f === 'text' || f === 'char';
  if (texty(fa) && texty(fb)) {
    const form = (t: ColumnType): KeySideForm => (NATIVE_TEXT.has(t.castName) ? 'column' : 'cast');
    const plan = { common: typeOf('text'), source: form(source), target: form(target) };
    return { ...plan, forceByteOrder: plan.source !== 'column' || plan.target !== 'column' };
  }
  if ((fa === 'uuid' && texty(fb)) || (fb === 'uuid' && texty(fa))) {
    // The uuid's text is lower case; the text side is compared lower-cased, as values are (normalize.ts).
    return {
      common: typeOf('text'),
      source: fa === 'uuid' ? 'cast' : 'lower',
      target: fb === 'uuid' ? 'cast' : 'lower',
      forceByteOrder: true,
    };
  }
  throw incomparableKeys(column, source, target);
}

/** SQL of a side's key column in the common type (`column` is already quoted). */
export function keySideSql(column: string, form: KeySideForm, common: ColumnType): string {
  switch (form) {
    case 'column':
      return column;
    case 'cast':
      return `(${column})::${common.castName}`;
    case 'lower':
      return `lower((${column})::text)`;
  }
}
