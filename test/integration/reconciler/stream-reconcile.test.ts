/**
 * Stream verification against real Kafka, the schema registry and both PostgreSQL clusters. The
 * change events are encoded with the CDC's own serde from the source rows, so the reconciler reads
 * exactly what `parity cdc run` would produce; the test stages each verdict: matches, a target that
 * catches up within the retry window, a change superseded by a newer source state, persisting
 * mismatches (updated, missing, deleted-but-present), an undecodable message, and in-event checks
 * for a same-table migration. Then a second consumer group repairs what stays wrong.
 */
import { ensureTopics, readTopic } from '../../../connectors/kafka-sink/admin.js';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  createChangeDecoder,
  createChangeEncoder,
  createRegistryClient,
  encodeChange,
  tableShape,
  type ColumnShape,
  type TableEncoder,
} from '../../../connectors/kafka-sink/serde.js';
import type { ChangeEnvelope, Op, Row } from '../../../services/core/change-event.js';
import { createSchemaRegistry, type KafkaClients } from '../../../services/core/clients.js';
import { latestEvidence } from '../../../services/core/control.js';
import { silentLogger } from '../../../services/core/log.js';
import { createMetricsRegistry } from '../../../services/core/metrics.js';
import { sleep } from '../../../services/core/retry.js';
import type { LoadedSpec } from '../../../services/core/spec.js';
import { controlDatabase, targetDatabase } from '../../../services/core/spec.js';
import { ensureReconcilerTables } from '../../../services/reconciler/control-store.js';
import { postgresDialect } from '../../../services/reconciler/dialect.js';
import { reconcilerMetrics } from '../../../services/reconciler/metrics.js';
import { buildProjection } from '../../../services/reconciler/projection.js';
import { connectPg, openReadSession, openWriteSession } from '../../../services/reconciler/snapshot.js';
import { createStreamReconciler, mismatchTopic, type CheckResult } from '../../../services/reconciler/stream-reconcile.js';
import { deadLetterTopic } from '../../../services/core/topics.js';
import { REGISTRY, stackKafka } from '../../support/security.js';
import { createTestDatabase, uniqueName, type TestDatabase } from '../../support/stack.js';
import { buildSpec, exec, query, verify } from './fixtures.js';

let src: TestDatabase;
let tgt: TestDatabase;
let kafka: KafkaClients;
const topics: string[] = [];

beforeAll(async () => {
  [src, tgt] = await Promise.all([createTestDatabase('source', 'rc_st_s'), createTestDatabase('target', 'rc_st_t')]);
  kafka = stackKafka('rc-stream-test');
});

afterAll(async () => {
  const admin = kafka.admin();
  await admin.deleteTopics({ topics }).catch(() => undefined);
  await admin.close();
  await Promise.all([src?.drop(), tgt?.drop()]);
});

let lsn = 0x5000000n;

function envelope(op: Op, before: Row | null, after: Row | null, table: string, commitLsn: bigint): ChangeEnvelope {
  return {
    before,
    after,
    op,
    ts_ms: Date.now(),
    source: {
      version: 'test',
      connector: 'postgresql',
      name: 'test',
      db: 'src',
      schema: 'public',
      table,
      lsn: Number(commitLsn),
      txId: 1,
      ts_ms: Date.now(),
      ts_us: Date.now() * 1000,
      snapshot: 'false',
      sequence: '',
    },
  };
}

/** Source rows exactly as the serde carries them (numbers for int4, text for numeric and timestamptz in UTC). */
async function sourceRows(table: string, ids: number[]): Promise<Map<number, Row>> {
  const c = new pg.Client({ connectionString: src.url });
  await c.connect();
  try {
    await c.query(`SET TimeZone TO 'UTC'`);
    const types = (await c.query(`SELECT * FROM ${table} LIMIT 0`)).fields;
    const asText = (
      await c.query(`SELECT ${types.map((f) => `${pg.escapeIdentifier(f.name)}::text`).join(', ')} FROM ${table} WHERE id = ANY($1)`, [ids])
    ).rows;
    return new Map(asText.map((r) => [Number(r.id), { ...r, id: Number(r.id) }]));
  } finally {
    await c.end();
  }
}

