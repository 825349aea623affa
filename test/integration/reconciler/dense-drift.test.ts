/**
 * Dense drift (issue 20): the strategy is chosen per segment from its measured difference density.
 * A segment whose differing parts hold most of its rows is compared by one streamed sorted merge
 * instead of bisected, and predicts the next segment (merged without a checksum pass); a sparse one
 * is bisected. With a CDC slot, a dense segment's keys are rechecked by merging the segment again
 * once the slot passed it, instead of key by key. Results, checksums and sample values must be
 * exactly those of the key-by-key path.
 */
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createLogger } from '../../../services/core/log.js';
import { createMetricsRegistry } from '../../../services/core/metrics.js';
import { sleep } from '../../../services/core/retry.js';
import { compareSegment } from '../../../services/reconciler/bisect.js';
import { postgresDialect } from '../../../services/reconciler/dialect.js';
import { buildProjection } from '../../../services/reconciler/projection.js';
import { recheckSegmentByMerge, segmentVersions } from '../../../services/reconciler/recheck.js';
import { buildReport } from '../../../services/reconciler/report.js';
import type { KeyDifference } from '../../../services/reconciler/row-diff.js';
import { hasRowVersions } from '../../../services/reconciler/segment-hash.js';
import { beginSnapshots, connectPg, endSnapshots, openReadSession } from '../../../services/reconciler/snapshot.js';
import { DEFAULT_VERIFY_OPTIONS, runVerify } from '../../../services/reconciler/verify.js';
import { createTestDatabase, type TestDatabase } from '../../support/stack.js';
import { buildSpec, exec, keys, keysWithStatus, query, verify, type SpecInput } from './fixtures.js';

let src: TestDatabase;
let tgt: TestDatabase;

beforeAll(async () => {
  [src, tgt] = await Promise.all([createTestDatabase('source', 'rc_dense_s'), createTestDatabase('target', 'rc_dense_t')]);
});

afterAll(async () => {
  await Promise.all([src?.drop(), tgt?.drop()]);
});

interface SegmentLog {
  segment: number;
  strategy: string;
  density: number;
  recheckedBySegment: boolean;
  recheckedBy: 'versions' | 'merge' | null;
}

