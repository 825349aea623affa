/**
 * Calendar arithmetic on day numbers since 1970-01-01, the proleptic Gregorian calendar as PostgreSQL
 * and java.time count it (Howard Hinnant's days_from_civil / civil_from_days). Integer arithmetic only:
 * PostgreSQL's dates reach 5874897 AD and 4714 BC, far beyond a JavaScript Date. One home for it, so
 * the source connector (text -> Debezium values) and the sink (Debezium values -> text) cannot drift.
 */

/** A date with an astronomical year (year 0 = 1 BC, -1 = 2 BC), month 1-12 and day 1-31. */
export interface CivilDate {
  year: number;
  month: number;
  day: number;
}

/** Microseconds in a day (no leap seconds, as PostgreSQL and java.time count). */
export const MICROS_PER_DAY = 86_400_000_000n;

/**
 * PostgreSQL's JDBC driver turns `infinity` / `-infinity` timestamps into these millisecond constants,
 * and Debezium carries them on as microseconds (and divides them for millisecond columns): observed.
 */
export const TIMESTAMP_POS_INFINITY = 9_223_372_036_825_200_000n;
export const TIMESTAMP_NEG_INFINITY = -9_223_372_036_832_400_000n;

/** Days from 1970-01-01 to an astronomical year/month/day (year 0 = 1 BC) on the proleptic Gregorian calendar. */
export function daysFromCivil(year: number, month: number, day: number): number {
  const y = month <= 2 ? year - 1 : year;
  const era = Math.floor(y / 400);
  const yoe = y - era * 400;
  const doy = Math.floor((153 * (month > 2 ? month - 3 : month + 9) + 2) / 5) + day - 1;
  const doe = yoe * 365 + Math.floor(yoe / 4) - Math.floor(yoe / 100) + doy;
  return era * 146_097 + doe - 719_468;
}

/**
 * The astronomical year/month/day of a day number since 1970-01-01 (inverse of {@link daysFromCivil}),
 * written into `into` and returned. Callers on the CDC hot path pass one object they reuse, so that
 * converting a value allocates nothing; without it a new object is made.
 */
export function civilFromDays(days: number, into: CivilDate = { year: 0, month: 0, day: 0 }): CivilDate {
  const z = days + 719_468;
  const era = Math.floor(z / 146_097);
  const doe = z - era * 146_097;
  const yoe = Math.floor((doe - Math.floor(doe / 1460) + Math.floor(doe / 36_524) - Math.floor(doe / 146_096)) / 365);
  const doy = doe - (365 * yoe + Math.floor(yoe / 4) - Math.floor(yoe / 100));
  const mp = Math.floor((5 * doy + 2) / 153);
  const month = mp < 10 ? mp + 3 : mp - 9;
  into.year = yoe + era * 400 + (month <= 2 ? 1 : 0);
  into.month = month;
  into.day = doy - Math.floor((153 * mp + 2) / 5) + 1;
  return into;
}

/**
 * Division rounding toward negative infinity, as java.time divides instants (toEpochMilli, epoch days):
 * the day of a negative microsecond count is the one before the epoch, not day 0. `b` must be positive.
 */
export function floorDiv(a: bigint, b: bigint): bigint {
  return a >= 0n ? a / b : -((-a + b - 1n) / b);
}

/** Days from 1970-01-01 to 2000-01-01, PostgreSQL's own epoch (its timestamps count from there). */
export const DAYS_1970_TO_2000 = 10_957;

/** `n` in at least `width` digits, zero-padded (PostgreSQL prints years 1-999 as `0044`). */
export function zeroPad(n: number | bigint, width: number): string {
  return String(n).padStart(width, '0');
}

/**
 * `00` to `59`: a month's, day's, hour's, minute's or second's two digits by lookup, cheaper per value
 * than padStart on a hot path.
 */
export const TWO_DIGITS: readonly string[] = Array.from({ length: 60 }, (_, n) => zeroPad(n, 2));
