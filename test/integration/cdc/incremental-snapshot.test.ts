/**
 * `parity cdc snapshot --table T` while streaming and while the same rows are being updated: the DBLog
 * watermark chunks never emit a row older than a change already streamed (per key, seq never goes
 * back), cover every row, and replaying the topic gives exactly the table.
 */
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestDatabase, type TestDatabase, uniqueName } from '../../support/stack.js';
import { deleteTopics, readTopic, REPO_ROOT, replayState, runConnector, waitForSlotCatchUp, writeCdcSpec } from './support.js';

const ROWS = 3_000;

describe('incremental snapshot (DBLog watermarks)', () => {
  let db: TestDatabase;
  const slot = uniqueName('incr');
  const prefix = uniqueName('incr');
  const topic = `${prefix}.public.items`;

  beforeAll(async () => {
    db = await createTestDatabase('source', 'cdcincr');
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

  it('re-snapshots a table under concurrent updates without a stale row, a missing row or a lock', async () => {
    const spec = writeCdcSpec({ database: db.url, table: 'items', slot, topicPrefix: prefix, snapshot: 'never' });
    const running = await runConnector(spec);
    const c = new pg.Client({ connectionString: db.url });
    await c.connect();
    let stop = false;
    let nextId = ROWS + 1;
    const updater = (async () => {
      while (!stop) {
        // Hot keys spread over the whole range, so most chunks see changes inside their window.
        const id = 1 + Math.floor(Math.random() * ROWS);
        const r = Math.random();
        if (r < 0.85) await c.query('UPDATE items SET seq = seq + 1 WHERE id = $1', [id]);
        else if (r < 0.93) await c.query('DELETE FROM items WHERE id = $1', [id]);
        else await c.query('INSERT INTO items VALUES ($1, 1, $2)', [nextId++, 'new']);
      }
    })();
    try {
      // Asynchronously: the connector runs in this process and must keep streaming meanwhile.
      const child = spawn(
        process.execPath,
        [
          join(REPO_ROOT, 'services/cli/bin/parity.js'),
          'cdc',
          'snapshot',
          '--spec',
          spec,
          '--table',
          'items',
          '--chunk-rows',
          '200',
          '--timeout',
          '120',
        ],
        {
          cwd: REPO_ROOT,
          stdio: ['ignore', 'pipe', 'pipe'],
        },
      );
      const cli = { stdout: '', stderr: '', status: null as number | null };
      child.stdout.on('data', (d: Buffer) => (cli.stdout += d.toString()));
      child.stderr.on('data', (d: Buffer) => (cli.stderr += d.toString()));
      cli.status = await new Promise<number | null>((resolve) => child.once('exit', resolve));
      expect(cli.status, cli.stderr).toBe(0);
      const result = JSON.parse(cli.stdout.trim().split('\n').at(-1)!) as { state: string; rows: number; chunks: number };
      expect(result.state).toBe('done');
      expect(result.chunks).toBeGreaterThanOrEqual(ROWS / 200);
      stop = true;
      await updater;
      await waitForSlotCatchUp(c, slot);
      const { rows } = await c.query<{ id: number; seq: number; note: string }>('SELECT id, seq, note FROM items');
      const changes = await readTopic(topic, () => false, 60_000, 3_000);

      const reads = changes.filter((x) => x.envelope.op === 'r');
      expect(reads.every((x) => x.envelope.source.snapshot === 'incremental')).toBe(true);
      // Rows changed inside a window were left to the stream, so fewer reads than rows is expected.
      expect(reads.length).toBeGreaterThan(ROWS * 0.5);
      expect(reads.length).toBe(result.rows);

      // Per key in partition order, seq never goes back: no snapshot row is older than a streamed change.
      const lastSeq = new Map<number, number>();
      const deleted = new Set<number>();
      for (const x of changes) {
        const id = x.key!.id as number;
        if (x.envelope.op === 'd') {
          deleted.add(id);
          lastSeq.delete(id);
          continue;
        }
        expect(deleted.has(id) && x.envelope.op === 'r', `snapshot row for deleted key ${id}`).toBe(false);
        const seq = x.envelope.after!.seq as number;
        const prev = lastSeq.get(id);
        if (prev !== undefined) expect(seq, `key ${id} went back from ${prev} to ${seq} (${x.envelope.op})`).toBeGreaterThanOrEqual(prev);
        lastSeq.set(id, seq);
      }

      // Every row is covered (most of them only by the snapshot), with its latest value.
      const state = replayState(changes);
      expect(state.size).toBe(rows.length);
      for (const r of rows) expect(state.get(String(r.id)), `row ${r.id}`).toEqual({ id: r.id, seq: r.seq, note: r.note });
    } finally {
      stop = true;
      await updater.catch(() => undefined);
      await c.end();
      await running.stop();
    }
  });
});
