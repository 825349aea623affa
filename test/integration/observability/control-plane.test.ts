/**
 * The secured control plane of a running backfill (real PostgreSQL): `POST /control` needs the
 * bearer token, a Host naming the server, application/json and a small body, and a `set` inside
 * the spec's limits. Each refused request changes nothing: the run's control row (command sequence,
 * overrides) and the process's state stay as they were. The same limits hold for `parity backfill ctl`.
 */
import { request } from 'node:http';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runBackfill } from '../../../services/backfill/backfill.js';
import { createTestDatabase, type TestDatabase } from '../../support/stack.js';
import { cli, createOrders, makeSpec, waitFor } from '../backfill/fixtures.js';

const TOKEN = 'control-plane-test-token-0123456789';

function send(
  url: string,
  o: { host?: string; headers?: Record<string, string>; body: string },
): Promise<{ status: number; body: string }> {
  const u = new URL(url);
  return new Promise((resolve, reject) => {
    const req = request(
      { host: u.hostname, port: u.port, method: 'POST', path: '/control', headers: { host: o.host ?? u.host, ...o.headers } },
      (res) => {
        let body = '';
        res.on('data', (c: Buffer) => (body += c.toString()));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
      },
    );
    req.on('error', (err: NodeJS.ErrnoException) => (err.code === 'EPIPE' || err.code === 'ECONNRESET' ? undefined : reject(err)));
    req.end(o.body);
  });
}

describe('backfill control plane', () => {
  let db: TestDatabase;
  let client: pg.Client;
  const stop = new AbortController();
  let running: Promise<unknown> | undefined;

  beforeAll(async () => {
    db = await createTestDatabase('source', 'bfsec');
    await createOrders(db.url, { rows: 60_000 });
    client = new pg.Client({ connectionString: db.url });
    await client.connect();
  });

  afterAll(async () => {
    stop.abort();
    await running?.catch(() => undefined);
    await client?.end();
    await db?.drop();
  });

  const controlRow = async () =>
    (
      await client.query(
        `SELECT command_seq, batch_size_override, max_lag_seconds_override, paused, last_command FROM parity.backfill_runs ORDER BY run_id DESC LIMIT 1`,
      )
    ).rows[0];

  it('refuses without the token (401), a foreign Host (421), text/plain (415), a large body (413) and out-of-range values (400), changing nothing', async () => {
    const { spec, file } = makeSpec({
      name: 'ctl-sec',
      sourceUrl: db.url,
      backfill: '  batchSize: 300\n  minBatchSize: 100\n  maxBatchSize: 2000',
    });
    running = runBackfill({ spec, workers: 1, pollMs: 100, controlPort: 0, controlToken: TOKEN, signal: stop.signal });
    running.catch(() => undefined);
    const url = await waitFor(
      'control URL',
      async () =>
        (
          await client
            .query(`SELECT control_url FROM parity.backfill_processes WHERE control_url IS NOT NULL`)
            .catch(() => ({ rows: [] as { control_url: string }[] }))
        ).rows[0]?.control_url as string | undefined,
    );
    const json = { 'content-type': 'application/json', authorization: `Bearer ${TOKEN}` };
    const body = JSON.stringify({ command: 'abort' });
    const before = await controlRow();
    const stateBefore = ((await (await fetch(`${url}/status`)).json()) as { state: string }).state;

    const refused: [string, Promise<{ status: number; body: string }>, number][] = [
      ['no token', send(url, { headers: { 'content-type': 'application/json' }, body }), 401],
      ['wrong token', send(url, { headers: { ...json, authorization: 'Bearer not-the-token-0123456789' }, body }), 401],
      ['foreign Host', send(url, { host: 'rebind.attacker.test', headers: json, body }), 421],
      ['text/plain', send(url, { headers: { ...json, 'content-type': 'text/plain' }, body: 'abort' }), 415],
      ['oversized body', send(url, { headers: json, body: JSON.stringify({ command: 'abort', pad: 'x'.repeat(100_000) }) }), 413],
      ['batch-size above the spec', send(url, { headers: json, body: JSON.stringify({ command: 'set batch-size=1000000' }) }), 400],
      ['max-lag above the spec', send(url, { headers: json, body: JSON.stringify({ command: 'set max-lag=3600' }) }), 400],
      ['not a command object', send(url, { headers: json, body: '"abort"' }), 400],
    ];
    for (const [what, response, status] of refused) {
      const r = await response;
      expect(r.status, `${what}: ${r.body}`).toBe(status);
    }
    expect(await controlRow()).toEqual(before);
    const after = (await (await fetch(`${url}/status`)).json()) as { state: string };
    expect(after.state).toBe(stateBefore);
    expect(after.state).not.toBe('stopping');

    // The same limits through ctl: exit 2, nothing recorded.
    const ctl = cli(['backfill', 'ctl', '--spec', file, 'set', 'batch-size=5000']);
    expect((await ctl.exit).code).toBe(2);
    expect(ctl.stderr()).toMatch(/batch-size 5000 is outside the spec's limits 100\.\.2000/);
    expect(await controlRow()).toEqual(before);

    // And the accepted path: token, JSON, inside the limits.
    const ok = await send(url, { headers: json, body: JSON.stringify({ command: 'set batch-size=150' }) });
    expect(ok.status, ok.body).toBe(200);
    const changed = await controlRow();
    expect(Number(changed.command_seq)).toBe(Number(before.command_seq) + 1);
    expect(changed.batch_size_override).toBe(150);
  });

  it('`backfill run` prints its generated token once on stderr, logs never show it, and the token works', async () => {
    stop.abort();
    await running?.catch(() => undefined);
    const { file } = makeSpec({ name: 'ctl-gen', sourceUrl: db.url });
    const run = cli(['backfill', 'run', '--spec', file, '--no-progress', '--status-port', '0'], { PARITY_CONTROL_TOKEN: '' });
    try {
      const [, url, token] = await waitFor(
        'the control line',
        async () => /backfill control: POST (http:\/\/\S+)\/control with Authorization: Bearer (\S+) /.exec(run.stderr()) ?? undefined,
        120_000,
      );
      expect(token!.length).toBeGreaterThanOrEqual(40);
      const pause = await send(url!, {
        headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` },
        body: JSON.stringify({ command: 'pause' }),
      });
      expect(pause.status, pause.body).toBe(200);
      await waitFor('the pause logged', async () => /control command applied/.test(run.stderr()));
      // Printed once, on the operator's line; every log line shows it redacted at most.
      expect(run.stderr().split(token!).length - 1).toBe(1);
    } finally {
      run.kill();
      await run.exit;
    }
  });
});
