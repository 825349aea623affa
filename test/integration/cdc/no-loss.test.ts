/**
 * No loss under faults. Writers commit a known history (per-key sequence numbers) through every kind of
 * write the issue lists: single-row and multi-row INSERT, client-side COPY, one 200k-row transaction,
 * updates, primary-key updates, deletes and one TRUNCATE. Meanwhile `parity cdc run` (a child process)
 * is killed with SIGKILL at random moments and restarted, and the Kafka broker is restarted once.
 *
 * The checker reads the whole topic back and proves, per partition and per key:
 * - every committed change is present, and nothing else is;
 * - keeping each dedupe key's first occurrence, positions rise strictly within a partition (commit
 *   order) and each key's events equal its committed history, in order;
 * - every repeated dedupe key carries an identical event (duplicates only as exact replays);
 * - the TRUNCATE reached every partition, after everything committed before it and before everything
 *   committed after it.
 *
 * Stops and restarts the Kafka broker of the local stack (stackDown/stackUp, restarted in a finally).
 */
import { createHash } from 'node:crypto';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createChangeDecoder } from '../../../connectors/kafka-sink/serde.js';
import { createSchemaRegistry } from '../../../services/core/clients.js';
import { comparePositions, encodePosition, type Position } from '../../../services/core/lsn.js';
import { stackDown, stackUp } from '../../../services/stack/stack.js';
import { REGISTRY, stackKafka } from '../../support/security.js';
import { createTestDatabase, type TestDatabase, uniqueName } from '../../support/stack.js';
import { type CdcProcess, deleteTopics, startCdc, waitForSlotCatchUp, writeCdcSpec } from './support.js';
import { type Step, Writer } from './ledger-writer.js';

const WRITERS = 3;
const RUN_MS = Number(process.env.PARITY_NOLOSS_RUN_MS ?? 60_000);
const BIG_TX_ROWS = Number(process.env.PARITY_NOLOSS_BIG_TX ?? 200_000);
const KILLS = 6;

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

interface Seen {
  pos: string;
  position: Position;
  key: string | null;
  op: string;
  seq: number | null;
  digest: string;
}

