/**
 * The contract parity relies on from pg-logical-replication (connectors/postgres-source/
 * replication-stream.ts uses only its public API). This test fails when an upgrade changes any of it:
 * - the exact version installed is the one package.json pins (2.5.0);
 * - with flowControl, each XLogData is parsed by the plugin before its 'data' event, and the 'data'
 *   handlers run one at a time (the next waits until the previous promise resolves);
 * - a 'heartbeat' event carries the server's WAL end as "X/Y" text (a keepalive, here requested by a
 *   ping), and by then every message received before it has been parsed;
 * - acknowledge(lsn) reports lsn + 1 as flushed, so passing end - 1 confirms exactly `end`.
 */
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import { LogicalReplicationService, PgoutputPlugin, type Pgoutput } from 'pg-logical-replication';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { formatLsn, parseLsn } from '../../../services/core/lsn.js';
import { createTestDatabase, uniqueName, type TestDatabase } from '../../support/stack.js';

const ROOT = fileURLToPath(new URL('../../../', import.meta.url));
const PINNED = '2.5.0';

class CountingPlugin extends PgoutputPlugin {
  parsed = 0;
  override parse(buffer: Buffer): Pgoutput.Message {
    const message = super.parse(buffer) as Pgoutput.Message;
    this.parsed++;
    return message;
  }
}

const until = async (what: string, fn: () => Promise<boolean> | boolean, timeoutMs = 20_000) => {
  const end = Date.now() + timeoutMs;
  while (!(await fn())) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
};

describe('pg-logical-replication contract', () => {
  let db: TestDatabase;
  let client: pg.Client;
  const slot = uniqueName('lib');

  beforeAll(async () => {
    db = await createTestDatabase('source', 'replib');
    client = new pg.Client({ connectionString: db.url });
    await client.connect();
    await client.query('CREATE TABLE t (id int PRIMARY KEY, v text)');
    await client.query(`CREATE PUBLICATION ${slot} FOR TABLE t`);
    await client.query(`SELECT pg_create_logical_replication_slot($1, 'pgoutput')`, [slot]);
  });

  afterAll(async () => {
    await client?.query(`SELECT pg_drop_replication_slot($1)`, [slot]).catch(() => undefined);
    await client?.end();
    await db?.drop();
  });

  it('is the pinned version', () => {
    const installed = JSON.parse(readFileSync(`${ROOT}node_modules/pg-logical-replication/package.json`, 'utf8')) as { version: string };
    const declared = (JSON.parse(readFileSync(`${ROOT}package.json`, 'utf8')) as { dependencies: Record<string, string> }).dependencies[
      'pg-logical-replication'
    ];
    expect(declared).toBe(PINNED);
    expect(installed.version).toBe(PINNED);
  });

  it('parses before emitting, awaits handlers one at a time, emits keepalives, and acknowledges lsn + 1', async () => {
    const plugin = new CountingPlugin({ protoVersion: 1, publicationNames: [slot] });
    const service = new LogicalReplicationService(
      { connectionString: db.url },
      { acknowledge: { auto: false, timeoutSeconds: 0 }, flowControl: { enabled: true } },
    );
    const events: { tag: string; lsn: string; parsedBefore: number }[] = [];
    let active = 0;
    let maxActive = 0;
    let commitEnd = 0n;
    service.on('data', async (lsn: string, message: Pgoutput.Message) => {
      active++;
      maxActive = Math.max(maxActive, active);
      events.push({ tag: message.tag, lsn, parsedBefore: plugin.parsed });
      await new Promise((r) => setTimeout(r, 5));
      if (message.tag === 'commit') commitEnd = message.commitEndLsn ? parseLsn(message.commitEndLsn) : 0n;
      active--;
    });
    const heartbeats: { lsn: string; parsed: number; received: number }[] = [];
    service.on('heartbeat', (lsn: string) => {
      heartbeats.push({ lsn, parsed: plugin.parsed, received: events.length });
    });
    const errors: unknown[] = [];
    service.on('error', (err: unknown) => {
      errors.push(err);
    });
    const subscribed = service.subscribe(plugin, slot, '0/00000000').catch((err: unknown) => errors.push(err));
    try {
      for (let i = 0; i < 3; i++) await client.query('INSERT INTO t VALUES ($1, $2), ($3, $4)', [2 * i, 'a', 2 * i + 1, 'b']);
      await until('three commits', () => events.filter((e) => e.tag === 'commit').length === 3);

      // Each message was parsed before its handler ran; never two handlers at once.
      events.forEach((e, i) => expect(e.parsedBefore).toBeGreaterThanOrEqual(i + 1));
      expect(maxActive).toBe(1);
      expect(events.map((e) => e.tag)).toEqual([
        'begin',
        'relation',
        'insert',
        'insert',
        'commit',
        'begin',
        'insert',
        'insert',
        'commit',
        'begin',
        'insert',
        'insert',
        'commit',
      ]);
      expect(events[0]!.lsn).toMatch(/^[0-9A-F]+\/[0-9A-F]+$/);

      // A ping makes the server send a keepalive: the 'heartbeat' event, with the WAL end as text.
      await until('the last handler', () => active === 0);
      const earlier = heartbeats.length;
      await service.acknowledge('0/0', true);
      await until('a keepalive', () => heartbeats.length > earlier);
      const keepalive = heartbeats[earlier]!;
      expect(keepalive.lsn).toMatch(/^[0-9A-F]+\/[0-9A-F]+$/);
      expect(parseLsn(keepalive.lsn)).toBeGreaterThanOrEqual(commitEnd);
      expect(keepalive.parsed).toBe(events.length);

      // acknowledge(end - 1) confirms exactly `end` (the library reports lsn + 1).
      expect(commitEnd).toBeGreaterThan(0n);
      expect(await service.acknowledge(formatLsn(commitEnd - 1n))).toBe(true);
      await until('the slot to move', async () => {
        const { rows } = await client.query<{ lsn: string }>(
          `SELECT confirmed_flush_lsn::text AS lsn FROM pg_replication_slots WHERE slot_name = $1`,
          [slot],
        );
        return parseLsn(rows[0]!.lsn) === commitEnd;
      });
      expect(errors).toEqual([]);
    } finally {
      await service.stop();
      await subscribed;
    }
  });
});
