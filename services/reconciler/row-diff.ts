/**
 * Exact diff of two row streams sorted by key then row hash (in an order both the database and JS
 * agree on, see `RowOrder`). Rows are
 * compared as multisets per key, so duplicate rows count: two equal copies on one side against
 * one on the other is one row exclusive to that side, never "equal" (data-diff#850).
 *
 * Per key, the rows left unmatched on each side are paired up as updates; the surplus on either
 * side is exclusive to it. Memory is bounded: only one key's unmatched rows are held, and at most
 * `maxKept` hashes of them.
 */
import type { KeyTuple } from './key-range.js';
import type { KeyComparison } from './key-type.js';
import type { FetchedRow } from './segment-hash.js';

export interface KeyDifference {
  kt: string;
  key: KeyTuple;
  /** Unmatched row hashes per side, sorted (capped at maxKept; counts below are exact). */
  sourceHashes: string[];
  targetHashes: string[];
  /** Canonical values of the first unmatched row per side, null when the side has none. */
  sourceValues: Array<string | null> | null;
  targetValues: Array<string | null> | null;
  updated: number;
  exclusiveSource: number;
  exclusiveTarget: number;
}

export interface DiffCounters {
  matchedRows: number;
  sourceRows: number;
  targetRows: number;
}

/** Byte order of UTF-8, which is what COLLATE "C" sorts by. */
export function compareBytes(a: string, b: string): number {
  if (a === b) return 0;
  return Buffer.compare(Buffer.from(a, 'utf8'), Buffer.from(b, 'utf8'));
}

/** Row order of a diff stream: by key, then by row hash. */
export type RowOrder = (a: FetchedRow, b: FetchedRow) => number;

function compareHash(a: FetchedRow, b: FetchedRow): number {
  return a.h < b.h ? -1 : a.h > b.h ? 1 : 0;
}

/** (canonical key text, hash) in byte order: works for any key type, at the price of a sort. */
export const BYTE_ORDER: RowOrder = (a, b) => compareBytes(a.kt, b.kt) || compareHash(a, b);

// KeyComparison lives in key-type.ts (projection.ts needs it too; importing it from here made a cycle).
export type { KeyComparison } from './key-type.js';

/** Compares canonical integer texts ("-12", "7") numerically without parsing them. */
export function compareIntegerText(a: string, b: string): number {
  if (a === b) return 0;
  const na = a.startsWith('-');
  const nb = b.startsWith('-');
  if (na !== nb) return na ? -1 : 1;
  // Same sign: more digits is larger in magnitude; equal lengths compare as strings.
  const magnitude = a.length !== b.length ? a.length - b.length : a < b ? -1 : 1;
  return na ? -magnitude : magnitude;
}

/** Rank of numeric's special values in PostgreSQL's order: -Infinity < finite < Infinity < NaN. */
function specialRank(t: string): number {
  return t === '-Infinity' ? -1 : t === 'Infinity' ? 1 : t === 'NaN' ? 2 : 0;
}

/**
 * Compares canonical decimal texts (`trim_scale(numeric)::text`: no exponent, no trailing fraction
 * zeros, no "-0") numerically without parsing them, in PostgreSQL's numeric order.
 */
export function compareDecimalText(a: string, b: string): number {
  if (a === b) return 0;
  const ra = specialRank(a);
  const rb = specialRank(b);
  if (ra !== 0 || rb !== 0) return ra - rb;
  const na = a.startsWith('-');
  const nb = b.startsWith('-');
  if (na !== nb) return na ? -1 : 1;
  const [ia, fa = ''] = (na ? a.slice(1) : a).split('.');
  const [ib, fb = ''] = (nb ? b.slice(1) : b).split('.');
  // Integer parts: more digits is larger; then digit by digit. Fractions (no trailing zeros) compare as strings.
  let magnitude = ia!.length !== ib!.length ? ia!.length - ib!.length : ia! < ib! ? -1 : ia! > ib! ? 1 : fa < fb ? -1 : fa > fb ? 1 : 0;
  magnitude = Math.sign(magnitude);
  return na ? -magnitude : magnitude;
}

/**
 * The key's own order (as the index walks it), then hash: no sort needed in the database. Only for
 * keys whose order JS reproduces exactly: integers, numerics, and text or uuid compared by bytes.
 */
export function keyOrder(comparisons: KeyComparison[]): RowOrder {
  return (a, b) => {
    for (let i = 0; i < comparisons.length; i++) {
      const kind = comparisons[i];
      const c =
        kind === 'integer'
          ? compareIntegerText(a.key[i]!, b.key[i]!)
          : kind === 'decimal'
            ? compareDecimalText(a.key[i]!, b.key[i]!)
            : compareBytes(a.key[i]!, b.key[i]!);
      if (c !== 0) return c;
    }
    return compareHash(a, b);
  };
}

const compareRows = BYTE_ORDER;

/** Builds a KeyDifference from the unmatched rows' counts. */
export function classify(
  kt: string,
  key: KeyTuple,
  sourceHashes: string[],
  targetHashes: string[],
  sourceCount: number,
  targetCount: number,
  sourceValues: Array<string | null> | null,
  targetValues: Array<string | null> | null,
): KeyDifference {
  const updated = Math.min(sourceCount, targetCount);
  return {
    kt,
    key,
    sourceHashes,
    targetHashes,
    sourceValues,
    targetValues,
    updated,
    exclusiveSource: sourceCount - updated,
    exclusiveTarget: targetCount - updated,
  };
}