async function produce(
  encoder: TableEncoder,
  topic: string,
  events: Array<{ op: Op; key: Row; before: Row | null; after: Row | null }>,
  extra: Array<{ value: Buffer }> = [],
): Promise<void> {
  const producer = kafka.producer();
  try {
    const messages = events.map((e) => {
      lsn += 0x100n;
      const m = encodeChange(
        encoder,
        {
          key: e.key,
          envelope: envelope(e.op, e.before, e.after, encoder.shape.table, lsn),
          position: { commitLsn: lsn, ordinal: 0 },
          txId: 1,
          commitTimeUs: BigInt(Date.now()) * 1000n,
        },
        1,
      );
      return { topic, partition: 0, ...(m.key ? { key: m.key } : {}), ...(m.value ? { value: m.value } : {}), headers: m.headers };
    });
    await producer.send({ messages: [...messages, ...extra.map((x) => ({ topic, partition: 0, value: x.value }))] });
  } finally {
    await producer.close();
  }
}

async function readAll(
  topic: string,
  expected: number,
): Promise<Array<{ key: string | null; value: string; headers: Record<string, string> }>> {
  let out: Array<{ key: string | null; value: string; headers: Record<string, string> }> = [];
  // Everything written so far, read again until `expected` messages are there (or 15 s passed).
  for (let i = 0; i < 150; i++) {
    const read: typeof out = [];
    await readTopic(kafka, topic, (message) => {
      read.push({
        key: message.key?.toString() ?? null,
        value: message.value?.toString('latin1') ?? '',
        headers: Object.fromEntries([...message.headers].map(([k, v]) => [k, v.toString()])),
      });
    });
    out = read;
    if (out.length >= expected) break;
    await sleep(100);
  }
  return out;
}

async function runReconciler(
  loaded: LoadedSpec,
  groupId: string,
  until: (all: CheckResult[]) => boolean,
  repair: { apply: boolean; token: bigint | null } | null = null,
) {
  const { spec } = loaded;
  const source = await openReadSession(connectPg, spec.source.database, postgresDialect, 'test');
  const target = await openReadSession(connectPg, targetDatabase(spec), postgresDialect, 'test');
  const control = await openWriteSession(connectPg, controlDatabase(spec), postgresDialect, 'test');
  const repairTarget = await openWriteSession(connectPg, targetDatabase(spec), postgresDialect, 'test');
  const all: CheckResult[] = [];
  try {
    await ensureReconcilerTables(control, spec.control.schema);
    const projection = await buildProjection(spec, source, target, postgresDialect);
    const r = createStreamReconciler(
      {
        loaded,
        kafka,
        decoder: createChangeDecoder(createSchemaRegistry(REGISTRY)),
        projection,
        source,
        target,
        control,
        repairTarget,
        logger: silentLogger(),
        metrics: reconcilerMetrics(createMetricsRegistry({ defaultMetrics: false })),
      },
      { groupId, fromBeginning: true, repair, pollMs: 100, onChecked: (results) => all.push(...results) },
    );
    await r.start();
    for (let i = 0; i < 300 && !until(all); i++) await sleep(100);
    await r.stop();
    return { all, status: r.status() };
  } finally {
    await Promise.all([source.end(), target.end(), control.end(), repairTarget.end()]);
  }
}

