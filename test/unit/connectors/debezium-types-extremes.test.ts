/**
 * Dates and timestamps at PostgreSQL's extremes (issue 18): 4714 BC to 5874897 AD for dates, to 294276 AD
 * for timestamps, BC years, leap days, the 1582 Gregorian switch (PostgreSQL is proleptic Gregorian, no
 * Julian gap) and infinity, beyond a JavaScript Date's ±275760 years. Expected day numbers and texts are
 * PostgreSQL 15's own answers (`d - '1970-01-01'::date`, `AT TIME ZONE`), recorded; the Debezium texts
 * follow java.time's ISO format as Debezium's ZonedTimestamp writes it.
 */
import { describe, expect, it } from 'vitest';
import { dateText, exactValue, timestampText, zonedTimestampText } from '../../../connectors/kafka-sink/debezium-serde.js';
import { decodeTuple } from '../../../connectors/postgres-source/change-builder.js';
import {
  type PgColumnFacts,
  debeziumColumn,
  epochDay,
  epochMicros,
  zonedTimestamp,
  zonedTimestampOfText,
} from '../../../connectors/postgres-source/debezium-types.js';
import type { DecodedColumn } from '../../../connectors/postgres-source/value-decoder.js';
import { ParityError } from '../../../services/core/errors.js';
import { formatTimestamp, parseTimestamp, toZoneWall } from '../../../services/reconciler/timestamp-text.js';

/** PostgreSQL 15: `select d::text, d - '1970-01-01'::date`. */
const PG_DAYS: [string, number][] = [
  ['0001-01-01', -719_162],
  ['0001-12-31 BC', -719_163],
  ['4714-11-24 BC', -2_440_588],
  ['0005-02-29 BC', -720_930],
  ['1582-10-04', -141_438],
  ['1582-10-05', -141_437],
  ['1582-10-15', -141_427],
  ['1600-02-29', -135_081],
  ['1900-03-01', -25_508],
  ['2000-02-29', 11_016],
  ['9999-12-31', 2_932_896],
  ['10000-01-01', 2_932_897],
  ['275760-09-13', 100_000_000],
  ['5874897-12-31', 2_145_042_905],
];

function column(type: string, typmod = -1): ReturnType<typeof debeziumColumn> & object {
  const facts: PgColumnFacts = { name: 'v', type, typmod, notNull: false } as PgColumnFacts;
  const c = debeziumColumn(facts);
  if (!c) throw new Error(`no Debezium column for ${type}`);
  return c;
}

describe('dates beyond a JavaScript Date', () => {
  it("epochDay equals PostgreSQL's day number, and dateText gives PostgreSQL's text back", () => {
    for (const [text, days] of PG_DAYS) {
      expect(epochDay(text), text).toBe(days);
      expect(dateText(days), text).toBe(text);
      expect(column('date').fromText(text), text).toBe(days);
    }
  });

  it('the calendar is proleptic Gregorian: no Julian gap in 1582, 1900 not a leap year, 2000 and 5 BC are', () => {
    expect(epochDay('1582-10-15') - epochDay('1582-10-04')).toBe(11);
    expect(epochDay('1900-03-01') - epochDay('1900-02-28')).toBe(1);
    expect(epochDay('2000-03-01') - epochDay('2000-02-28')).toBe(2);
    expect(epochDay('0005-03-01 BC') - epochDay('0005-02-28 BC')).toBe(2);
  });

  it('infinity keeps the values Debezium writes, and reads back as infinity', () => {
    const c = column('date');
    expect(c.fromText('infinity')).toBe(-2_147_472_692);
    expect(c.fromText('-infinity')).toBe(-2_147_472_691);
    const type = { type: 'int32' as const, name: 'io.debezium.time.Date' };
    expect(exactValue(type, -2_147_472_692)).toBe('infinity');
    expect(exactValue(type, -2_147_472_691)).toBe('-infinity');
    expect(exactValue(type, 2_145_042_905)).toBe('5874897-12-31');
  });
});

