/**
 * Fault test: the leader of a partition the CDC is writing to dies mid-stream.
 *
 * The test starts its own three-node KRaft cluster (own state dir and ports; replication factor 3,
 * min.insync.replicas 2), runs `parity cdc run` on a three-partition topic under the no-loss test's
 * writers, kills the leader broker of a partition with SIGKILL while changes flow, keeps writing,
 * then restarts that node. Whichever producer the CDC uses, it must:
 * - lose nothing: every committed change is on the topic, and nothing else;
 * - keep per-key order: keeping each dedupe key's first copy, positions rise within a partition and
 *   each key's events equal its committed history;
 * - duplicate only as exact replays: a repeated (commit LSN, ordinal) carries an identical event;
 * - recover by itself: the same CDC process (never restarted) moves the slot past every write made
 *   after the kill.
 *
 * PostgreSQL and the registry are the shared stack's; only Kafka is the test's own, stopped at the end.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Admin } from '@platformatic/kafka';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { encodePosition } from '../../../services/core/lsn.js';
import { kafkaNodes, stackConfig, type StackConfig } from '../../../services/stack/config.js';
import { stopKafkaNode } from '../../../services/stack/kafka-cluster.js';
import { stackDown, stackStatus, stackUp } from '../../../services/stack/stack.js';
import { createTestDatabase, type TestDatabase, uniqueName } from '../../support/stack.js';
import { checkLedger, ledgerEvent, type Step, Writer } from '../cdc/ledger-writer.js';
import { type CdcProcess, readTopic, startCdc, waitForSlotCatchUp, writeCdcSpec } from '../cdc/support.js';

const WRITERS = 3;
const PARTITIONS = 3;
/** Writing before the kill, while the leader is gone, and after it is back. */
const BEFORE_MS = Number(process.env.PARITY_FAILOVER_BEFORE_MS ?? 15_000);
const OUTAGE_MS = Number(process.env.PARITY_FAILOVER_OUTAGE_MS ?? 20_000);
const AFTER_MS = Number(process.env.PARITY_FAILOVER_AFTER_MS ?? 10_000);
/** The cluster's first broker port; brokers use it and the next two, controllers the three after. */
const KAFKA_PORT = process.env.PARITY_FAILOVER_KAFKA_PORT ?? '29392';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** The leader node id of each partition of `topic`, as the cluster reports it now. */
async function leaders(brokers: string[], topic: string): Promise<number[]> {
  const admin = new Admin({ clientId: 'failover-test', bootstrapBrokers: brokers, retries: 3, retryDelay: 500 });
  try {
    const metadata = await admin.metadata({ topics: [topic], forceUpdate: true });
    const partitions = metadata.topics.get(topic)?.partitions ?? [];
    return partitions.map((p) => p.leader);
  } finally {
    await admin.close().catch(() => undefined);
  }
}

