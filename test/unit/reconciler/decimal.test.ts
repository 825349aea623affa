import { describe, expect, it } from 'vitest';
import { canonicalDecimal, numericText, parseDecimal, roundSignificant } from '../../../services/reconciler/decimal.js';

describe('canonicalDecimal (trim_scale(x)::text)', () => {
  it.each([
    ['10.50', '10.5'],
    ['10.00', '10'],
    ['-0.000', '0'],
    ['-0', '0'],
    ['007', '7'],
    ['0.0001200', '0.00012'],
    ['1e3', '1000'],
    ['1.5E-3', '0.0015'],
    ['-12345678901234567890.123400', '-12345678901234567890.1234'],
    ['NaN', 'NaN'],
    ['Infinity', 'Infinity'],
    ['-Infinity', '-Infinity'],
  ])('%s -> %s', (input, out) => {
    expect(canonicalDecimal(input)).toBe(out);
  });

  it('rejects text that is not a decimal', () => {
    expect(canonicalDecimal('12abc')).toBeNull();
    expect(canonicalDecimal('.')).toBeNull();
    expect(parseDecimal('')).toBeNull();
  });
});

describe('numericText (numeric_in then numeric_out, as jsonb prints numbers)', () => {
  it.each([
    ['1.0', '1.0'],
    ['1e2', '100'],
    ['1.50E+1', '15.0'],
    ['-0.0', '0.0'],
    ['0.00012', '0.00012'],
    ['12e-3', '0.012'],
  ])('%s -> %s', (input, out) => {
    expect(numericText(input)).toBe(out);
  });
});

describe('roundSignificant (to_char(x, 9.99EEEE) rounding: half away from zero)', () => {
  it.each([
    ['0.12345', 4, '0.1235'],
    ['-0.12345', 4, '-0.1235'],
    ['0.12344999', 4, '0.1234'],
    ['9.9996', 4, '10'],
    ['123456789', 3, '123000000'],
    ['0.30000000000000004', 15, '0.3'],
    ['1.2345678901234568', 15, '1.23456789012346'],
    ['0', 6, '0'],
    ['-0', 6, '0'],
    ['1e-300', 2, `0.${'0'.repeat(299)}1`],
    ['NaN', 6, 'NaN'],
  ])('%s at %d digits -> %s', (input, digits, out) => {
    expect(roundSignificant(input, digits)).toBe(out);
  });
});
