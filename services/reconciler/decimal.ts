/**
 * Exact decimal text arithmetic for the JS side of normalization. JavaScript numbers cannot hold a
 * PostgreSQL numeric, so values stay strings: parsed into (sign, digits, exponent) and printed the
 * way PostgreSQL prints `trim_scale(numeric)` or a numeric read by `numeric_in`.
 */

/** value = (negative ? -1 : 1) * BigInt(digits) * 10^exponent; `digits` has no leading zeros ("" is zero). */
export interface Decimal {
  negative: boolean;
  digits: string;
  exponent: number;
  /** Digits after the decimal point as written (numeric_in's display scale, for jsonb). */
  scale: number;
}

export type SpecialNumber = 'NaN' | 'Infinity' | '-Infinity';

const DECIMAL_RE = /^([+-]?)(\d*)(?:\.(\d*))?(?:[eE]([+-]?\d+))?$/;

/** Recognises PostgreSQL's special float/numeric spellings, case-insensitively. */
export function specialNumber(text: string): SpecialNumber | null {
  const t = text.trim().toLowerCase();
  if (t === 'nan' || t === '+nan' || t === '-nan') return 'NaN';
  if (t === 'infinity' || t === '+infinity' || t === 'inf' || t === '+inf') return 'Infinity';
  if (t === '-infinity' || t === '-inf') return '-Infinity';
  return null;
}

/** Parses decimal text (plain or scientific). Returns null when the text is not a finite decimal. */
export function parseDecimal(text: string): Decimal | null {
  const m = DECIMAL_RE.exec(text.trim());
  if (!m) return null;
  const intPart = m[2] ?? '';
  const fracPart = m[3] ?? '';
  if (intPart === '' && fracPart === '') return null;
  const exp = m[4] === undefined ? 0 : Number.parseInt(m[4], 10);
  const all = (intPart + fracPart).replace(/^0+/, '');
  const scale = Math.max(0, fracPart.length - exp);
  return { negative: m[1] === '-' && all !== '', digits: all, exponent: exp - fracPart.length, scale };
}

function stripTrailingZeros(d: Decimal): Decimal {
  if (d.digits === '') return { ...d, negative: false, exponent: 0 };
  let digits = d.digits;
  let exponent = d.exponent;
  while (digits.length > 1 && digits.endsWith('0')) {
    digits = digits.slice(0, -1);
    exponent++;
  }
  return { ...d, digits, exponent };
}

/** Plain notation with exactly `scale` fraction digits (scale >= -exponent is padded with zeros). */
function toPlain(d: Decimal, scale: number): string {
  let digits = d.digits === '' ? '0' : d.digits;
  let exponent = d.digits === '' ? 0 : d.exponent;
  // Bring the exponent to -scale by appending zeros (never drops digits: callers pass scale >= -exponent).
  if (exponent > -scale) {
    digits += '0'.repeat(exponent + scale);
    exponent = -scale;
  }
  const frac = -exponent;
  let intPart: string;
  let fracPart: string;
  if (frac <= 0) {
    intPart = digits;
    fracPart = '';
  } else if (digits.length > frac) {
    intPart = digits.slice(0, digits.length - frac);
    fracPart = digits.slice(digits.length - frac);
  } else {
    intPart = '0';
    fracPart = '0'.repeat(frac - digits.length) + digits;
  }
  intPart = intPart.replace(/^0+(?=\d)/, '');
  const isZero = /^0*$/.test(intPart + fracPart);
  const sign = d.negative && !isZero ? '-' : '';
  return fracPart ? `${sign}${intPart}.${fracPart}` : `${sign}${intPart}`;
}

/**
 * PostgreSQL's `trim_scale(x)::text`: plain notation, no trailing fraction zeros, "-0" is "0".
 * Special values (NaN, Infinity) are returned in PostgreSQL's spelling.
 */
export function canonicalDecimal(text: string): string | null {
  const special = specialNumber(text);
  if (special) return special;
  const d = parseDecimal(text);
  if (!d) return null;
  const s = stripTrailingZeros(d);
  return toPlain(s, Math.max(0, -s.exponent));
}

/** PostgreSQL's `numeric_in` then `numeric_out`: keeps the written display scale (1.50E+1 -> 15.0). */
export function numericText(text: string): string | null {
  const special = specialNumber(text);
  if (special) return special;
  const d = parseDecimal(text);
  if (!d) return null;
  return toPlain(d, d.scale);
}

/**
 * Rounds to `significant` digits, half away from zero (PostgreSQL's numeric rounding, as in
 * `to_char(x, '9.99EEEE')`), then prints like `canonicalDecimal`.
 */
export function roundSignificant(text: string, significant: number): string | null {
  const special = specialNumber(text);
  if (special) return special;
  const d = parseDecimal(text);
  if (!d) return null;
  if (d.digits === '') return '0';
  if (d.digits.length <= significant) return canonicalDecimal(text);
  const drop = d.digits.length - significant;
  let kept = BigInt(d.digits.slice(0, significant));
  const next = d.digits.charCodeAt(significant) - 48;
  if (next >= 5) kept += 1n;
  const rounded: Decimal = { negative: d.negative, digits: kept.toString(), exponent: d.exponent + drop, scale: 0 };
  const s = stripTrailingZeros(rounded);
  return toPlain(s, Math.max(0, -s.exponent));
}