describe('stream verification (parity reconcile)', () => {
  it('checks every change against the target, publishes mismatches and dead letters, then repairs', async () => {
    const prefix = uniqueName('rcst');
    const table = 'orders';
    const topic = `${prefix}.public.${table}`;
    topics.push(topic, mismatchTopic(prefix), deadLetterTopic(prefix, 'reconciler', `st-${prefix}`));
    await ensureTopics(kafka, [topic], 1);

    await exec(
      src.url,
      `CREATE TABLE ${table} (id int4 PRIMARY KEY, total numeric(10,2), note text, updated_at timestamptz)`,
      `INSERT INTO ${table} SELECT g, g * 1.25, 'n' || g, timestamptz '2024-05-01 12:00:00+00' + g * interval '1.0005 s' FROM generate_series(1, 30) g`,
    );
    await exec(
      tgt.url,
      `CREATE TABLE ${table} (id int4 PRIMARY KEY, total_minor int8, note text, updated_at timestamp(3))`,
      `INSERT INTO ${table} SELECT g, g * 125, 'n' || g, (timestamptz '2024-05-01 12:00:00+00' + g * interval '1.0005 s') AT TIME ZONE 'UTC' FROM generate_series(1, 30) g`,
      `UPDATE ${table} SET note = 'wrong' WHERE id = 21`,
      `DELETE FROM ${table} WHERE id IN (22, 26)`,
      `UPDATE ${table} SET note = 'lagging' WHERE id = 23`,
      `UPDATE ${table} SET note = 'v0' WHERE id = 24`,
    );
    const loaded = buildSpec({
      name: `st-${prefix}`,
      source: { database: src.url, table },
      target: { kind: 'other-database', database: tgt.url, table },
      key: ['id'],
      mapping: { total_minor: '(total * 100)::bigint', note: 'note', updated_at: 'updated_at' },
      normalize: { timestampRounding: 'round' },
      reconcile: { retryWindowMs: 2000 },
      cdc: { topicPrefix: prefix },
    });
    const shape = tableShape(
      prefix,
      'public',
      table,
      [
        { name: 'id', kind: 'int', pgType: 'int4' },
        { name: 'total', kind: 'string', pgType: 'numeric' },
        { name: 'note', kind: 'string', pgType: 'text' },
        { name: 'updated_at', kind: 'string', pgType: 'timestamptz' },
      ] as ColumnShape[],
      ['id'],
    );
    const encoder = await createChangeEncoder({
      registry: createRegistryClient(REGISTRY),
      format: 'avro',
    }).forTable(shape);

    const rows = await sourceRows(
      table,
      Array.from({ length: 30 }, (_, i) => i + 1),
    );
    const key = (id: number): Row => ({ id });
    const events: Array<{ op: Op; key: Row; before: Row | null; after: Row | null }> = [];
    for (let id = 1; id <= 24; id++) events.push({ op: 'u', key: key(id), before: null, after: rows.get(id)! });
    // 24: the event's state is older than the source's: a newer change is on its way.
    await exec(src.url, `UPDATE ${table} SET note = 'v2' WHERE id = 24`);
    // 25: deleted in the source, still in the target. 26: deleted on both sides.
    await exec(src.url, `DELETE FROM ${table} WHERE id IN (25, 26)`);
    events.push(
      { op: 'd', key: key(25), before: rows.get(25)!, after: null },
      { op: 'd', key: key(26), before: rows.get(26)!, after: null },
    );
    await produce(encoder, topic, events, [{ value: Buffer.from('not a registry-framed message') }]);
    // 23 catches up within the retry window.
    setTimeout(() => void exec(tgt.url, `UPDATE ${table} SET note = 'n23' WHERE id = 23`), 600);

    const first = await runReconciler(loaded, uniqueName('rc-group'), (all) => all.length >= 26);
    const verdicts = Object.fromEntries(first.all.map((r) => [r.key[0], r.verdict]));
    const expected: Record<string, string> = {};
    for (let id = 1; id <= 26; id++) expected[String(id)] = 'match';
    Object.assign(expected, { '21': 'mismatch', '22': 'mismatch', '24': 'superseded', '25': 'mismatch' });
    expect(verdicts).toEqual(expected);
    expect(first.status).toMatchObject({ mismatches: 3, deadLetters: 1 });

    const mismatches = (await readAll(mismatchTopic(prefix), 3)).map((m) => JSON.parse(m.value) as Record<string, unknown>);
    expect(mismatches.map((m) => [m.key, m.kind])).toEqual([
      [{ id: '21' }, 'updated'],
      [{ id: '22' }, 'exclusive-source'],
      [{ id: '25' }, 'exclusive-target'],
    ]);
    expect(mismatches[0]).toMatchObject({
      old: { id: 21, note: 'n21', total: '26.25' },
      expected: { note: 'n21', total_minor: '2625', updated_at: '2024-05-01 12:00:21.011' },
      actual: { note: 'wrong', total_minor: '2625' },
      position: { commitLsn: expect.stringMatching(/^0\/5[0-9A-F]+$/), ordinal: 0 },
      targetPosition: expect.stringMatching(/^[0-9A-F]+\/[0-9A-F]+$/),
    });
    expect(mismatches[1]!.actual).toBeNull();
    expect(mismatches[2]!.expected).toBeNull();
    const dead = await readAll(deadLetterTopic(prefix, 'reconciler', `st-${prefix}`), 1);
    expect(dead).toHaveLength(1);
    expect(dead[0]!.headers['parity.dlq.origin']).toMatch(new RegExp(`^${topic}/0/\\d+$`));
    expect(dead[0]!.headers['parity.dlq.reason']).toContain('magic byte');
    expect(dead[0]!.value).toBe('not a registry-framed message');
    const recorded = await query<{ n: number }>(
      tgt.url,
      `SELECT count(*)::int AS n FROM parity.reconcile_mismatches WHERE migration = $1`,
      [loaded.spec.name],
    );
    expect(recorded[0]!.n).toBe(3);
    const c = new pg.Client({ connectionString: tgt.url });
    await c.connect();
    const evidence = await latestEvidence(c, 'parity', loaded.spec.name, 'reconcile');
    await c.end();
    expect(evidence).toMatchObject({ passed: false, value: { mismatches: 3, deadLetters: 1 } });

    // The newer change of 24 arrives; a second group re-reads everything and repairs what stays wrong.
    const rows24 = await sourceRows(table, [24]);
    await produce(encoder, topic, [{ op: 'u', key: key(24), before: null, after: rows24.get(24)! }]);
    // Without --fence-token the reconciler acquires one (and logs that it fenced out the previous holder).
    const second = await runReconciler(
      loaded,
      uniqueName('rc-group'),
      (all) => new Set(all.map((r) => r.key[0])).size >= 26 && all.some((r) => r.key[0] === '24' && r.verdict === 'mismatch'),
      { apply: true, token: null },
    );
    expect(second.status.repaired).toBe(4);
    const clean = await verify(loaded);
    expect(clean.result.confirmedDrift).toBe(0);
  });

  it('same-table: the new columns are checked inside the event', async () => {
    const prefix = uniqueName('rcsame');
    const table = 'invoices';
    const topic = `${prefix}.public.${table}`;
    topics.push(topic, mismatchTopic(prefix), deadLetterTopic(prefix, 'reconciler', `same-${prefix}`));
    await ensureTopics(kafka, [topic], 1);
    await exec(
      src.url,
      `CREATE TABLE ${table} (id int4 PRIMARY KEY, amount int4, amount_minor int8, currency text)`,
      `INSERT INTO ${table} SELECT g, g, g * 100, 'USD' FROM generate_series(1, 5) g`,
      `UPDATE ${table} SET amount_minor = 1 WHERE id = 4`,
    );
    const loaded = buildSpec({
      name: `same-${prefix}`,
      source: { database: src.url, table },
      target: { kind: 'same-table' },
      key: ['id'],
      mapping: { amount_minor: 'amount::bigint * 100', currency: `'USD'::text` },
      reconcile: { retryWindowMs: 300 },
      cdc: { topicPrefix: prefix },
    });
    const shape = tableShape(
      prefix,
      'public',
      table,
      [
        { name: 'id', kind: 'int', pgType: 'int4' },
        { name: 'amount', kind: 'int', pgType: 'int4' },
        { name: 'amount_minor', kind: 'int8', pgType: 'int8' },
        { name: 'currency', kind: 'string', pgType: 'text' },
      ] as ColumnShape[],
      ['id'],
    );
    const encoder = await createChangeEncoder({
      registry: createRegistryClient(REGISTRY),
      format: 'avro',
    }).forTable(shape);
    const row = (id: number, minor: number): Row => ({ id, amount: id, amount_minor: String(minor), currency: 'USD' });
    await produce(encoder, topic, [
      { op: 'c', key: { id: 1 }, before: null, after: row(1, 100) },
      { op: 'u', key: { id: 2 }, before: null, after: row(2, 200) },
      { op: 'u', key: { id: 3 }, before: null, after: row(3, 300) },
      { op: 'u', key: { id: 4 }, before: null, after: row(4, 1) },
      { op: 'd', key: { id: 5 }, before: row(5, 500), after: null },
    ]);
    const { all } = await runReconciler(loaded, uniqueName('rc-group'), (r) => r.length >= 5);
    expect(Object.fromEntries(all.map((r) => [r.key[0], r.verdict]))).toEqual({
      '1': 'match',
      '2': 'match',
      '3': 'match',
      '4': 'mismatch',
      '5': 'skipped',
    });
  });
});
