/**
 * Asynchronous batch commits against a real server crash. Killing the backfill process (the SIGKILL
 * test) never loses a commit the server acknowledged; a crash of the server can lose the last
 * asynchronously committed transactions. This test gives the backfill a PostgreSQL cluster of its
 * own (initdb, its own folder and port; the shared stack is never touched), with a WAL writer that
 * flushes rarely, crashes it twice (`pg_ctl stop -m immediate`: no shutdown checkpoint, unflushed WAL
 * is gone) in the middle of the run, recovers it, and runs the backfill to completion: the end state
 * must be exact, the checkpoint log must tile every range, and at most one batch may be redone
 * (a lost batch is lost together with its checkpoint, so it is walked once, after the crash).
 */
import { mkdtempSync, rmSync, chownSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { spawnSync } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import pg from 'pg';
import { STACK } from '../../support/stack.js';
import { auditLog, cli, createOrders, makeSpec, mismatches, waitFor } from './fixtures.js';

const ROWS = 200_000;
const asRoot = process.getuid?.() === 0;

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address() as { port: number };
      srv.close(() => resolve(port));
    });
  });
}

/** Runs a PostgreSQL binary, as the postgres OS user when we are root (the server refuses root). */
function pgBin(name: string, args: string[]): { status: number; out: string } {
  const bin = join(STACK.PARITY_PG_BINDIR, name);
  const r = asRoot
    ? spawnSync('runuser', ['-u', 'postgres', '--', bin, ...args], { encoding: 'utf8' })
    : spawnSync(bin, args, { encoding: 'utf8' });
  return { status: r.status ?? 1, out: `${r.stdout ?? ''}${r.stderr ?? ''}` };
}

describe('asynchronous batch commits survive a server crash exactly', () => {
  let dir: string;
  let port: number;
  let url: string;
  let client: pg.Client | undefined;

  const start = () => {
    const r = pgBin('pg_ctl', [
      '-D',
      join(dir, 'data'),
      '-l',
      join(dir, 'server.log'),
      '-w',
      '-t',
      '60',
      '-o',
      `-p ${port} -k ${dir} -c listen_addresses=127.0.0.1 -c max_connections=50 -c wal_writer_delay=10s -c wal_writer_flush_after=1GB`,
      'start',
    ]);
    if (r.status !== 0) throw new Error(`pg_ctl start failed: ${r.out}`);
  };

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'parity-crash-'));
    if (asRoot) {
      const id = (flag: string) => Number(spawnSync('id', [flag, 'postgres'], { encoding: 'utf8' }).stdout.trim());
      chownSync(dir, id('-u'), id('-g'));
    }
    port = await freePort();
    const init = pgBin('initdb', ['-D', join(dir, 'data'), '-U', 'postgres', '--auth=trust', '--encoding=UTF8', '--locale=C.UTF-8']);
    if (init.status !== 0) throw new Error(`initdb failed: ${init.out}`);
    start();
    url = `postgres://postgres@127.0.0.1:${port}/postgres`;
    await createOrders(url, { rows: ROWS });
  }, 120_000);

  afterAll(async () => {
    await client?.end().catch(() => undefined);
    if (dir) {
      pgBin('pg_ctl', ['-D', join(dir, 'data'), '-m', 'immediate', '-w', 'stop']);
      rmSync(dir, { recursive: true, force: true });
    }
  });

  const rowsDone = async (c: pg.Client): Promise<number> =>
    Number(
      (await c.query(`SELECT coalesce(sum(rows_done), 0)::int AS n FROM parity.backfill_ranges`).catch(() => ({ rows: [{ n: 0 }] })))
        .rows[0].n,
    );

  it('two crashes mid-run: exact end state, no gap, at most one batch redone', async () => {
    const { file } = makeSpec({
      name: 'crash-async',
      sourceUrl: url,
      backfill:
        '  batchSize: 500\n  minBatchSize: 500\n  maxBatchSize: 500\n  throttle:\n    pace: { enabled: false, asynchronousCommit: true }',
    });
    const crashes: { seenBefore: number; afterRecovery: number }[] = [];
    for (let i = 0; i < 2; i++) {
      const observer = new pg.Client({ connectionString: url });
      await observer.connect();
      const before = await rowsDone(observer);
      const run = cli(['backfill', 'run', '--spec', file, '--workers', '2', '--no-progress']);
      await waitFor('progress before the crash', async () => (await rowsDone(observer)) > before + 5_000, 120_000);
      // What the batches committed as far as any session can see, then the crash.
      const seenBefore = await rowsDone(observer);
      const stop = pgBin('pg_ctl', ['-D', join(dir, 'data'), '-m', 'immediate', '-w', 'stop']);
      expect(stop.status, stop.out).toBe(0);
      await observer.end().catch(() => undefined);
      run.kill();
      await run.exit;
      start();
      const recovered = new pg.Client({ connectionString: url });
      await recovered.connect();
      crashes.push({ seenBefore, afterRecovery: await rowsDone(recovered) });
      await recovered.end();
    }
    client = new pg.Client({ connectionString: url });
    await client.connect();
    expect(await rowsDone(client), 'the crashes must interrupt an unfinished run').toBeLessThan(ROWS);

    const final = cli(['backfill', 'run', '--spec', file, '--workers', '2', '--no-progress']);
    const exit = await final.exit;
    expect(exit.code, final.stderr()).toBe(0);
    expect(final.stderr()).toMatch(/"asynchronousCommit":true/);

    expect(await mismatches(client)).toBe(0);
    const { rows: runs } = await client.query(`SELECT run_id, state FROM parity.backfill_runs`);
    expect(runs).toHaveLength(1);
    expect(runs[0].state).toBe('completed');
    const audit = await auditLog(client, Number(runs[0].run_id));
    expect(audit.gaps).toBe(0);
    expect(audit.redone).toBeLessThanOrEqual(1);
    expect(audit.rows).toBe(ROWS);
    // Informative: how much acknowledged-but-unflushed work each crash took with it (batch and checkpoint together).
    console.log(`crash-async: ${JSON.stringify(crashes)}; batches ${audit.batches}, redone ${audit.redone}`);
  }, 400_000);
});
