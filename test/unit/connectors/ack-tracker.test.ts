import { describe, expect, it } from 'vitest';
import { AckTracker } from '../../../connectors/postgres-source/ack-tracker.js';

describe('AckTracker', () => {
  it('advances only over a fully acknowledged prefix of committed transactions', () => {
    const durable: bigint[] = [];
    const t = new AckTracker(100n, { onDurable: (lsn) => durable.push(lsn) });
    const a = t.begin(1, 0n);
    t.sent(a);
    t.sent(a);
    const b = t.begin(2, 0n);
    t.sent(b);
    t.commit(a, 200n);
    t.commit(b, 300n);
    // b's only event is acknowledged first: nothing may move while a is pending.
    t.acked(b);
    expect(t.durableLsn).toBe(100n);
    t.acked(a);
    expect(t.durableLsn).toBe(100n);
    t.acked(a);
    expect(t.durableLsn).toBe(300n);
    expect(durable).toEqual([200n, 300n]);
    expect(t.idle).toBe(true);
  });

  it('never acknowledges a transaction before its Commit arrived, even with every event acked', () => {
    const t = new AckTracker(0n);
    const big = t.begin(7, 0n);
    for (let i = 0; i < 1000; i++) t.sent(big);
    for (let i = 0; i < 1000; i++) t.acked(big);
    expect(t.durableLsn).toBe(0n);
    expect(t.idle).toBe(false);
    t.commit(big, 5000n);
    expect(t.durableLsn).toBe(5000n);
  });

  it('counts a run of acknowledgements at once, and refuses more than were sent', () => {
    const t = new AckTracker(0n);
    const a = t.begin(1, 0n);
    for (let i = 0; i < 5; i++) t.sent(a);
    t.commit(a, 80n);
    t.acked(a, 4);
    expect(t.durableLsn).toBe(0n);
    expect(() => t.acked(a, 2)).toThrow(/more acknowledgements than sends/);
    t.acked(a, 1);
    expect(t.durableLsn).toBe(80n);
    expect(t.idle).toBe(true);
  });

  it('treats an empty transaction (heartbeat) as durable at commit once earlier ones are', () => {
    const t = new AckTracker(0n);
    const a = t.begin(1, 0n);
    t.sent(a);
    const hb = t.begin(2, 0n);
    t.commit(hb, 50n);
    expect(t.durableLsn).toBe(0n);
    t.commit(a, 40n);
    t.acked(a);
    expect(t.durableLsn).toBe(50n);
  });

  it('stops for good before a transaction whose send failed', () => {
    const t = new AckTracker(10n);
    const a = t.begin(1, 0n);
    t.sent(a);
    t.commit(a, 20n);
    const b = t.begin(2, 0n);
    t.sent(b);
    t.commit(b, 30n);
    t.failed(a);
    t.acked(b);
    expect(t.durableLsn).toBe(10n);
    expect(t.inFlightEvents).toBe(0);
  });

  it('applies backpressure until enough acknowledgements arrive', async () => {
    const t = new AckTracker(0n);
    const a = t.begin(1, 0n);
    for (let i = 0; i < 10; i++) t.sent(a);
    let released = false;
    const wait = t.whenBelow(5).then(() => (released = true));
    for (let i = 0; i < 5; i++) t.acked(a);
    await Promise.resolve();
    expect(released).toBe(false);
    t.acked(a);
    await wait;
    expect(released).toBe(true);
  });

  it('runs whenDurable callbacks when their transaction becomes durable', () => {
    const t = new AckTracker(0n);
    const a = t.begin(1, 0n);
    t.sent(a);
    let called = 0;
    t.whenDurable(a, () => called++);
    t.commit(a, 9n);
    expect(called).toBe(0);
    t.acked(a);
    expect(called).toBe(1);
    t.whenDurable(a, () => called++);
    expect(called).toBe(2);
  });

  it('keeps order and memory bounded over many transactions', () => {
    const t = new AckTracker(0n);
    const txs = [];
    for (let i = 1; i <= 5000; i++) {
      const tx = t.begin(i, 0n);
      t.sent(tx);
      t.commit(tx, BigInt(i * 10));
      txs.push(tx);
    }
    // Acknowledge in reverse: nothing moves until the first one is acked, then everything.
    for (let i = txs.length - 1; i >= 1; i--) t.acked(txs[i]!);
    expect(t.durableLsn).toBe(0n);
    t.acked(txs[0]!);
    expect(t.durableLsn).toBe(50000n);
    expect(t.inFlightTransactions).toBe(0);
  });
});
