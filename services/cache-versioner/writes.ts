/**
 * From change events to cache writes: which entry keys a change touches, in which mode, with which
 * payload. Pure; the applier sends the result to Redis.
 */
import type { ChangeEnvelope, Row } from '../core/change-event.js';
import { ParityError } from '../core/errors.js';
import { comparePositions, decodePosition, encodePosition, type Position } from '../core/lsn.js';
import { renderKey } from './keys.js';
import { keyJson, projectRow } from './payload.js';
import { jitteredTtlMs, type CacheSettings } from './settings.js';

/** Modes of lua/apply-n.lua. */
export type WriteMode = 'v' | 'p' | 't' | 'f';

export interface EntryWrite {
  version: string;
  entryKey: string;
  mode: WriteMode;
  /** encodePosition() form. */
  position: string;
  ttlMs: number;
  /** Commit time in microseconds, or '' for fills. */
  commitTimeUs: string;
  keyJson: string;
  columns: Array<[string, string]>;
}

/** What the applier needs from one decoded Kafka message. */
export interface CacheChange {
  /** The Kafka key, decoded (the key columns), when there is one. */
  key: Row | null;
  envelope: ChangeEnvelope;
  position: Position;
}

export interface PlannedChange {
  writes: EntryWrite[];
  /** A TRUNCATE: the barrier to raise, in encodePosition() form. */
  barrier?: string;
}

function keyValues(settings: CacheSettings, ...rows: Array<Row | null | undefined>): Record<string, unknown> | null {
  for (const row of rows) {
    if (row && settings.keyColumns.every((k) => row[k] !== undefined && row[k] !== null)) {
      return Object.fromEntries(settings.keyColumns.map((k) => [k, row[k]]));
    }
  }
  return null;
}

function sameKey(settings: CacheSettings, a: Record<string, unknown>, b: Record<string, unknown>): boolean {
  return settings.keyColumns.every((k) => String(a[k]) === String(b[k]));
}

/**
 * The writes one change makes, for every version in `versions`: an upsert for c/r/u (a partial one when
 * a TOASTed column is unchanged), a tombstone for d, a tombstone of the old key too when an update
 * changed the key, and a barrier for t. Throws PARITY_DECODE when the change carries no key values.
 */
export function planChange(
  change: CacheChange,
  settings: CacheSettings,
  versions: readonly string[],
  random: () => number = Math.random,
): PlannedChange {
  const { envelope } = change;
  const position = encodePosition(change.position);
  if (envelope.op === 't') return { writes: [], barrier: position };
  const commitTimeUs = envelope.source?.ts_us !== undefined && envelope.source?.ts_us !== null ? String(envelope.source.ts_us) : '';
  const writes: EntryWrite[] = [];
  const tombstone = (values: Record<string, unknown>) => {
    for (const version of versions) {
      const template = settings.templates.get(version);
      if (!template) continue;
      writes.push({
        version,
        entryKey: renderKey(template, values),
        mode: 't',
        position,
        ttlMs: settings.tombstoneTtlMs,
        commitTimeUs,
        keyJson: keyJson(settings.keyColumns, values),
        columns: [],
      });
    }
  };
  if (envelope.op === 'd') {
    const values = keyValues(settings, change.key, envelope.before);
    if (!values) throw missingKey(settings, envelope);
    tombstone(values);
    return { writes };
  }
  const after = envelope.after;
  if (!after)
    throw new ParityError('PARITY_DECODE', `a "${envelope.op}" change of ${envelope.source?.table ?? 'a table'} has no after row`, {
      hint: 'the event is malformed; it goes to the dead-letter topic',
    });
  const values = keyValues(settings, after, change.key);
  if (!values) throw missingKey(settings, envelope);
  if (envelope.op === 'u') {
    const old = keyValues(settings, envelope.before);
    if (old && !sameKey(settings, old, values)) tombstone(old);
  }
  const projected = projectRow(after, settings.projection);
  const mode: WriteMode = projected.unchanged.length > 0 ? 'p' : 'v';
  const kj = keyJson(settings.keyColumns, values);
  for (const version of versions) {
    const template = settings.templates.get(version);
    if (!template) continue;
    writes.push({
      version,
      entryKey: renderKey(template, values),
      mode,
      position,
      ttlMs: jitteredTtlMs(settings.ttlMs, settings.ttlJitterPct, random),
      commitTimeUs,
      keyJson: kj,
      columns: projected.columns,
    });
  }
  return { writes };
}

function missingKey(settings: CacheSettings, envelope: ChangeEnvelope): ParityError {
  return new ParityError(
    'PARITY_DECODE',
    `a "${envelope.op}" change of ${envelope.source?.table ?? 'a table'} lacks key column(s) ${settings.keyColumns.join(', ')}`,
    {
      hint: "the table needs a primary key (or REPLICA IDENTITY) covering the spec's key columns",
    },
  );
}

function compareWrites(a: EntryWrite, b: EntryWrite): number {
  return comparePositions(decodePosition(a.position), decodePosition(b.position));
}

/**
 * Merges two writes of the same entry key into one when the result is what Redis would hold after
 * both (so a batch sends one script call per key). Returns null when they cannot be merged: a
 * partial write needs the state right before it, and a tombstone leaves nothing to merge into.
 */
export function mergeWrites(a: EntryWrite, b: EntryWrite): EntryWrite | null {
  const order = compareWrites(a, b);
  if (order === 0) return a;
  const [older, newer] = order < 0 ? [a, b] : [b, a];
  if (newer.mode !== 'p') return newer;
  if (older.mode === 'v' || older.mode === 'p') {
    const columns = new Map(older.columns);
    for (const [name, value] of newer.columns) columns.set(name, value);
    return { ...newer, mode: older.mode, columns: [...columns] };
  }
  return null;
}

/**
 * Collapses a batch's writes to at most one per entry key where possible, keeping each key's writes
 * in order otherwise. The script is still the judge of order against what Redis holds; collapsing
 * only saves round trips.
 */
export function collapseWrites(writes: EntryWrite[]): EntryWrite[] {
  const out: EntryWrite[] = [];
  const last = new Map<string, number>();
  for (const write of writes) {
    const index = last.get(write.entryKey);
    if (index !== undefined) {
      const merged = mergeWrites(out[index] as EntryWrite, write);
      if (merged) {
        out[index] = merged;
        continue;
      }
      // Unmergeable: both go, older first (a pipeline runs in order).
      const existing = out[index] as EntryWrite;
      if (compareWrites(write, existing) < 0) {
        out[index] = write;
        out.push(existing);
        last.set(write.entryKey, out.length - 1);
        continue;
      }
    }
    out.push(write);
    last.set(write.entryKey, out.length - 1);
  }
  return out;
}

/** NUL: the separator of a packed write; neither JSON text nor a PostgreSQL identifier can hold it. */
const SEP = '\0';

/** The ARGV of lua/apply-n.lua for one write: its fields joined by NUL, in one string. */
export function packWrite(write: EntryWrite): string {
  let packed = `${write.mode}${SEP}${write.position}${SEP}${write.ttlMs}${SEP}${write.commitTimeUs}${SEP}${write.keyJson}`;
  for (const [name, value] of write.columns) packed += `${SEP}${name}${SEP}${value}`;
  return packed;
}

/** The arguments of one apply-n call for `writes`: key count, the keys, then one packed ARGV per write. */
export function applyCall(writes: readonly EntryWrite[]): [number, ...string[]] {
  const args: [number, ...string[]] = [writes.length];
  for (const write of writes) args.push(write.entryKey);
  for (const write of writes) args.push(packWrite(write));
  return args;
}
