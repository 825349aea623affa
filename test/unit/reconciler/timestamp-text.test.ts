import { describe, expect, it } from 'vitest';
import {
  formatDate,
  formatTimestamp,
  parseTimestamp,
  roundMicros,
  toZoneWall,
  truncateMicros,
} from '../../../services/reconciler/timestamp-text.js';

function wall(text: string): bigint {
  const p = parseTimestamp(text);
  if (p === null || typeof p === 'string') throw new Error(`bad ${text}`);
  return p.wall;
}

describe('timestamps as exact microseconds', () => {
  it('round-trips PostgreSQL ISO text output, including BC and far years', () => {
    for (const t of [
      '2000-01-01 00:00:00',
      '2024-02-29 23:59:59.999999',
      '1969-07-20 20:17:40.12345',
      '0044-03-15 12:00:00 BC',
      '12345-01-01 00:00:00.5',
    ]) {
      expect(formatTimestamp(wall(t))).toBe(t);
    }
  });

  it('reads offsets as instants', () => {
    const p = parseTimestamp('2024-05-01 12:00:00.5+05:30');
    expect(p).not.toBeNull();
    const { wall: w, offsetSeconds } = p as { wall: bigint; offsetSeconds: number };
    expect(offsetSeconds).toBe(5 * 3600 + 1800);
    expect(formatTimestamp(w - BigInt(offsetSeconds) * 1_000_000n)).toBe('2024-05-01 06:30:00.5');
  });

  it('rounds like timestamp(p): half away from the 2000-01-01 epoch', () => {
    expect(formatTimestamp(roundMicros(wall('2000-01-01 00:00:00.0005'), 3))).toBe('2000-01-01 00:00:00.001');
    expect(formatTimestamp(roundMicros(wall('1999-12-31 23:59:59.9995'), 3))).toBe('1999-12-31 23:59:59.999');
    expect(formatTimestamp(roundMicros(wall('2024-01-01 10:00:00.1234'), 3))).toBe('2024-01-01 10:00:00.123');
    expect(formatTimestamp(roundMicros(wall('2024-01-01 10:00:59.9999'), 0))).toBe('2024-01-01 10:01:00');
  });

  it('truncates toward the earlier instant, before and after the epoch', () => {
    expect(formatTimestamp(truncateMicros(wall('2024-01-01 10:00:00.123999'), 3))).toBe('2024-01-01 10:00:00.123');
    expect(formatTimestamp(truncateMicros(wall('1960-01-01 10:00:00.123999'), 3))).toBe('1960-01-01 10:00:00.123');
    expect(formatTimestamp(truncateMicros(wall('1960-01-01 10:00:00.999999'), 0))).toBe('1960-01-01 10:00:00');
  });

  it('converts instants to a zone wall clock with the tz database (DST aware)', () => {
    const summer = wall('2024-07-01 12:00:00');
    const winter = wall('2024-01-01 12:00:00');
    expect(formatTimestamp(toZoneWall(summer, 'Europe/Paris'))).toBe('2024-07-01 14:00:00');
    expect(formatTimestamp(toZoneWall(winter, 'Europe/Paris'))).toBe('2024-01-01 13:00:00');
    expect(formatTimestamp(toZoneWall(winter, 'UTC'))).toBe('2024-01-01 12:00:00');
  });

  it('counts from 2000-01-01 on the shared calendar: PostgreSQL day numbers, short years padded, BC', () => {
    // PostgreSQL's own answers (select d - '2000-01-01'::date), recorded.
    const day = 86_400_000_000n;
    expect(wall('2000-01-01')).toBe(0n);
    expect(wall('1970-01-01')).toBe(-10_957n * day);
    expect(wall('0001-01-01')).toBe(-730_119n * day);
    expect(wall('4714-11-24 BC')).toBe(-2_451_545n * day);
    expect(wall('294276-12-31 23:59:59.999999')).toBe(106_751_982n * day + day - 1n);
    expect(formatTimestamp(-1n)).toBe('1999-12-31 23:59:59.999999');
    expect(formatTimestamp(wall('0044-03-15 09:05:03.05 BC'))).toBe('0044-03-15 09:05:03.05 BC');
    expect(formatDate(wall('0999-12-31'))).toBe('0999-12-31');
    // Every 9973rd day over 4714 BC to 294276 AD comes back to itself, at a time whose fields all need padding.
    const clock = 3_723_000_004n; // 01:02:03.000004
    for (let d = -2_451_545; d <= 106_751_982; d += 9_973) {
      const t = BigInt(d) * day + clock;
      const text = formatTimestamp(t);
      expect(text).toMatch(/^\d{4,}-\d\d-\d\d 01:02:03\.000004( BC)?$/);
      expect(wall(text)).toBe(t);
      expect(formatDate(t)).toBe(text.replace(' 01:02:03.000004', ''));
    }
  });

  it('formats dates and recognises infinity', () => {
    expect(formatDate(wall('2024-03-05'))).toBe('2024-03-05');
    expect(formatDate(wall('0001-01-01 BC'))).toBe('0001-01-01 BC');
    expect(parseTimestamp('infinity')).toBe('infinity');
    expect(parseTimestamp('-infinity')).toBe('-infinity');
    expect(parseTimestamp('not a time')).toBeNull();
  });
});
