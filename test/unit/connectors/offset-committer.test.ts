import { describe, expect, it } from 'vitest';
import { silentLogger } from '../../../services/core/log.js';
import { createOffsetCommitter, type CommitFn } from '../../../connectors/kafka-sink/offset-committer.js';

/** A hand-driven clock and timer queue, and a commit function whose calls settle on demand. */
function harness(intervalMs = 100) {
  let clock = 1_000;
  const timers: Array<{ at: number; fn: () => void; cancelled: boolean }> = [];
  const calls: Array<{ offsets: Parameters<CommitFn>[0]; resolve: () => void; reject: (e: Error) => void }> = [];
  const commit: CommitFn = (offsets) => new Promise<void>((resolve, reject) => calls.push({ offsets, resolve, reject }));
  const committer = createOffsetCommitter({
    intervalMs,
    logger: silentLogger(),
    now: () => clock,
    schedule: (fn, ms) => {
      const timer = { at: clock + ms, fn, cancelled: false };
      timers.push(timer);
      return () => (timer.cancelled = true);
    },
  });
  const advance = async (ms: number) => {
    clock += ms;
    for (const t of timers.splice(0)) {
      if (t.cancelled) continue;
      if (t.at <= clock) t.fn();
      else timers.push(t);
    }
    await new Promise((r) => setImmediate(r));
  };
  const settle = async (i: number, error?: Error) => {
    if (error) calls[i]?.reject(error);
    else calls[i]?.resolve();
    await new Promise((r) => setImmediate(r));
  };
  return { committer, commit, calls, advance, settle };
}

const offsetsOf = (offsets: Parameters<CommitFn>[0]) =>
  offsets.topics.flatMap(({ topic, partitions }) => partitions.map((p) => `${topic}/${p.partition}@${p.offset}`)).sort();

describe('createOffsetCommitter', () => {
  it('commits the first confirmed offset at once, then coalesces to one commit per interval with the newest offset per partition', async () => {
    const { committer, commit, calls, advance, settle } = harness(100);
    committer.confirmed({ topic: 't', partition: 0, offset: '10' }, commit);
    await advance(0);
    expect(calls.map((c) => offsetsOf(c.offsets))).toEqual([['t/0@10']]);
    await settle(0);
    committer.confirmed({ topic: 't', partition: 0, offset: '20' }, commit);
    committer.confirmed({ topic: 't', partition: 1, offset: '5' }, commit);
    committer.confirmed({ topic: 't', partition: 0, offset: '30' }, commit);
    await advance(50);
    expect(calls).toHaveLength(1);
    await advance(50);
    expect(calls.map((c) => offsetsOf(c.offsets))).toEqual([['t/0@10'], ['t/0@30', 't/1@5']]);
  });

  it('keeps one commit in flight: offsets confirmed meanwhile go in the next one', async () => {
    const { committer, commit, calls, advance, settle } = harness(100);
    committer.confirmed({ topic: 't', partition: 0, offset: '1' }, commit);
    await advance(0);
    committer.confirmed({ topic: 't', partition: 0, offset: '2' }, commit);
    await advance(500);
    expect(calls).toHaveLength(1);
    await settle(0);
    await advance(0);
    expect(calls.map((c) => offsetsOf(c.offsets))).toEqual([['t/0@1'], ['t/0@2']]);
  });

  it('a failed commit is logged and the next confirmation is committed', async () => {
    const { committer, commit, calls, advance, settle } = harness(100);
    committer.confirmed({ topic: 't', partition: 0, offset: '1' }, commit);
    await advance(0);
    await settle(0, new Error('REBALANCE_IN_PROGRESS'));
    committer.confirmed({ topic: 't', partition: 0, offset: '2' }, commit);
    await advance(100);
    expect(calls.map((c) => offsetsOf(c.offsets))).toEqual([['t/0@1'], ['t/0@2']]);
  });

  it('drops uncommitted offsets of partitions no longer assigned', async () => {
    const { committer, commit, calls, advance, settle } = harness(100);
    committer.confirmed({ topic: 't', partition: 0, offset: '1' }, commit);
    await advance(0);
    committer.confirmed({ topic: 't', partition: 0, offset: '2' }, commit);
    committer.confirmed({ topic: 't', partition: 1, offset: '7' }, commit);
    committer.retain(new Map([['t', new Set([1])]]));
    await settle(0);
    await advance(100);
    expect(calls.map((c) => offsetsOf(c.offsets))).toEqual([['t/0@1'], ['t/1@7']]);
  });

  it('flush commits what is confirmed without waiting for the interval, after the commit in flight', async () => {
    const { committer, commit, calls, advance, settle } = harness(10_000);
    committer.confirmed({ topic: 't', partition: 0, offset: '1' }, commit);
    await advance(0);
    committer.confirmed({ topic: 't', partition: 2, offset: '9' }, commit);
    let flushed = false;
    const flush = committer.flush().then(() => (flushed = true));
    await advance(0);
    expect(calls).toHaveLength(1);
    await settle(0);
    expect(calls.map((c) => offsetsOf(c.offsets))).toEqual([['t/0@1'], ['t/2@9']]);
    expect(flushed).toBe(false);
    await settle(1);
    await flush;
    expect(flushed).toBe(true);
  });

  it('flush with nothing confirmed does nothing', async () => {
    const { committer, calls } = harness();
    await committer.flush();
    expect(calls).toHaveLength(0);
  });
});
