/**
 * Timestamps as exact microsecond counts for the JS side of normalization. PostgreSQL prints
 * timestamps with microseconds and its own rounding rules; a JS `Date` keeps milliseconds only,
 * so parsing, zone conversion, rounding and printing are done here on BigInt microseconds.
 */
import {
  type CivilDate,
  civilFromDays as civilFrom1970,
  DAYS_1970_TO_2000,
  daysFromCivil as daysFrom1970,
  floorDiv,
  MICROS_PER_DAY,
  TWO_DIGITS,
  zeroPad,
} from '../core/calendar.js';

/** Microseconds since 2000-01-01 00:00:00 (PostgreSQL's own epoch), on the proleptic Gregorian calendar. */
export type Micros = bigint;

const US_PER_SECOND = 1_000_000n;
const US_PER_DAY = MICROS_PER_DAY;
/** 2000-01-01 00:00:00 UTC in Unix milliseconds (what a JS Date counts from). */
const EPOCH_2000_MS = DAYS_1970_TO_2000 * 86_400_000;
const EPOCH_2000_MS_BIG = BigInt(EPOCH_2000_MS);

/** Days from 2000-01-01 to the given astronomical year/month/day (year 0 = 1 BC). */
function daysFromCivil(y: number, m: number, d: number): number {
  return daysFrom1970(y, m, d) - DAYS_1970_TO_2000;
}

/** One date the formatters fill and read per value, so printing a timestamp allocates no date object. */
const civil: CivilDate = { year: 0, month: 0, day: 0 };

/** `civil` set to the date `days` after 2000-01-01. */
function civilFromDays(days: number): CivilDate {
  return civilFrom1970(days + DAYS_1970_TO_2000, civil);
}

function floorMod(a: bigint, b: bigint): bigint {
  return a - floorDiv(a, b) * b;
}

export interface ParsedTimestamp {
  /** Wall-clock microseconds as written (before applying any offset). */
  wall: Micros;
  /** UTC offset in seconds when the text carried one (timestamptz), else null. */
  offsetSeconds: number | null;
}

const TS_RE =
  /^(\d{1,})-(\d{1,2})-(\d{1,2})(?:[ T](\d{1,2}):(\d{2})(?::(\d{2})(?:\.(\d{1,9}))?)?)?\s*(Z|[+-]\d{1,2}(?::?\d{2}(?::?\d{2})?)?)?(\s*BC)?$/i;

/** Parses PostgreSQL's ISO output (and ISO 8601 with "T"/"Z"). Returns 'infinity' strings as is. */
export function parseTimestamp(text: string): ParsedTimestamp | 'infinity' | '-infinity' | null {
  const t = text.trim();
  if (/^\+?infinity$/i.test(t)) return 'infinity';
  if (/^-infinity$/i.test(t)) return '-infinity';
  const m = TS_RE.exec(t);
  if (!m) return null;
  let year = Number(m[1]);
  if (m[9]) year = 1 - year;
  const days = daysFromCivil(year, Number(m[2]), Number(m[3]));
  const frac = (m[7] ?? '').padEnd(6, '0');
  // Beyond microseconds PostgreSQL rounds on input; the source text here never has more than 6 digits.
  const micros = BigInt(frac.slice(0, 6) || '0');
  const wall =
    BigInt(days) * US_PER_DAY + BigInt(Number(m[4] ?? 0) * 3600 + Number(m[5] ?? 0) * 60 + Number(m[6] ?? 0)) * US_PER_SECOND + micros;
  let offsetSeconds: number | null = null;
  const tz = m[8];
  if (tz) {
    if (tz.toUpperCase() === 'Z') offsetSeconds = 0;
    else {
      const sign = tz.startsWith('-') ? -1 : 1;
      const digits = tz.slice(1).replace(/:/g, '');
      const hh = Number(digits.slice(0, digits.length % 2 === 1 ? 1 : 2));
      const rest = digits.slice(digits.length % 2 === 1 ? 1 : 2);
      const mm = Number(rest.slice(0, 2) || 0);
      const ss = Number(rest.slice(2, 4) || 0);
      offsetSeconds = sign * (hh * 3600 + mm * 60 + ss);
    }
  }
  return { wall, offsetSeconds };
}

/** Milliseconds of 400 Gregorian years (146097 days). */
const CYCLE_MS = 146_097 * 86_400_000;

