/**
 * Exact decimal divisibility for `multipleOf`: binary floating point cannot answer "is 0.3 a multiple
 * of 0.1" (0.3 % 0.1 is 0.09999999999999998), and the answer decides a compatibility verdict.
 */

interface Decimal {
  /** value = mantissa * 10^-scale */
  mantissa: bigint;
  scale: number;
}

/** Parses a JSON number's text (including exponent forms such as `1e-7`). */
export function parseDecimal(text: string): Decimal {
  const m = /^(-?)(\d*)(?:\.(\d*))?(?:[eE]([+-]?\d+))?$/.exec(text.trim());
  if (!m) throw new Error(`not a decimal number: ${text}`);
  const [, sign = '', int = '', frac = '', exp = '0'] = m;
  const digits = `${int}${frac}`.replace(/^0+(?=\d)/, '') || '0';
  let scale = frac.length - Number(exp);
  let mantissa = BigInt(`${sign}${digits}`);
  if (scale < 0) {
    mantissa *= 10n ** BigInt(-scale);
    scale = 0;
  }
  return { mantissa, scale };
}

function align(a: Decimal, b: Decimal): [bigint, bigint] {
  const scale = Math.max(a.scale, b.scale);
  return [a.mantissa * 10n ** BigInt(scale - a.scale), b.mantissa * 10n ** BigInt(scale - b.scale)];
}

/** a == b numerically (0.5 equals 0.50). */
export function decimalEquals(a: string, b: string): boolean {
  const [x, y] = align(parseDecimal(a), parseDecimal(b));
  return x === y;
}

/** Whether `a` is an integer multiple of `b` (false when b is zero). */
export function isMultipleOf(a: string, b: string): boolean {
  const [x, y] = align(parseDecimal(a), parseDecimal(b));
  if (y === 0n) return false;
  return x % y === 0n;
}