/** Differing rows of a key in drift terms: updates plus rows exclusive to either side. */
export function driftRows(d: Pick<KeyDifference, 'updated' | 'exclusiveSource' | 'exclusiveTarget'>): number {
  return d.updated + d.exclusiveSource + d.exclusiveTarget;
}

/**
 * Reads a sorted stream of rows or of batches of rows (a cursor's FETCH results): within a batch,
 * rows are taken synchronously, so the diff awaits once per batch instead of once per row.
 */
class RowPuller {
  private batch: FetchedRow[] = [];
  private i = 0;
  private readonly it: AsyncIterator<FetchedRow | FetchedRow[]>;

  constructor(
    rows: AsyncIterable<FetchedRow | FetchedRow[]>,
    private readonly counters: DiffCounters,
    private readonly which: 'sourceRows' | 'targetRows',
  ) {
    this.it = rows[Symbol.asyncIterator]();
  }

  /** A row is ready without awaiting. */
  ready(): boolean {
    return this.i < this.batch.length;
  }

  take(): FetchedRow {
    this.counters[this.which]++;
    return this.batch[this.i++]!;
  }

  /** The next row once the next batch has arrived; null at the end. */
  async fill(): Promise<FetchedRow | null> {
    for (;;) {
      const r = await this.it.next();
      if (r.done) return null;
      if (!Array.isArray(r.value)) {
        this.counters[this.which]++;
        return r.value;
      }
      this.batch = r.value;
      this.i = 0;
      if (this.batch.length > 0) return this.take();
    }
  }
}

export async function* diffSortedRows(
  source: AsyncIterable<FetchedRow | FetchedRow[]>,
  target: AsyncIterable<FetchedRow | FetchedRow[]>,
  counters: DiffCounters,
  maxKept = 1000,
  order: RowOrder = BYTE_ORDER,
): AsyncGenerator<KeyDifference> {
  const sp = new RowPuller(source, counters, 'sourceRows');
  const tp = new RowPuller(target, counters, 'targetRows');
  let s = sp.ready() ? sp.take() : await sp.fill();
  let t = tp.ready() ? tp.take() : await tp.fill();
  let cur: {
    kt: string;
    key: KeyTuple;
    sh: string[];
    th: string[];
    sn: number;
    tn: number;
    sv: Array<string | null> | null;
    tv: Array<string | null> | null;
  } | null = null;
  const flush = (): KeyDifference | null => {
    if (!cur) return null;
    const d = classify(cur.kt, cur.key, cur.sh, cur.th, cur.sn, cur.tn, cur.sv, cur.tv);
    cur = null;
    return d;
  };
  while (s || t) {
    const c = !s ? 1 : !t ? -1 : order(s, t);
    if (c === 0) {
      counters.matchedRows++;
      s = sp.ready() ? sp.take() : await sp.fill();
      t = tp.ready() ? tp.take() : await tp.fill();
      continue;
    }
    const row = c < 0 ? s! : t!;
    if (cur && cur.kt !== row.kt) {
      const d = flush();
      if (d) yield d;
    }
    cur ??= { kt: row.kt, key: row.key, sh: [], th: [], sn: 0, tn: 0, sv: null, tv: null };
    if (c < 0) {
      cur.sn++;
      if (cur.sh.length < maxKept) cur.sh.push(row.h);
      cur.sv ??= row.values;
      // The source's own key text is the one queries and repairs use.
      cur.key = row.key;
      s = sp.ready() ? sp.take() : await sp.fill();
    } else {
      cur.tn++;
      if (cur.th.length < maxKept) cur.th.push(row.h);
      cur.tv ??= row.values;
      t = tp.ready() ? tp.take() : await tp.fill();
    }
  }
  const d = flush();
  if (d) yield d;
}

/**
 * The same diff for rows already in memory (rechecks): groups by key and compares multisets.
 * Returns differences for the requested keys only; keys equal on both sides are left out.
 */
export function diffRowSets(source: FetchedRow[], target: FetchedRow[], maxKept = 1000): Map<string, KeyDifference> {
  const byKey = new Map<string, { key: KeyTuple; s: FetchedRow[]; t: FetchedRow[] }>();
  for (const r of source) {
    const g = byKey.get(r.kt) ?? { key: r.key, s: [], t: [] };
    g.s.push(r);
    byKey.set(r.kt, g);
  }
  for (const r of target) {
    const g = byKey.get(r.kt) ?? { key: r.key, s: [], t: [] };
    g.t.push(r);
    byKey.set(r.kt, g);
  }
  const out = new Map<string, KeyDifference>();
  for (const [kt, g] of byKey) {
    const s = [...g.s].sort(compareRows);
    const t = [...g.t].sort(compareRows);
    const sRest: FetchedRow[] = [];
    const tRest: FetchedRow[] = [];
    let i = 0;
    let j = 0;
    while (i < s.length || j < t.length) {
      const c = i >= s.length ? 1 : j >= t.length ? -1 : compareRows(s[i]!, t[j]!);
      if (c === 0) {
        i++;
        j++;
      } else if (c < 0) sRest.push(s[i++]!);
      else tRest.push(t[j++]!);
    }
    if (sRest.length === 0 && tRest.length === 0) continue;
    out.set(
      kt,
      classify(
        kt,
        g.key,
        sRest.slice(0, maxKept).map((r) => r.h),
        tRest.slice(0, maxKept).map((r) => r.h),
        sRest.length,
        tRest.length,
        sRest[0]?.values ?? null,
        tRest[0]?.values ?? null,
      ),
    );
  }
  return out;
}
