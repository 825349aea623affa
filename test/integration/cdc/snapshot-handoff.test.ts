/**
 * Snapshot-to-stream handoff under concurrent writes: the initial snapshot (read inside the slot's
 * exported snapshot, in key chunks) plus the stream from the slot's consistent point give every row
 * exactly once: per key, the snapshot read and the streamed changes form one gap-free, duplicate-free
 * sequence (seq counts every write), and replaying the topic gives exactly the table.
 */
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestDatabase, type TestDatabase, uniqueName } from '../../support/stack.js';
import { deleteTopics, readTopic, replayState, runConnector, startCdc, waitForSlotCatchUp, writeCdcSpec } from './support.js';
import { cdcStatus, formatStatus } from '../../../services/cdc/status.js';
import { loadSpec } from '../../../services/core/spec.js';

const ROWS = 20_000;

describe('initial snapshot handoff', () => {
  let db: TestDatabase;
  const slot = uniqueName('handoff');
  const prefix = uniqueName('handoff');
  const topic = `${prefix}.public.items`;

  beforeAll(async () => {
    db = await createTestDatabase('source', 'cdchand');
    const c = new pg.Client({ connectionString: db.url });
    await c.connect();
    await c.query('CREATE TABLE items (id int PRIMARY KEY, seq int NOT NULL, note text)');
    await c.query(`INSERT INTO items SELECT g, 1, md5(g::text) FROM generate_series(1, ${ROWS}) g`);
    await c.end();
  });

  afterAll(async () => {
    await db?.drop();
    await deleteTopics([topic]);
  });

  it('emits every row exactly once across snapshot and stream while writers run', async () => {
    const spec = writeCdcSpec({ database: db.url, table: 'items', slot, topicPrefix: prefix, snapshotChunkRows: 500 });
    const writer = new pg.Client({ connectionString: db.url });
    await writer.connect();
    let stop = false;
    let nextId = ROWS + 1;
    let writes = 0;
    // Writers start before the slot exists and keep going through the snapshot and after it.
    const loop = (async () => {
      while (!stop) {
        const r = Math.random();
        const id = 1 + Math.floor(Math.random() * ROWS);
        if (r < 0.7) await writer.query('UPDATE items SET seq = seq + 1 WHERE id = $1', [id]);
        else if (r < 0.85) await writer.query('INSERT INTO items VALUES ($1, 1, $2)', [nextId++, 'new']);
        else await writer.query('DELETE FROM items WHERE id = $1', [id]);
        writes++;
      }
    })();
    await new Promise((r) => setTimeout(r, 500));
    const running = await runConnector(spec);
    // The snapshot is over once streaming started; keep writing a little longer.
    await new Promise((r) => setTimeout(r, 3_000));
    stop = true;
    await loop;
    await waitForSlotCatchUp(writer, slot);
    // Finished inside the exported snapshot: `cdc status` says so.
    const status = await cdcStatus(writer, writer, loadSpec(spec).spec, { sampleMs: 10 });
    expect(status.initialSnapshot).toEqual([
      expect.objectContaining({ tableName: 'public.items', state: 'done', done: true, via: 'initial', continuedBy: null }),
    ]);
    const { rows } = await writer.query<{ id: number; seq: number; note: string }>('SELECT id, seq, note FROM items');
    await writer.end();
    await running.stop();

    const changes = await readTopic(topic, () => false, 60_000, 3_000);
    const snapshotReads = changes.filter((c) => c.envelope.op === 'r');
    expect(snapshotReads.length).toBeGreaterThan(ROWS * 0.8);
    expect(writes).toBeGreaterThan(100);

    // No duplicate: every position once, at most one snapshot read per key.
    const positions = new Set(changes.map((c) => `${c.position.commitLsn}:${c.position.ordinal}`));
    expect(positions.size).toBe(changes.length);
    const readKeys = new Set<number>();
    for (const c of snapshotReads) {
      const id = c.key!.id as number;
      expect(readKeys.has(id), `key ${id} read twice`).toBe(false);
      readKeys.add(id);
    }

    // Per key, in partition order: the seq values form one consecutive sequence (no gap, no repeat).
    const perKey = new Map<number, { op: string; seq: number | null }[]>();
    for (const c of changes) {
      const id = c.key!.id as number;
      let list = perKey.get(id);
      if (!list) perKey.set(id, (list = []));
      list.push({ op: c.envelope.op, seq: (c.envelope.after?.seq as number | undefined) ?? null });
    }
    for (const [id, events] of perKey) {
      let expected: number | null = null;
      for (const e of events) {
        if (e.op === 'd') {
          expected = null;
          continue;
        }
        if (e.op === 'c') expect(e.seq, `key ${id} insert`).toBe(1);
        else if (expected !== null) expect(e.seq, `key ${id} after ${expected}: ${JSON.stringify(events)}`).toBe(expected + 1);
        else expect(e.op === 'r' || e.op === 'u', `key ${id}: ${JSON.stringify(events)}`).toBe(true);
        expected = e.seq;
      }
    }

    // Replaying the topic gives exactly the table.
    const state = replayState(changes);
    expect(state.size).toBe(rows.length);
    for (const r of rows) expect(state.get(String(r.id)), `row ${r.id}`).toEqual({ id: r.id, seq: r.seq, note: r.note });
  });

  it('resumes a snapshot killed half-way from its checkpoint: every row, at most one chunk read twice', async () => {
    const c = new pg.Client({ connectionString: db.url });
    await c.connect();
    // Qualified: the role is named parity, and the first test created the parity control schema here.
    await c.query('CREATE TABLE public.bulk (id int PRIMARY KEY, seq int NOT NULL, note text)');
    await c.query(`INSERT INTO public.bulk SELECT g, 1, md5(g::text) FROM generate_series(1, 100000) g`);
    const resumeSlot = uniqueName('resume');
    const resumePrefix = uniqueName('resume');
    const bulkTopic = `${resumePrefix}.public.bulk`;
    const spec = writeCdcSpec({ database: db.url, table: 'bulk', slot: resumeSlot, topicPrefix: resumePrefix, snapshotChunkRows: 1000 });
    try {
      let cdc = startCdc(spec);
      // Kill it once some chunks are checkpointed and the table is not done.
      let checkpointed = 0;
      for (let i = 0; i < 600 && checkpointed === 0; i++) {
        const r = await c
          .query(`SELECT rows, state FROM parity.cdc_snapshot_tables WHERE slot = $1`, [resumeSlot])
          .catch(() => ({ rows: [] as { rows: string; state: string }[] }));
        const row = r.rows[0];
        if (row && row.state === 'running' && Number(row.rows) > 0) checkpointed = Number(row.rows);
        else await new Promise((res) => setTimeout(res, 50));
      }
      expect(checkpointed, cdc.output()).toBeGreaterThan(0);
      await cdc.kill('SIGKILL');
      await c.query('UPDATE public.bulk SET seq = seq + 1 WHERE id % 1000 = 7');
      cdc = startCdc(spec);
      await cdc.streaming();
      // The rest is read by watermark chunks while streaming; wait for its request to finish.
      for (let i = 0; i < 600; i++) {
        const r = await c.query(`SELECT state FROM parity.cdc_snapshot_requests WHERE slot = $1`, [resumeSlot]);
        if (r.rows[0]?.state === 'done') break;
        await new Promise((res) => setTimeout(res, 200));
      }
      await waitForSlotCatchUp(c, resumeSlot);
      await cdc.kill('SIGTERM');
      const handed = await c.query(`SELECT state, rows FROM parity.cdc_snapshot_tables WHERE slot = $1`, [resumeSlot]);
      expect(handed.rows[0].state).toBe('handed-over');
      // `cdc status` tells the truth whichever way the initial snapshot finished: here, incrementally.
      const status = await cdcStatus(c, c, loadSpec(spec).spec, { sampleMs: 10 });
      expect(status.initialSnapshot).toEqual([
        expect.objectContaining({
          tableName: 'public.bulk',
          state: 'handed-over',
          done: true,
          via: 'incremental',
          continuedBy: expect.objectContaining({ state: 'done' }),
        }),
      ]);
      expect(formatStatus(status)).toMatch(
        /initial snapshot public\.bulk: done \(interrupted after \d+ rows, finished by incremental snapshot #\d+: done, \d+ rows\)/,
      );
      const { rows } = await c.query<{ id: number; seq: number; note: string }>('SELECT id, seq, note FROM public.bulk');
      const changes = await readTopic(bulkTopic, () => false, 120_000, 3_000);
      const reads = new Map<number, number>();
      for (const x of changes) if (x.envelope.op === 'r') reads.set(x.key!.id as number, (reads.get(x.key!.id as number) ?? 0) + 1);
      const twice = [...reads.values()].filter((n) => n > 1).length;
      process.stderr.write(
        `resume: checkpointed ${checkpointed} rows before SIGKILL, ${twice} rows read twice, ${changes.length} events\n`,
      );
      // What was emitted but not yet checkpointed is read again: bounded by the chunks in flight.
      expect(twice).toBeLessThanOrEqual(5 * 1000);
      const state = replayState(changes);
      expect(state.size).toBe(rows.length);
      for (const r of rows) expect(state.get(String(r.id))).toEqual({ id: r.id, seq: r.seq, note: r.note });
    } finally {
      await c.end();
      await deleteTopics([bulkTopic]);
    }
  });
});
