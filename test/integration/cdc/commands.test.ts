/**
 * The CLI surface: bad input is refused before anything is created (exit 2, naming what is wrong and
 * what to do); `--set-replica-identity-full` fixes a table that cannot be published; `status` reports a
 * missing slot and a running one; `drop-slot` refuses an active slot unless --force; `snapshot` refuses
 * a table the spec does not capture.
 */
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestDatabase, type TestDatabase, uniqueName } from '../../support/stack.js';
import { deleteTopics, REPO_ROOT, startCdc, writeCdcSpec } from './support.js';

function parity(args: string[]): Promise<{ status: number | null; stdout: string; stderr: string }> {
  const child = spawn(process.execPath, [join(REPO_ROOT, 'services/cli/bin/parity.js'), ...args], {
    cwd: REPO_ROOT,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const out = { status: null as number | null, stdout: '', stderr: '' };
  child.stdout.on('data', (d: Buffer) => (out.stdout += d.toString()));
  child.stderr.on('data', (d: Buffer) => (out.stderr += d.toString()));
  return new Promise((resolve) => child.once('exit', (code) => resolve({ ...out, status: code })));
}

describe('parity cdc commands', () => {
  let db: TestDatabase;
  let c: pg.Client;
  const prefix = uniqueName('cmd');

  beforeAll(async () => {
    db = await createTestDatabase('source', 'cdccmd');
    c = new pg.Client({ connectionString: db.url });
    await c.connect();
    await c.query('CREATE TABLE keyed (id int PRIMARY KEY, v text)');
    await c.query('CREATE TABLE keyless (id int, v text)');
  });

  afterAll(async () => {
    await c?.end();
    await db?.drop();
    await deleteTopics([`${prefix}.public.keyed`, `${prefix}.public.keyless`]);
  });

  it('refuses bad input before creating anything', async () => {
    const badSlot = writeCdcSpec({ database: db.url, table: 'keyed', slot: 'has-dash', topicPrefix: prefix });
    let r = await parity(['cdc', 'run', '--spec', badSlot]);
    expect(r.status).toBe(2);
    // Refused by spec validation now, before any connection (17.6): the field and what to write.
    expect(r.stderr).toMatch(/PARITY_SPEC_INVALID: .*spec\.yaml is not a valid migration spec/);
    expect(r.stderr).toMatch(/cdc\.slot \(line \d+\): replication slot names may contain only lower-case letters, digits and "_"/);
    expect(r.stderr).toMatch(/cdc\.publication \(line \d+\): a publication name is a plain identifier/);

    const missing = writeCdcSpec({ database: db.url, table: 'nope', slot: uniqueName('cmd'), topicPrefix: prefix });
    r = await parity(['cdc', 'run', '--spec', missing]);
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(/table public.nope does not exist on the source/);

    const slot = uniqueName('cmd');
    const keyless = writeCdcSpec({ database: db.url, table: 'keyless', slot, topicPrefix: prefix });
    r = await parity(['cdc', 'run', '--spec', keyless]);
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(/public.keyless has REPLICA IDENTITY DEFAULT and no primary key/);
    expect(r.stderr).toMatch(/--set-replica-identity-full/);
    const left = await c.query(
      `SELECT (SELECT count(*) FROM pg_replication_slots WHERE slot_name = $1)::int AS slots,
                                       (SELECT count(*) FROM pg_publication WHERE pubname = $2)::int AS pubs`,
      [slot, `${slot}_pub`],
    );
    expect(left.rows[0]).toEqual({ slots: 0, pubs: 0 });

    r = await parity(['cdc', 'run', '--spec', keyless, '--bogus']);
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(/usage: parity cdc run/);
  });

  it('sets REPLICA IDENTITY FULL when asked, reports status, and guards drop-slot', async () => {
    const slot = uniqueName('cmd');
    const spec = writeCdcSpec({ database: db.url, table: 'keyless', slot, topicPrefix: prefix, snapshot: 'never' });
    let r = await parity(['cdc', 'status', '--spec', spec]);
    expect(r.status).toBe(0);
    expect(r.stdout).toMatch(new RegExp(`slot ${slot}: missing`));

    const cdc = startCdc(spec, ['--set-replica-identity-full']);
    try {
      await cdc.streaming();
      const ri = await c.query(`SELECT relreplident FROM pg_class WHERE relname = 'keyless'`);
      expect(ri.rows[0].relreplident).toBe('f');
      await c.query(`INSERT INTO keyless VALUES (1, 'x')`);
      // Wait for a status report from the running connector.
      let status: {
        exists: boolean;
        active: boolean;
        lagBytes: number;
        lagSeconds: number | null;
        connector: { state: string; fresh: boolean } | null;
      } | null = null;
      for (let i = 0; i < 20; i++) {
        r = await parity(['cdc', 'status', '--spec', spec, '--json']);
        expect(r.status).toBe(0);
        status = JSON.parse(r.stdout);
        if (status!.connector?.fresh && status!.connector.state === 'streaming') break;
        await new Promise((res) => setTimeout(res, 1000));
      }
      expect(status).toMatchObject({ exists: true, active: true, connector: { state: 'streaming', fresh: true } });
      expect(typeof status!.lagBytes).toBe('number');
      expect(status!.lagSeconds).not.toBeNull();

      r = await parity(['cdc', 'snapshot', '--spec', spec, '--table', 'public.keyed']);
      expect(r.status).toBe(2);
      expect(r.stderr).toMatch(/public.keyed is not captured by this spec/);

      r = await parity(['cdc', 'drop-slot', '--spec', spec]);
      expect(r.status).toBe(1);
      expect(r.stderr).toMatch(/PARITY_SLOT_IN_USE: replication slot .* is in use/);
      expect(r.stderr).toMatch(/--force/);
    } finally {
      await cdc.kill('SIGTERM');
    }
    expect(cdc.output()).toMatch(/"msg":"stopped"/);
    r = await parity(['cdc', 'drop-slot', '--spec', spec]);
    expect(r.status).toBe(0);
    expect(r.stdout).toMatch(new RegExp(`slot ${slot}: dropped; publication ${slot}_pub: dropped`));
    const gone = await c.query('SELECT count(*)::int AS n FROM pg_replication_slots WHERE slot_name = $1', [slot]);
    expect(gone.rows[0].n).toBe(0);
  });
});