describe('dense drift', () => {
  it('merges dense segments (measured, then predicted), bisects sparse ones, and rechecks dense segments as a whole with a slot', async () => {
    await exec(
      src.url,
      `CREATE TABLE dd (id int PRIMARY KEY, v int, note text)`,
      `INSERT INTO dd SELECT g, g, 'n' || g FROM generate_series(1, 4000) g`,
      'ANALYZE dd',
    );
    await exec(
      tgt.url,
      `CREATE TABLE dd (id int PRIMARY KEY, v int, note text)`,
      `INSERT INTO dd SELECT g, g, 'n' || g FROM generate_series(1, 4000) g`,
      // Segments of 1000 rows: the first two all differ, the third has one difference, the fourth none.
      `UPDATE dd SET note = 'drift' WHERE id <= 2000`,
      `UPDATE dd SET v = -1 WHERE id = 2500`,
      'ANALYZE dd',
    );
    const slot = 'rc_dense_slot';
    await query(src.url, `SELECT pg_create_logical_replication_slot($1, 'test_decoding')`, [slot]);
    // A caught-up CDC stream as far as verification can tell: the slot follows the WAL.
    const advancer = new pg.Client({ connectionString: src.url });
    await advancer.connect();
    let advancing = true;
    const advance = (async () => {
      while (advancing) {
        await advancer.query(`SELECT pg_replication_slot_advance($1, pg_current_wal_lsn())`, [slot]).catch(() => undefined);
        await sleep(50);
      }
    })();
    const input: SpecInput = {
      name: 'dense-slot',
      source: { database: src.url, table: 'dd' },
      target: { kind: 'other-database', database: tgt.url, table: 'dd' },
      key: ['id'],
      mapping: { v: 'v', note: 'note' },
      cdc: { slot },
      reconcile: { segmentRows: 1000, bisectionThreshold: 100, sampleKeys: 5 },
    };
    const segments: SegmentLog[] = [];
    let outcome;
    try {
      const logger = createLogger({
        name: 'test',
        level: 'debug',
        destination: {
          write: (line: string) => {
            const entry = JSON.parse(line) as { msg: string } & SegmentLog;
            if (entry.msg === 'segment verified') segments.push(entry);
          },
        },
      });
      outcome = await runVerify(
        buildSpec(input),
        { ...DEFAULT_VERIFY_OPTIONS, jobs: 1, recheckWaitMs: null },
        { logger, registry: createMetricsRegistry({ defaultMetrics: false }) },
      );
    } finally {
      advancing = false;
      await advance;
      await advancer.end();
    }
    const expected = keys(...Array.from({ length: 2000 }, (_, i) => i + 1), 2500);
    expect(await keysWithStatus(tgt.url, outcome.result.runId, 'confirmed')).toEqual(expected);
    expect(outcome.result.confirmedDrift).toBe(2001);
    expect(outcome.result.inFlight).toBe(0);

    segments.sort((a, b) => a.segment - b.segment);
    expect(segments.map((s) => s.strategy)).toEqual(['merge', 'merge', 'merge', 'bisect']);
    expect(segments[0]!.density).toBe(1);
    // The third was predicted dense, measured sparse: the fourth goes back to bisection.
    expect(segments[2]!.density).toBeLessThan(0.01);
    expect(segments.map((s) => s.recheckedBySegment)).toEqual([true, true, false, false]);
    // Nothing was written between the two looks, and the mapping is plain columns: the row versions decide.
    expect(segments.map((s) => s.recheckedBy)).toEqual(['versions', 'versions', null, null]);

    // Sample keys of the report carry the observed values even on the whole-segment path.
    const control = new pg.Client({ connectionString: tgt.url });
    await control.connect();
    const report = await buildReport(control, buildSpec(input)).finally(() => control.end());
    expect(report.samples.keys).toHaveLength(5);
    for (const s of report.samples.keys) {
      expect(s.expected?.note).toMatch(/^n\d+$/);
      expect(s.actual?.note).toBe('drift');
    }

    // The key-by-key path (no slot) finds the same keys and records the same segment checksums.
    const keyByKey = await verify(buildSpec({ ...input, name: 'dense-noslot', cdc: { slot: 'rc_dense_absent' } }));
    expect(await keysWithStatus(tgt.url, keyByKey.result.runId, 'confirmed')).toEqual(expected);
    const sums = async (runId: number) =>
      query(
        tgt.url,
        `SELECT seg_no, source_rows, target_rows, source_sum1, source_sum2, target_sum1, target_sum2 FROM parity.verify_segments WHERE run_id = $1 ORDER BY seg_no`,
        [runId],
      );
    expect(await sums(keyByKey.result.runId)).toEqual(await sums(outcome.result.runId));
    await query(src.url, `SELECT pg_drop_replication_slot($1)`, [slot]);
  });

  it('confirms a dense segment from its row versions only when no row was written since the first look', async () => {
    await exec(
      src.url,
      `CREATE TABLE dv (id int PRIMARY KEY, note text)`,
      `INSERT INTO dv SELECT g, 'n' || g FROM generate_series(1, 600) g`,
    );
    await exec(
      tgt.url,
      `CREATE TABLE dv (id int PRIMARY KEY, note text)`,
      `INSERT INTO dv SELECT g, 'drift' FROM generate_series(1, 600) g`,
    );
    const slot = 'rc_dense_versions';
    await query(src.url, `SELECT pg_create_logical_replication_slot($1, 'test_decoding')`, [slot]);
    const loaded = buildSpec({
      name: 'dense-versions',
      source: { database: src.url, table: 'dv' },
      target: { kind: 'other-database', database: tgt.url, table: 'dv' },
      key: ['id'],
      mapping: { note: 'note' },
      cdc: { slot },
    });
    const s = await openReadSession(connectPg, src.url, postgresDialect, 'dense-versions');
    const t = await openReadSession(connectPg, tgt.url, postgresDialect, 'dense-versions');
    try {
      const projection = await buildProjection(loaded.spec, s, t, postgresDialect);
      const range = { lo: null, hi: null };
      // A first look: every key differs; the row versions read in the same snapshots.
      const firstLook = async () => {
        const positions = await beginSnapshots(postgresDialect, s, t, false);
        const found: KeyDifference[] = [];
        await compareSegment(s, t, projection, range, [], {
          threshold: 25,
          factor: 16,
          dense: true,
          onDifference: async (d) => void found.push(d),
        });
        const versions = await segmentVersions({ source: s, target: t }, projection, range);
        await endSnapshots(s, t);
        await query(src.url, `SELECT pg_replication_slot_advance($1, pg_current_wal_lsn())`, [slot]);
        return { found, versions, position: positions.source };
      };
      const recheck = (look: Awaited<ReturnType<typeof firstLook>>) =>
        recheckSegmentByMerge(
          { source: s, target: t },
          projection,
          { range, bounds: [], sourcePosition: look.position, versions: look.versions },
          look.found,
          { slot, waitMs: 5000, threshold: 25, factor: 16, sampleKeys: 3, sleep, now: () => performance.now() },
        );

      // Tables carry row versions; a view does not (its segments are merged again instead).
      expect(await hasRowVersions(t, projection, projection.target)).toBe(true);
      await exec(tgt.url, `CREATE VIEW dv_view AS SELECT * FROM dv`);
      expect(await hasRowVersions(t, projection, { ...projection.target, from: '"public"."dv_view"' })).toBe(false);

      const unchanged = await firstLook();
      expect(unchanged.found).toHaveLength(600);
      const quiet = await recheck(unchanged);
      expect(quiet?.by).toBe('versions');
      expect(quiet?.decided.filter((x) => x.status === 'confirmed')).toHaveLength(600);
      // Sample values are read even though the rows were not diffed again.
      expect(quiet?.decided.find((x) => x.d.kt === '1')?.d.sourceValues).toEqual(['n1']);

      // A write on either side between the looks: the segment is diffed again and each key decides on its own.
      const changed = await firstLook();
      await exec(tgt.url, `UPDATE dv SET note = 'n7' WHERE id = 7`, `UPDATE dv SET note = 'other' WHERE id = 8`);
      const busy = await recheck(changed);
      expect(busy?.by).toBe('merge');
      const status = new Map(busy?.decided.map((x) => [x.d.kt, x.status]));
      expect(status.get('7')).toBe('resolved');
      expect(status.get('8')).toBe('suspect');
      expect([...status.values()].filter((v) => v === 'confirmed')).toHaveLength(598);

      // Same for a write on the source that leaves the row's values as they were (a new row version).
      const rewritten = await firstLook();
      await exec(src.url, `UPDATE dv SET note = note WHERE id = 9`);
      expect((await recheck(rewritten))?.by).toBe('merge');
    } finally {
      await Promise.all([s.end(), t.end()]);
      await query(src.url, `SELECT pg_drop_replication_slot($1)`, [slot]);
    }
  });
});
