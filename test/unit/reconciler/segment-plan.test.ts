import { describe, expect, it } from 'vitest';
import { Params, bucketExpr, rangePredicate } from '../../../services/reconciler/key-range.js';
import type { SideProjection } from '../../../services/reconciler/projection.js';
import { MAX_PARTS_PER_SEGMENT, partsFor } from '../../../services/reconciler/segment-planner.js';

const side = {
  keys: [
    {
      name: 'id',
      ordered: '"id"',
      compared: '"id"',
      form: 'column',
      type: { name: 'bigint', castName: 'bigint', family: 'integer', precision: null },
      common: { name: 'bigint', castName: 'bigint', family: 'integer', precision: null },
      order: { byteOrder: false, nativeIsBytes: true },
      piece: '',
    },
  ],
} as unknown as SideProjection;

/** Evaluates the generated CASE tree for an integer key (the SQL is simple enough to interpret). */
function bucketOf(sql: string, params: unknown[], id: number): number {
  let s = sql;
  for (;;) {
    const m = /^CASE WHEN "id" < \$(\d+)::bigint THEN (.*) END$/s.exec(s);
    if (!m) return Number(s);
    const bound = Number(params[Number(m[1]) - 1]);
    // Split "THEN a ELSE b" at the ELSE that belongs to this CASE (depth 0).
    const rest = m[2]!;
    let depth = 0;
    let at = -1;
    for (let i = 0; i < rest.length; i++) {
      if (rest.startsWith('CASE', i)) depth++;
      else if (rest.startsWith('END', i)) depth--;
      else if (depth === 0 && rest.startsWith(' ELSE ', i)) {
        at = i;
        break;
      }
    }
    s = id < bound ? rest.slice(0, at) : rest.slice(at + 6);
  }
}

describe('segment planning', () => {
  it('sizes parts at a quarter of the bisection threshold, at most 256 per segment', () => {
    expect(partsFor(100_000, 2000)).toEqual({ partRows: 500, partsPerSegment: 200 });
    expect(partsFor(1_000_000, 2000)).toEqual({
      partRows: Math.ceil(1_000_000 / MAX_PARTS_PER_SEGMENT),
      partsPerSegment: MAX_PARTS_PER_SEGMENT,
    });
    expect(partsFor(400, 25)).toEqual({ partRows: 6, partsPerSegment: 67 });
    expect(partsFor(10, 2)).toEqual({ partRows: 1, partsPerSegment: 10 });
  });

  it('numbers parts with a binary search over the bounds', () => {
    const bounds = [10, 20, 30, 40, 50, 60, 70].map((b) => [String(b)]);
    const params = new Params();
    const sql = bucketExpr(side, bounds, params);
    expect(params.values).toHaveLength(bounds.length);
    expect(sql.match(/CASE/g)).toHaveLength(bounds.length);
    for (const [id, bucket] of [
      [-5, 0],
      [9, 0],
      [10, 1],
      [19, 1],
      [35, 3],
      [69, 6],
      [70, 7],
      [1e9, 7],
    ] as const) {
      expect(bucketOf(sql, params.values, id)).toBe(bucket);
    }
  });

  it('leaves ranges open at either end', () => {
    const params = new Params();
    expect(rangePredicate(side, { lo: null, hi: null }, params)).toBe('TRUE');
    expect(rangePredicate(side, { lo: ['-5'], hi: null }, params)).toBe('"id" >= $1::bigint');
    expect(rangePredicate(side, { lo: null, hi: ['7'] }, params)).toBe('"id" < $2::bigint');
  });
});
