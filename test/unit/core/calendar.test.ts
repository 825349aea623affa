/**
 * The kernel's calendar arithmetic (services/core/calendar.ts), which both the source connector
 * (date text -> day number) and the sink (day number -> date text) use. Expected day numbers are
 * PostgreSQL 15's own answers (`select d - '1970-01-01'::date`), recorded.
 */
import { describe, expect, it } from 'vitest';
import { type CivilDate, civilFromDays, daysFromCivil, floorDiv, MICROS_PER_DAY } from '../../../services/core/calendar.js';

/** Astronomical year (0 = 1 BC), month, day and PostgreSQL's day number since 1970-01-01. */
const PG_DAYS: [number, number, number, number][] = [
  [1970, 1, 1, 0],
  [1969, 12, 31, -1],
  [1, 1, 1, -719_162],
  [0, 12, 31, -719_163],
  [-4713, 11, 24, -2_440_588],
  [-4, 2, 29, -720_930],
  [1582, 10, 4, -141_438],
  [1582, 10, 15, -141_427],
  [1900, 3, 1, -25_508],
  [2000, 2, 29, 11_016],
  [9999, 12, 31, 2_932_896],
  [275_760, 9, 13, 100_000_000],
  [5_874_897, 12, 31, 2_145_042_905],
];

describe('calendar', () => {
  it("daysFromCivil and civilFromDays agree with PostgreSQL's day numbers", () => {
    for (const [year, month, day, days] of PG_DAYS) {
      expect(daysFromCivil(year, month, day), `${year}-${month}-${day}`).toBe(days);
      expect(civilFromDays(days), String(days)).toEqual({ year, month, day });
    }
  });

  it('is proleptic Gregorian: no Julian gap in 1582, 1900 is not a leap year, 2000 and 1 BC are', () => {
    expect(daysFromCivil(1582, 10, 15) - daysFromCivil(1582, 10, 4)).toBe(11);
    expect(daysFromCivil(1900, 3, 1) - daysFromCivil(1900, 2, 28)).toBe(1);
    expect(daysFromCivil(2000, 3, 1) - daysFromCivil(2000, 2, 28)).toBe(2);
    expect(daysFromCivil(0, 3, 1) - daysFromCivil(0, 2, 28)).toBe(2);
  });

  it('civilFromDays inverts daysFromCivil over whole 400-year cycles on both sides of the epoch', () => {
    for (let days = -2_440_588; days < 2_145_042_906; days += 99_991) {
      const { year, month, day } = civilFromDays(days);
      expect(daysFromCivil(year, month, day)).toBe(days);
    }
    for (let days = -760_000; days < -680_000; days++) {
      const { year, month, day } = civilFromDays(days);
      if (daysFromCivil(year, month, day) !== days) throw new Error(`day ${days}: ${year}-${month}-${day}`);
    }
  });

  it('civilFromDays writes into the object it is given and returns that same object', () => {
    const into: CivilDate = { year: 0, month: 0, day: 0 };
    expect(civilFromDays(11_016, into)).toBe(into);
    expect(into).toEqual({ year: 2000, month: 2, day: 29 });
    civilFromDays(-1, into);
    expect(into).toEqual({ year: 1969, month: 12, day: 31 });
  });

  it('floorDiv rounds toward negative infinity: the microsecond before the epoch is on day -1', () => {
    expect(floorDiv(0n, MICROS_PER_DAY)).toBe(0n);
    expect(floorDiv(MICROS_PER_DAY - 1n, MICROS_PER_DAY)).toBe(0n);
    expect(floorDiv(-1n, MICROS_PER_DAY)).toBe(-1n);
    expect(floorDiv(-MICROS_PER_DAY, MICROS_PER_DAY)).toBe(-1n);
    expect(floorDiv(-MICROS_PER_DAY - 1n, MICROS_PER_DAY)).toBe(-2n);
  });
});