/** The UTC offset (seconds) of an IANA zone at an instant, from the platform's tz database. */
export function zoneOffsetSeconds(utc: Micros, timeZone: string): number {
  if (timeZone.toUpperCase() === 'UTC' || timeZone === 'Etc/UTC' || timeZone === 'GMT') return 0;
  let ms = Number(floorDiv(utc, 1000n) + EPOCH_2000_MS_BIG);
  // A Date ends at ±8.64e15 ms (275760 AD / 271821 BC); PostgreSQL's timestamps reach 294276 AD. The
  // Gregorian calendar repeats every 400 years to the weekday, so an instant moved by whole cycles keeps
  // its zone rules: the last POSIX rule far in the future, local mean time far in the past.
  const limit = 8_000_000_000_000_000;
  if (ms > limit || ms < -limit) {
    const cycles = Math.ceil((Math.abs(ms) - limit) / CYCLE_MS);
    ms -= Math.sign(ms) * cycles * CYCLE_MS;
  }
  const parts = new Intl.DateTimeFormat('en-US', {
    timeZone,
    hourCycle: 'h23',
    era: 'short',
    year: 'numeric',
    month: 'numeric',
    day: 'numeric',
    hour: 'numeric',
    minute: 'numeric',
    second: 'numeric',
  }).formatToParts(new Date(ms));
  const get = (type: string): string => parts.find((p) => p.type === type)?.value ?? '0';
  let year = Number(get('year'));
  if (/^B/i.test(get('era'))) year = 1 - year;
  const wallSeconds =
    daysFromCivil(year, Number(get('month')), Number(get('day'))) * 86400 +
    Number(get('hour')) * 3600 +
    Number(get('minute')) * 60 +
    Number(get('second'));
  const utcSeconds = Math.floor(ms / 1000) - EPOCH_2000_MS / 1000;
  return wallSeconds - utcSeconds;
}

/** `(ts AT TIME ZONE zone)`: a UTC instant to that zone's wall clock. */
export function toZoneWall(utc: Micros, timeZone: string): Micros {
  return utc + BigInt(zoneOffsetSeconds(utc, timeZone)) * US_PER_SECOND;
}

/** `ts::timestamp(p)`: PostgreSQL rounds half away from its 2000-01-01 epoch (AdjustTimestampForTypmod). */
export function roundMicros(t: Micros, precision: number): Micros {
  if (precision >= 6) return t;
  const scale = 10n ** BigInt(6 - precision);
  const offset = scale / 2n;
  return t >= 0n ? ((t + offset) / scale) * scale : -(((-t + offset) / scale) * scale);
}

/** Drops fraction digits beyond `precision` (toward the earlier instant, as the wall clock reads). */
export function truncateMicros(t: Micros, precision: number): Micros {
  if (precision >= 6) return t;
  const scale = 10n ** BigInt(6 - precision);
  return t - floorMod(t, scale);
}

/**
 * PostgreSQL's text output of a timestamp (ISO DateStyle): the fraction only when not zero and
 * without trailing zeros, " BC" for years before 1 AD.
 */
export function formatTimestamp(t: Micros): string {
  const inDay = floorMod(t, US_PER_DAY);
  const { year: y, month, day } = civilFromDays(Number((t - inDay) / US_PER_DAY));
  const secs = Number(inDay / US_PER_SECOND);
  const micros = Number(inDay % US_PER_SECOND);
  const bc = y <= 0;
  const year = bc ? 1 - y : y;
  const fraction = micros === 0 ? '' : `.${zeroPad(micros, 6).replace(/0+$/, '')}`;
  const clock = `${TWO_DIGITS[Math.floor(secs / 3600)]}:${TWO_DIGITS[Math.floor((secs % 3600) / 60)]}:${TWO_DIGITS[secs % 60]}`;
  return `${year >= 1000 ? year : zeroPad(year, 4)}-${TWO_DIGITS[month]}-${TWO_DIGITS[day]} ${clock}${fraction}${bc ? ' BC' : ''}`;
}

/** PostgreSQL's text output of a date (ISO DateStyle), " BC" for years before 1 AD. */
export function formatDate(t: Micros): string {
  const { year: y, month, day } = civilFromDays(Number(floorDiv(t, US_PER_DAY)));
  const bc = y <= 0;
  const year = bc ? 1 - y : y;
  return `${year >= 1000 ? year : zeroPad(year, 4)}-${TWO_DIGITS[month]}-${TWO_DIGITS[day]}${bc ? ' BC' : ''}`;
}
