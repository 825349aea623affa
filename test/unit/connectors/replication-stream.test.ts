/**
 * The keepalive path of ReplicationStream, driven by a fake replication service that behaves as
 * pg-logical-replication 2.5.0 does with flow control (test/integration/cdc/replication-library.test.ts
 * checks that the real library still does): each XLogData is parsed as it arrives and queued, handlers
 * run one at a time, keepalives are emitted at once. A keepalive that arrives while a transaction is
 * received but not yet handled must not confirm past it.
 */
import { describe, expect, it } from 'vitest';
import type { PgoutputPlugin } from 'pg-logical-replication';
import {
  ReplicationStream,
  type PgoutputMessage,
  type ReplicationService,
} from '../../../connectors/postgres-source/replication-stream.js';
import { silentLogger } from '../../../services/core/log.js';
import { formatLsn } from '../../../services/core/lsn.js';

type DataListener = (lsn: string, message: PgoutputMessage) => Promise<void>;
type HeartbeatListener = (lsn: string, timestamp: number, shouldRespond: boolean) => void;

/** pg-logical-replication's flow-controlled service, reduced to what ReplicationStream uses. */
class FakeService implements ReplicationService {
  acknowledged: string[] = [];
  private data: DataListener[] = [];
  private heartbeat: HeartbeatListener[] = [];
  private plugin: PgoutputPlugin | null = null;
  private queue: { lsn: string; message: PgoutputMessage }[] = [];
  private processing = false;
  private ended: () => void = () => undefined;

  on(event: 'data' | 'heartbeat' | 'error', listener: never): this {
    if (event === 'data') this.data.push(listener);
    if (event === 'heartbeat') this.heartbeat.push(listener);
    return this;
  }

  subscribe(plugin: PgoutputPlugin): Promise<unknown> {
    this.plugin = plugin;
    return new Promise((resolve) => (this.ended = () => resolve(undefined)));
  }

  async acknowledge(lsn: string): Promise<boolean> {
    this.acknowledged.push(lsn);
    return true;
  }

  /** A connection whose close never completes (a paused socket that never reads the server's end). */
  hangOnStop = false;

  async stop(): Promise<unknown> {
    if (this.hangOnStop) return new Promise(() => undefined);
    this.ended();
    return this;
  }

  /** An XLogData message arrives: parsed now, handled when the ones before it are. */
  receive(lsn: bigint, buffer: Buffer): void {
    this.queue.push({ lsn: formatLsn(lsn), message: this.plugin!.parse(buffer) as PgoutputMessage });
    if (this.processing) return;
    this.processing = true;
    void (async () => {
      while (this.queue.length > 0) {
        const next = this.queue.shift()!;
        for (const l of this.data) await l(next.lsn, next.message);
      }
      this.processing = false;
    })();
  }

  /** A primary keepalive arrives: emitted at once, whatever is queued. */
  keepalive(walEnd: bigint, shouldRespond: boolean): void {
    for (const l of this.heartbeat) l(formatLsn(walEnd), Date.now(), shouldRespond);
  }
}

function int64(n: bigint): Buffer {
  const b = Buffer.alloc(8);
  b.writeBigUInt64BE(n);
  return b;
}
const begin = (commitLsn: bigint, xid: number) =>
  Buffer.concat([Buffer.from('B'), int64(commitLsn), int64(0n), Buffer.from([0, 0, 0, xid])]);
const commit = (commitLsn: bigint, endLsn: bigint) =>
  Buffer.concat([Buffer.from('C'), Buffer.from([0]), int64(commitLsn), int64(endLsn), int64(0n)]);
const tick = () => new Promise((r) => setTimeout(r, 60));

describe('ReplicationStream keepalives', () => {
  it('never confirms a keepalive WAL end past a transaction received but not yet handled', async () => {
    const fake = new FakeService();
    let release: () => void = () => undefined;
    const blocked = new Promise<void>((r) => (release = r));
    const handled: string[] = [];
    const stream = new ReplicationStream({
      connectionString: 'postgres://unused',
      slot: 's',
      publication: 'p',
      logger: silentLogger(),
      // The first message's handler waits (Kafka is slow); the tracker has not seen the transaction yet.
      onMessage: async (message) => {
        if (handled.length === 0) await blocked;
        handled.push(message.tag);
      },
      idle: () => true,
      ackDelayMs: 5,
      statusIntervalMs: 60_000,
      service: () => fake,
    });
    const running = stream.run();

    fake.receive(0x1000n, begin(0x1100n, 7));
    fake.receive(0x1100n, commit(0x1100n, 0x1200n));
    // The server's keepalive (WAL end far past the transaction) arrives while it is queued.
    fake.keepalive(0x5000n, true);
    await tick();
    expect(fake.acknowledged).toEqual([]);
    expect(stream.takeMaxQueued()).toBe(2);

    // Handled and durable: the commit's end is reported (minus one: the library adds one).
    release();
    await tick();
    expect(handled).toEqual(['begin', 'commit']);
    stream.durableAdvanced(0x1200n);
    await tick();
    expect(fake.acknowledged).toEqual([formatLsn(0x11ffn)]);

    // Nothing received is unhandled now: an idle keepalive moves the slot to the WAL end.
    fake.keepalive(0x5000n, true);
    await tick();
    expect(fake.acknowledged.at(-1)).toBe(formatLsn(0x4fffn));
    expect(stream.reportedLsn).toBe(0x5000n);

    await stream.stop();
    await running;
  });

  it('a stop whose connection never closes ends the session after the close timeout', async () => {
    const fake = new FakeService();
    fake.hangOnStop = true;
    const stream = new ReplicationStream({
      connectionString: 'postgres://unused',
      slot: 's',
      publication: 'p',
      logger: silentLogger(),
      onMessage: async () => undefined,
      idle: () => true,
      closeTimeoutMs: 100,
      service: () => fake,
    });
    const running = stream.run();
    const started = Date.now();
    await stream.stop();
    await running;
    expect(Date.now() - started).toBeLessThan(5_000);
  });
});