describe('timestamps beyond a JavaScript Date', () => {
  const micro = column('timestamp', 6);
  const milli = column('timestamp', 3);

  it('MicroTimestamp up to the last microsecond a 64-bit integer holds, read back as PostgreSQL wrote it', () => {
    for (const text of [
      '294247-01-10 04:00:54.775807',
      '275760-09-13 00:00:00.000001',
      '4714-11-24 00:00:00 BC',
      '0001-01-01 00:00:00 BC',
      '1582-10-04 23:59:59.999999',
      '0005-02-29 12:00:00 BC',
    ]) {
      const value = micro.fromText(text) as bigint;
      expect(timestampText(value), text).toBe(text);
      expect(exactValue({ type: 'int64', name: 'io.debezium.time.MicroTimestamp' }, value), text).toBe(text);
    }
    expect(micro.fromText('294247-01-10 04:00:54.775807')).toBe(9_223_372_036_854_775_807n);
    expect(micro.fromText('4714-11-24 00:00:00 BC')).toBe(-210_866_803_200_000_000n);
  });

  it('a timestamp past 2^63 - 1 microseconds is refused (Debezium writes a wrong value there), naming table and column', () => {
    // Debezium's TimeUnit.SECONDS.toMicros saturates and the added micros wrap: silently wrong. Observed with
    // Debezium 3.6.0.Final (JsonConverter): 294247-01-10 04:00:54.775808 -> -9223372036854775808, 294276-12-31
    // 23:59:59.999999 -> -9223372036853775810, 294247-01-10 04:00:25.2 -> 9223372036825200000 (its 'infinity');
    // for every value parity does write (the ones above and below), Debezium wrote the same.
    expect(() => micro.fromText('294247-01-10 04:00:54.775808')).toThrow(/exceed a 64-bit integer/);
    const columns = [{ name: 'ts', convert: micro.fromText } as unknown as DecodedColumn];
    let caught: unknown;
    try {
      decodeTuple(columns, [0], ['294276-12-31 23:59:59.999999'], 'public.events');
    } catch (err) {
      caught = err;
    }
    expect(caught).toBeInstanceOf(ParityError);
    const e = caught as ParityError;
    expect(e.code).toBe('PARITY_DECODE');
    expect(e.message).toMatch(/^table public\.events, column ts: timestamp "294276-12-31 23:59:59\.999999" cannot be written/);
    expect(e.hint).toMatch(/exact-text encoding/);
    expect(e.details).toMatchObject({ table: 'public.events', column: 'ts' });
  });

  it("Timestamp (milliseconds) holds PostgreSQL's whole range, floors like java.time, and refuses only infinity's own value", () => {
    const last = milli.fromText('294276-12-31 23:59:59.999') as bigint;
    expect(last).toBe(9_224_318_015_999_999n);
    expect(exactValue({ type: 'int64', name: 'io.debezium.time.Timestamp' }, last)).toBe('294276-12-31 23:59:59.999');
    expect(milli.fromText('1969-12-31 23:59:59.999')).toBe(-1n);
    // 9223372036825200 ms after 1970 is what Debezium writes for 'infinity': that instant is refused.
    expect(() => milli.fromText('294247-01-10 04:00:25.2')).toThrow(/equals the value Debezium writes for 'infinity'/);
    expect(milli.fromText('infinity')).toBe(9_223_372_036_825_200n);
    expect(() => micro.fromText('294247-01-10 04:00:25.2')).toThrow(/equals the value Debezium writes for 'infinity'/);
    expect(micro.fromText('294247-01-10 04:00:25.200001')).toBe(9_223_372_036_825_200_001n);
    expect(micro.fromText('-infinity')).toBe(-9_223_372_036_832_400_000n);
  });

  it('ZonedTimestamp texts as java.time prints them, read back as PostgreSQL wrote them', () => {
    const tz = column('timestamptz', 6);
    const cases: [string, string][] = [
      ['294276-12-31 23:59:59.999999+00', '+294276-12-31T23:59:59.999999Z'],
      ['10000-01-01 00:00:00+00', '+10000-01-01T00:00:00.000000Z'],
      ['4714-11-24 00:00:00+00 BC', '-4713-11-24T00:00:00.000000Z'],
      ['0001-01-01 00:00:00+00 BC', '0000-01-01T00:00:00.000000Z'],
      ['0001-01-01 00:00:00+00', '0001-01-01T00:00:00.000000Z'],
      ['1582-10-15 00:00:00.5+00', '1582-10-15T00:00:00.500000Z'],
    ];
    for (const [pg, debezium] of cases) {
      expect(tz.fromText(pg), pg).toBe(debezium);
      expect(zonedTimestampText(debezium), pg).toBe(pg);
    }
    expect(zonedTimestampOfText('294276-12-31 23:59:59+00', 0)).toBe('+294276-12-31T23:59:59Z');
    expect(zonedTimestamp(epochMicros('5000-06-01 12:00:00-05:30 BC'), 3)).toBe('-4999-06-01T17:30:00.000Z');
    expect(tz.fromText('infinity')).toBe('infinity');
    expect(tz.fromText('-infinity')).toBe('-infinity');
  });
});

describe("the reconciler's timestamp normalization at the extremes", () => {
  const instant = (text: string): bigint => {
    const p = parseTimestamp(text);
    if (p === null || typeof p === 'string') throw new Error(text);
    return p.wall - BigInt(p.offsetSeconds ?? 0) * 1_000_000n;
  };

  it("converts instants beyond a Date to a zone's wall clock as PostgreSQL does (AT TIME ZONE, recorded)", () => {
    expect(formatTimestamp(toZoneWall(instant('294276-12-31 23:00:00+00'), 'America/New_York'))).toBe('294276-12-31 18:00:00');
    expect(formatTimestamp(toZoneWall(instant('294276-07-01 12:00:00+00'), 'America/New_York'))).toBe('294276-07-01 08:00:00');
    expect(formatTimestamp(toZoneWall(instant('4714-11-24 12:00:00+00 BC'), 'America/New_York'))).toBe('4714-11-24 07:03:58 BC');
  });
});