describe('no loss under faults', () => {
  let db: TestDatabase;
  const slot = uniqueName('noloss');
  const prefix = uniqueName('noloss');
  const topic = `${prefix}.public.ledger`;

  beforeAll(async () => {
    db = await createTestDatabase('source', 'cdcloss');
    const c = new pg.Client({ connectionString: db.url });
    await c.connect();
    await c.query('CREATE TABLE ledger (id bigint PRIMARY KEY, seq int NOT NULL, writer int NOT NULL, pad text)');
    await c.end();
  });

  afterAll(async () => {
    await db?.drop();
    await deleteTopics([topic]);
  });

  it('delivers every committed change in per-key order through SIGKILLs and a broker restart', async () => {
    const spec = writeCdcSpec({ database: db.url, table: 'ledger', slot, topicPrefix: prefix, partitions: 3, heartbeatIntervalSeconds: 2 });
    const history = new Map<string, Step[]>();
    const clients: pg.Client[] = [];
    const writers: Writer[] = [];
    for (let i = 0; i < WRITERS; i++) {
      const c = new pg.Client({ connectionString: db.url });
      await c.connect();
      clients.push(c);
      writers.push(new Writer(i, c, db.url, history));
    }
    let cdc: CdcProcess = startCdc(spec);
    await cdc.streaming();
    const logs: string[] = [];
    let stop = false;
    let truncatePosition: string | null = null;
    const truncatedKeys = new Set<string>();
    let kills = 0;
    let kafkaRestarted = false;
    const started = Date.now();

    // A writer that fails ends the test with its error (chaos's pause would otherwise wait for it forever).
    const writerLoops = writers.map((w) => w.run(() => stop));
    const writersFailed = Promise.all(writerLoops).then(() => new Promise<never>(() => undefined));

    const chaos = (async () => {
      const killAt = Array.from({ length: KILLS }, (_, i) => ((i + 0.5 + Math.random() * 0.5) / (KILLS + 1)) * RUN_MS);
      const kafkaAt = RUN_MS * 0.45;
      const truncateAt = RUN_MS * 0.6;
      const bigAt = RUN_MS * 0.25;
      const events = [
        ...killAt.map((t) => ({ t, what: 'kill' as const })),
        { t: kafkaAt, what: 'kafka' as const },
        { t: truncateAt, what: 'truncate' as const },
        { t: bigAt, what: 'big' as const },
      ].sort((a, b) => a.t - b.t);
      for (const e of events) {
        const wait = e.t - (Date.now() - started);
        if (wait > 0) await sleep(wait);
        if (e.what === 'kill') {
          await cdc.kill('SIGKILL');
          logs.push(cdc.output());
          kills++;
          cdc = startCdc(spec);
        } else if (e.what === 'kafka') {
          try {
            await stackDown(['kafka']);
            await sleep(3_000);
          } finally {
            await stackUp({ services: ['kafka'] });
          }
          kafkaRestarted = true;
        } else if (e.what === 'big') {
          // Its own connection: one 200k-row transaction while the others keep writing.
          const big = new pg.Client({ connectionString: db.url });
          await big.connect();
          const w = new Writer(WRITERS, big, db.url, history);
          writers.push(w);
          await w.bigTransaction(BIG_TX_ROWS);
          await big.end();
        } else {
          await Promise.all(writers.slice(0, WRITERS).map((w) => w.pauseAtSafePoint()));
          const c = clients[0]!;
          await c.query('TRUNCATE ledger');
          const { rows } = await c.query<{ lsn: string }>('SELECT pg_current_wal_lsn()::text AS lsn');
          truncatePosition = rows[0]!.lsn;
          for (const w of writers) {
            for (const id of w.live.keys()) truncatedKeys.add(id);
            w.live.clear();
          }
          for (const w of writers.slice(0, WRITERS)) w.release();
        }
      }
    })();

    await Promise.race([chaos, writersFailed]);
    const remaining = RUN_MS - (Date.now() - started);
    if (remaining > 0) await sleep(remaining);
    stop = true;
    await Promise.all(writerLoops);
    expect(kills).toBeGreaterThanOrEqual(5);
    expect(kafkaRestarted).toBe(true);
    expect(truncatePosition).not.toBeNull();

    // Let the last connector catch up, then stop it cleanly.
    await waitForSlotCatchUp(clients[0]!, slot, 180_000);
    await cdc.kill('SIGTERM');
    logs.push(cdc.output());
    for (const c of clients) await c.end();

    const committed = [...history.values()].reduce((n, h) => n + h.length, 0);
    // Read everything back, compactly (hundreds of thousands of events).
    const decoder = createChangeDecoder(createSchemaRegistry(REGISTRY));
    const kafka = stackKafka('noloss-check');
    const consumer = kafka.consumer({ groupId: uniqueName('noloss-check'), maxWaitMs: 200 });
    const byPartition = new Map<number, Seen[]>();
    const distinct = new Set<string>();
    let failure: unknown = null;
    const stream = await consumer.consume({ topics: [topic], mode: 'earliest', autocommit: false, maxBytes: 50 * 1024 * 1024 });
    stream.on('error', (err) => (failure ??= err));
    const reading = (async () => {
      for await (const m of stream) {
        let list = byPartition.get(m.partition);
        if (!list) byPartition.set(m.partition, (list = []));
        {
          try {
            const d = await decoder.decode(topic, m);
            const pos = encodePosition(d.position);
            distinct.add(pos);
            const after = d.envelope.after as { seq?: number } | null;
            list.push({
              pos,
              position: d.position,
              key: d.key ? String(d.key.id) : null,
              op: d.envelope.op,
              seq: after?.seq ?? null,
              digest: createHash('sha1')
                .update(JSON.stringify([d.key, d.envelope.op, d.envelope.before, d.envelope.after, d.envelope.source.sequence]))
                .digest('hex'),
            });
          } catch (err) {
            failure = err;
          }
        }
      }
    })().catch((err: unknown) => (failure ??= err));
    const deadline = Date.now() + 240_000;
    // The truncate adds one distinct position.
    while (distinct.size < committed + 1 && Date.now() < deadline && !failure) await sleep(500);
    await sleep(2_000);
    await stream.close();
    await reading;
    await consumer.close(true);
    if (failure) throw failure;

    // Check per partition: first occurrences rise strictly; duplicates are identical; keys stay put.
    const kafkaHistory = new Map<string, Step[]>();
    const firstDigest = new Map<string, string>();
    const keyPartition = new Map<string, number>();
    let duplicates = 0;
    let truncates = 0;
    for (const [partition, list] of byPartition) {
      let last: Position | null = null;
      const seenHere = new Set<string>();
      for (const e of list) {
        const prior = firstDigest.get(e.pos);
        if (prior !== undefined) {
          expect(e.digest, `duplicate ${e.pos} differs from its first copy`).toBe(prior);
          if (seenHere.has(e.pos) || e.op !== 't') duplicates++;
          if (seenHere.has(e.pos)) continue;
        }
        firstDigest.set(e.pos, e.digest);
        seenHere.add(e.pos);
        if (last) expect(comparePositions(e.position, last), `partition ${partition}: ${e.pos} after a later position`).toBeGreaterThan(0);
        last = e.position;
        if (e.op === 't') {
          truncates++;
          continue;
        }
        const key = e.key!;
        const p = keyPartition.get(key);
        if (p === undefined) keyPartition.set(key, partition);
        else expect(p, `key ${key} in two partitions`).toBe(partition);
        let h = kafkaHistory.get(key);
        if (!h) kafkaHistory.set(key, (h = []));
        h.push({ op: e.op as Step['op'], seq: e.op === 'd' ? null : e.seq });
      }
    }
    // One truncate event per partition, all with the same dedupe key.
    expect(truncates).toBe(byPartition.size);
    const missing: string[] = [];
    const wrong: string[] = [];
    for (const [key, steps] of history) {
      const got = kafkaHistory.get(key);
      if (!got) missing.push(key);
      else if (JSON.stringify(got) !== JSON.stringify(steps))
        wrong.push(`${key}: committed ${JSON.stringify(steps)} kafka ${JSON.stringify(got)}`);
    }
    const extra = [...kafkaHistory.keys()].filter((k) => !history.has(k));
    const summary = {
      committed,
      distinct: distinct.size,
      duplicates,
      kills,
      keys: history.size,
      truncatedKeys: truncatedKeys.size,
      ops: writers.reduce((n, w) => n + w.ops, 0),
    };
    process.stderr.write(`no-loss: ${JSON.stringify(summary)}\n`);
    expect(missing.slice(0, 5), `${missing.length} keys missing`).toEqual([]);
    expect(wrong.slice(0, 5), `${wrong.length} keys out of order or wrong`).toEqual([]);
    expect(extra.slice(0, 5)).toEqual([]);
    expect(distinct.size).toBe(committed + 1);
    // The truncate sits after everything committed before it and before everything after, per partition.
    for (const [, list] of byPartition) {
      const t = list.find((e) => e.op === 't')!;
      for (const e of list) {
        if (e.op === 't' || !e.key) continue;
        if (truncatedKeys.has(e.key) && e.op !== 'd') expect(comparePositions(e.position, t.position)).toBeLessThan(0);
      }
    }
    // The faults really forced replays: some events were sent again (as identical duplicates).
    expect(duplicates).toBeGreaterThan(0);
    expect(logs.join('').match(/replication session started/g)!.length).toBeGreaterThanOrEqual(2);
  }, 900_000);
});
