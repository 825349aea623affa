/**
 * The consumer loop's lag arithmetic and the `/readyz` answer the consumer-group services build on
 * it (connectors/kafka-sink/consumer-loop.ts).
 */
import { describe, expect, test } from 'vitest';
import { computeLag, consumerReadiness } from '../../../connectors/kafka-sink/consumer-loop.js';

const ends = (entries: Array<[number, bigint]>) => new Map(entries);

describe('computeLag', () => {
  test('is null before the end offsets were read, with the held age still measured', () => {
    const lag = computeLag([0], null, new Map([[0, 5n]]), new Map([[0, 1_000n]]), 3_500);
    expect(lag).toEqual({ messages: null, oldestSeconds: 2.5, partitions: 1 });
  });

  test('sums end offset minus next position over the owned partitions only', () => {
    const lag = computeLag(
      [0, 2],
      ends([
        [0, 100n],
        [1, 900n],
        [2, 50n],
      ]),
      new Map([
        [0, 40n],
        [1, 0n],
        [2, 50n],
      ]),
      new Map(),
      0,
    );
    expect(lag.messages).toBe(60);
    expect(lag.partitions).toBe(2);
    expect(lag.oldestSeconds).toBe(0);
  });

  test('a partition without a known position, or with a stale end offset below it, counts 0', () => {
    const lag = computeLag(
      [0, 1],
      ends([
        [0, 10n],
        [1, 10n],
      ]),
      new Map([[1, 12n]]),
      new Map(),
      0,
    );
    expect(lag.messages).toBe(0);
  });

  test('the oldest held message of an owned partition gives the age', () => {
    const lag = computeLag(
      [0, 1],
      ends([]),
      new Map(),
      new Map([
        [0, 9_000n],
        [1, 4_000n],
        [7, 1n],
      ]),
      10_000,
    );
    expect(lag.oldestSeconds).toBe(6);
  });
});

describe('consumerReadiness', () => {
  const lag = (messages: number | null) => ({ messages, oldestSeconds: 0, partitions: 1 });

  test('consuming within the limit is ready', () => {
    expect(consumerReadiness({ status: 'consuming' }, lag(10), 10)).toEqual({ ok: true, status: 'consuming' });
    expect(consumerReadiness({ status: 'consuming' }, lag(0), 0)).toEqual({ ok: true, status: 'consuming' });
  });

  test('a lag not measured yet is not ready (a member starting on a backlog must not look caught up)', () => {
    expect(consumerReadiness({ status: 'consuming' }, lag(null), 10)).toEqual({
      ok: false,
      status: 'starting',
      reason: "lag not measured yet: the partitions' end offsets have not been read",
    });
  });

  test('above the limit is not ready, with the numbers in the reason', () => {
    expect(consumerReadiness({ status: 'consuming' }, lag(11), 10)).toEqual({
      ok: false,
      status: 'lagging',
      reason: 'lagging: 11 messages behind (max 10)',
    });
  });

  test('paused or starting is not ready, whatever the lag, with its own reason', () => {
    expect(consumerReadiness({ status: 'paused', reason: 'Redis write: connection refused' }, lag(0), 10)).toEqual({
      ok: false,
      status: 'paused',
      reason: 'Redis write: connection refused',
    });
    expect(consumerReadiness({ status: 'starting' }, lag(null), 10)).toEqual({
      ok: false,
      status: 'starting',
      reason: 'not consuming (starting)',
    });
  });
});
