/**
 * Timestamps as exact microsecond counts for the JS side of normalization. PostgreSQL prints
 * timestamps with microseconds and its own rounding rules; a JS `Date` keeps milliseconds only,
 * so parsing, zone conversion, rounding and printing are done here on BigInt microseconds.
 */

/** Microseconds since 2000-01-01 00:00:00 (PostgreSQL's own epoch), on the proleptic Gregorian calendar. */
export type Micros = bigint;

const US_PER_SECOND = 1_000_000n;
const US_PER_DAY = 86_400_000_000n;

/** Days from 2000-01-01 to the given astronomical year/month/day (year 0 = 1 BC). Hinnant's algorithm. */
function daysFromCivil(y: number, m: number, d: number): number {
  const yy = m <= 2 ? y - 1 : y;
  const era = Math.floor(yy / 400);
  const yoe = yy - era * 400;
  const doy = Math.floor((153 * (m + (m > 2 ? -3 : 9)) + 2) / 5) + d - 1;
  const doe = yoe * 365 + Math.floor(yoe / 4) - Math.floor(yoe / 100) + doy;
  return era * 146097 + doe - 719468 - 10957;
}

function civilFromDays(days: number): { y: number; m: number; d: number } {
  const z = days + 10957 + 719468;
  const era = Math.floor(z / 146097);
  const doe = z - era * 146097;
  const yoe = Math.floor((doe - Math.floor(doe / 1460) + Math.floor(doe / 36524) - Math.floor(doe / 146096)) / 365);
  const doy = doe - (365 * yoe + Math.floor(yoe / 4) - Math.floor(yoe / 100));
  const mp = Math.floor((5 * doy + 2) / 153);
  const d = doy - Math.floor((153 * mp + 2) / 5) + 1;
  const m = mp + (mp < 10 ? 3 : -9);
  return { y: yoe + era * 400 + (m <= 2 ? 1 : 0), m, d };
}

function floorDiv(a: bigint, b: bigint): bigint {
  const q = a / b;
  return a % b !== 0n && a < 0n !== b < 0n ? q - 1n : q;
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
  let ms = Number(floorDiv(utc, 1000n) + 946_684_800_000n);
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
  const utcSeconds = Math.floor(ms / 1000) - 946_684_800;
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

function pad(n: number, width: number): string {
  return String(n).padStart(width, '0');
}

/**
 * PostgreSQL's text output of a timestamp (ISO DateStyle): the fraction only when not zero and
 * without trailing zeros, " BC" for years before 1 AD.
 */
export function formatTimestamp(t: Micros): string {
  const days = Number(floorDiv(t, US_PER_DAY));
  const inDay = floorMod(t, US_PER_DAY);
  const { y, m, d } = civilFromDays(days);
  const secs = Number(inDay / US_PER_SECOND);
  const micros = Number(inDay % US_PER_SECOND);
  const bc = y <= 0;
  const year = bc ? 1 - y : y;
  const fraction = micros === 0 ? '' : `.${pad(micros, 6).replace(/0+$/, '')}`;
  return `${pad(year, 4)}-${pad(m, 2)}-${pad(d, 2)} ${pad(Math.floor(secs / 3600), 2)}:${pad(Math.floor((secs % 3600) / 60), 2)}:${pad(secs % 60, 2)}${fraction}${bc ? ' BC' : ''}`;
}

/** PostgreSQL's text output of a date (ISO DateStyle), " BC" for years before 1 AD. */
export function formatDate(t: Micros): string {
  const { y, m, d } = civilFromDays(Number(floorDiv(t, US_PER_DAY)));
  const bc = y <= 0;
  return `${pad(bc ? 1 - y : y, 4)}-${pad(m, 2)}-${pad(d, 2)}${bc ? ' BC' : ''}`;
}
