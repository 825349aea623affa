/**
 * One cache entry as stored by lua/apply-n.lua: a hash with the source position, the kind, the key
 * values, the commit and write times, and one `c:<column>` field per payload column.
 */
import type { Row } from '../core/change-event.js';
import { comparePositions, decodePosition, encodePosition } from '../core/lsn.js';
import { decodeValue } from './payload.js';

export type EntryKind = 'value' | 'tombstone' | 'invalid';

export interface CacheEntry {
  key: string;
  /** encodePosition() form. */
  position: string;
  kind: EntryKind;
  keyValues: Record<string, unknown>;
  /** Source commit time in microseconds; null for fills from the database. */
  commitTimeUs: number | null;
  /** Redis time of the write, milliseconds. */
  writtenAtMs: number;
  /** Column name to encoded value (see payload.ts). */
  columns: Map<string, string>;
}

/** The lowest position: fills carry it (or the truncate barrier), so every change event wins over a fill. */
export const ZERO_POSITION = encodePosition({ commitLsn: 0n, ordinal: 0 });

const KINDS: Record<string, EntryKind> = { v: 'value', t: 'tombstone', i: 'invalid' };

/** Parses an HGETALL reply; null for a missing key (empty reply) or a hash that is not an entry. */
export function parseEntry(key: string, hash: Record<string, string>): CacheEntry | null {
  const position = hash._pos;
  const kind = KINDS[hash._kind ?? ''];
  if (!position || !kind) return null;
  const columns = new Map<string, string>();
  for (const [field, value] of Object.entries(hash)) {
    if (field.startsWith('c:')) columns.set(field.slice(2), value);
  }
  return {
    key,
    position,
    kind,
    keyValues: hash._key ? (JSON.parse(hash._key) as Record<string, unknown>) : {},
    commitTimeUs: hash._cts ? Number(hash._cts) : null,
    writtenAtMs: Number(hash._wts ?? 0),
    columns,
  };
}

/** The payload of a value entry as a row of change-event values. */
export function entryRow(entry: CacheEntry): Row {
  return Object.fromEntries([...entry.columns].map(([name, text]) => [name, decodeValue(text)]));
}

/** a < b as positions. */
export function positionBefore(a: string, b: string): boolean {
  return comparePositions(decodePosition(a), decodePosition(b)) < 0;
}

/** Whether readers may use the entry: not an invalid marker, and not older than the truncate barrier. */
export function usable(entry: CacheEntry, barrier: string): boolean {
  return entry.kind !== 'invalid' && !positionBefore(entry.position, barrier);
}
