import { ParityError } from './errors.js';

/**
 * PostgreSQL LSNs as BigInt. The replication library hands out both padded ("00000000/016B3748") and
 * unpadded ("0/16B3748") forms, so LSNs are never compared as strings.
 */
export type Lsn = bigint;

export function parseLsn(text: string): Lsn {
  // Read by hand in the common case (runs per replication message): no regex, no slices, no BigInt parsing.
  const slash = text.indexOf('/');
  if (slash >= 1 && slash <= 8 && text.length - slash - 1 >= 1 && text.length - slash - 1 <= 8) {
    const hi = hexValue(text, 0, slash);
    const lo = hexValue(text, slash + 1, text.length);
    if (hi >= 0 && lo >= 0) return hi < 0x200000 ? BigInt(hi * 0x100000000 + lo) : (BigInt(hi) << 32n) | BigInt(lo);
  }
  const match = /^([0-9A-Fa-f]{1,8})\/([0-9A-Fa-f]{1,8})$/.exec(text.trim());
  if (!match) throw new ParityError('PARITY_DECODE', `not an LSN: ${JSON.stringify(text)}`, { hint: 'an LSN looks like 0/16B3748' });
  return (BigInt(`0x${match[1]}`) << 32n) | BigInt(`0x${match[2]}`);
}

/** The hex number in text[start, end) (at most 8 digits), or -1 when a character is not a hex digit. */
function hexValue(text: string, start: number, end: number): number {
  let value = 0;
  for (let i = start; i < end; i++) {
    const c = text.charCodeAt(i);
    const digit = c >= 48 && c <= 57 ? c - 48 : c >= 65 && c <= 70 ? c - 55 : c >= 97 && c <= 102 ? c - 87 : -1;
    if (digit < 0) return -1;
    value = value * 16 + digit;
  }
  return value;
}

/** PostgreSQL's canonical text form: upper-case hex halves without padding, e.g. 0/16B3748. */
export function formatLsn(lsn: Lsn): string {
  return `${(lsn >> 32n).toString(16).toUpperCase()}/${(lsn & 0xffffffffn).toString(16).toUpperCase()}`;
}

/** A change's unique position: the commit LSN of its transaction and its ordinal inside it. */
export interface Position {
  commitLsn: Lsn;
  ordinal: number;
}

export function comparePositions(a: Position, b: Position): number {
  if (a.commitLsn !== b.commitLsn) return a.commitLsn < b.commitLsn ? -1 : 1;
  return a.ordinal - b.ordinal;
}

/**
 * A position as one fixed-width string that sorts like the position itself: 16 hex digits of the
 * commit LSN, a colon, 10 decimal digits of the ordinal. Used for Redis scripts and headers.
 */
export function encodePosition(p: Position): string {
  return positionCommitPart(p.commitLsn) + positionOrdinalPart(p.ordinal);
}

/** encodePosition's commit part, "00000000016b3748:" (constant across a transaction, so computed once per transaction). */
export function positionCommitPart(commitLsn: Lsn): string {
  return `${commitLsn.toString(16).padStart(16, '0')}:`;
}

/** encodePosition's ordinal part, ten decimal digits. */
export function positionOrdinalPart(ordinal: number): string {
  return String(ordinal).padStart(10, '0');
}

export function decodePosition(text: string): Position {
  const match = /^([0-9a-f]{16}):(\d{10})$/.exec(text);
  if (!match) throw new ParityError('PARITY_DECODE', `not a parity position: ${JSON.stringify(text)}`);
  return { commitLsn: BigInt(`0x${match[1]}`), ordinal: Number(match[2]) };
}