describe('Kafka leader failover under CDC', () => {
  const stateDir = mkdtempSync(join(tmpdir(), 'parity-failover-'));
  const env: NodeJS.ProcessEnv = { ...process.env, PARITY_STATE_DIR: stateDir, PARITY_KAFKA_PORT: KAFKA_PORT };
  delete env.PARITY_KAFKA_CONTROLLER_PORT;
  let config: StackConfig;
  let brokers: string[];
  let db: TestDatabase;
  const slot = uniqueName('failover');
  const prefix = uniqueName('failover');
  const topic = `${prefix}.public.ledger`;

  beforeAll(async () => {
    config = stackConfig(env, { brokers: 3 });
    await stackUp({ services: ['kafka'] }, config);
    brokers = kafkaNodes(config).map((n) => `127.0.0.1:${n.port}`);
    db = await createTestDatabase('source', 'failover');
    const c = new pg.Client({ connectionString: db.url });
    await c.connect();
    await c.query('CREATE TABLE ledger (id bigint PRIMARY KEY, seq int NOT NULL, writer int NOT NULL, pad text)');
    await c.end();
  }, 300_000);

  afterAll(async () => {
    await db?.drop();
    if (config) await stackDown(['kafka'], config);
    rmSync(stateDir, { recursive: true, force: true });
  }, 120_000);

  it('loses nothing, keeps per-key order and recovers by itself when a partition leader is killed', async () => {
    const status = (await stackStatus(config)).find((s) => s.service === 'kafka')!;
    expect(status.nodes?.filter((n) => n.running)).toHaveLength(3);

    const spec = writeCdcSpec({
      database: db.url,
      table: 'ledger',
      slot,
      topicPrefix: prefix,
      partitions: PARTITIONS,
      heartbeatIntervalSeconds: 2,
      brokers,
    });
    const history = new Map<string, Step[]>();
    const clients: pg.Client[] = [];
    const writers: Writer[] = [];
    for (let i = 0; i < WRITERS; i++) {
      const c = new pg.Client({ connectionString: db.url });
      await c.connect();
      clients.push(c);
      writers.push(new Writer(i, c, db.url, history));
    }
    const cdc: CdcProcess = startCdc(spec);
    let stop = false;
    let loops: Promise<void>[] = [];
    let victim = -1;
    try {
      await cdc.streaming();
      loops = writers.map((w) => w.run(() => stop));
      await sleep(BEFORE_MS);

      // Mid-stream: kill the leader of partition 0 (every partition receives changes: keys are spread by hash).
      const before = await leaders(brokers, topic);
      expect(before).toHaveLength(PARTITIONS);
      victim = before[0]!;
      expect(victim).toBeGreaterThan(0);
      const opsAtKill = writers.reduce((n, w) => n + w.ops, 0);
      expect(await stopKafkaNode(config, victim, 'SIGKILL')).toBe(true);

      // Writes go on while the partition moves to another replica of its in-sync set (the controller
      // fences the dead broker after its session times out).
      const killedAt = Date.now();
      const survivors = brokers.filter((_, i) => i + 1 !== victim);
      let newLeader = victim;
      while (Date.now() - killedAt < 60_000) {
        newLeader = (await leaders(survivors, topic).catch(() => [victim]))[0] ?? victim;
        if (newLeader > 0 && newLeader !== victim) break;
        await sleep(500);
      }
      expect(newLeader, 'partition 0 has a new leader').not.toBe(victim);
      expect(newLeader).toBeGreaterThan(0);
      const left = OUTAGE_MS - (Date.now() - killedAt);
      if (left > 0) await sleep(left);
      expect(writers.reduce((n, w) => n + w.ops, 0)).toBeGreaterThan(opsAtKill);

      // The node comes back (stack up starts only the missing node and waits for the whole cluster).
      await stackUp({ services: ['kafka'] }, config);
      await sleep(AFTER_MS);
      stop = true;
      await Promise.all(loops);

      // Recovered by itself: the same process, never restarted, confirms every write made since the kill.
      await waitForSlotCatchUp(clients[0]!, slot, 240_000);
      expect(cdc.child.exitCode, `parity cdc run exited:\n${cdc.output().slice(-4000)}`).toBeNull();
      expect(cdc.child.signalCode).toBeNull();
    } finally {
      stop = true;
      await Promise.allSettled(loops);
      await cdc.kill('SIGTERM');
      for (const c of clients) await c.end().catch(() => undefined);
    }

    const committed = [...history.values()].reduce((n, h) => n + h.length, 0);
    const changes = await readTopic(
      topic,
      (seen) => new Set(seen.map((c) => encodePosition(c.position))).size >= committed,
      240_000,
      Infinity,
      brokers,
    );
    const verdict = checkLedger(history, changes.map(ledgerEvent));
    process.stderr.write(
      `leader-failover: ${JSON.stringify({ victim, committed: verdict.committed, distinct: verdict.distinct, duplicates: verdict.duplicates, keys: history.size })}\n`,
    );
    expect(verdict.violations.slice(0, 5), `${verdict.violations.length} order/duplicate violations`).toEqual([]);
    expect(verdict.missing.slice(0, 5), `${verdict.missing.length} keys missing`).toEqual([]);
    expect(verdict.wrong.slice(0, 5), `${verdict.wrong.length} keys out of order or wrong`).toEqual([]);
    expect(verdict.extra.slice(0, 5)).toEqual([]);
    expect(verdict.distinct).toBe(committed);
  }, 900_000);
});
