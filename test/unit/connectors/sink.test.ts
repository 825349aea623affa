import { describe, expect, it } from 'vitest';
import type { Kafka } from 'kafkajs';
import { KafkaSink } from '../../../connectors/kafka-sink/sink.js';
import { silentLogger } from '../../../services/core/log.js';
import type { EncodedChange } from '../../../connectors/kafka-sink/serde.js';

interface Call {
  lane: number;
  partitions: number[];
  values: string[];
  resolve: () => void;
  reject: (err: unknown) => void;
}

/** A fake kafkajs whose sendBatch calls stay pending until the test settles them. */
function fakeKafka() {
  const calls: Call[] = [];
  let producers = 0;
  const kafka = {
    producer: () => {
      const lane = producers++;
      return {
        connect: async () => undefined,
        disconnect: async () => undefined,
        sendBatch: ({ topicMessages }: { topicMessages: { messages: { partition: number; value: Buffer }[] }[] }) =>
          new Promise<void>((resolve, reject) => {
            const messages = topicMessages.flatMap((t) => t.messages);
            calls.push({ lane, partitions: messages.map((m) => m.partition), values: messages.map((m) => m.value.toString()), resolve, reject });
          }),
      };
    },
  } as unknown as Kafka;
  return { kafka, calls };
}

const msg = (partition: number, value: string): EncodedChange => ({ topic: 't', partition, key: null, value: Buffer.from(value), headers: {} });
const tick = () => new Promise((r) => setTimeout(r, 0));

describe('KafkaSink', () => {
  it('keeps one request in flight per lane, each partition in one lane, acks in order', async () => {
    const { kafka, calls } = fakeKafka();
    const sink = new KafkaSink({ kafka, logger: silentLogger(), lanes: 2, maxBatchMessages: 2 });
    await sink.connect();
    const acked: string[] = [];
    for (const [p, v] of [[0, 'a1'], [1, 'b1'], [0, 'a2'], [0, 'a3'], [2, 'c1'], [1, 'b2']] as const) {
      sink.send(msg(p, v), { onAck: () => acked.push(v), onFail: () => acked.push(`fail ${v}`) });
    }
    // Lane 0 owns partitions 0 and 2, lane 1 partition 1: one request each so far.
    expect(calls.map((c) => [c.lane, c.values])).toEqual([
      [0, ['a1']],
      [1, ['b1']],
    ]);
    calls[1]!.resolve();
    await tick();
    expect(calls[2]).toMatchObject({ lane: 1, values: ['b2'] });
    calls[0]!.resolve();
    await tick();
    expect(calls[3]).toMatchObject({ lane: 0, values: ['a2', 'a3'] });
    calls[3]!.resolve();
    await tick();
    expect(calls[4]).toMatchObject({ lane: 0, values: ['c1'] });
    calls[2]!.resolve();
    calls[4]!.resolve();
    await sink.drained();
    expect(acked.filter((v) => v.startsWith('a'))).toEqual(['a1', 'a2', 'a3']);
    expect(acked).toHaveLength(6);
  });

  it('fails the batch, everything queued in every lane and every later send once a batch fails', async () => {
    const { kafka, calls } = fakeKafka();
    const sink = new KafkaSink({ kafka, logger: silentLogger(), lanes: 2, maxBatchMessages: 1 });
    await sink.connect();
    const outcome = new Map<string, string>();
    const track = (v: string) => ({ onAck: () => outcome.set(v, 'ack'), onFail: () => outcome.set(v, 'fail') });
    sink.send(msg(0, 'a1'), track('a1'));
    sink.send(msg(0, 'a2'), track('a2'));
    sink.send(msg(1, 'b1'), track('b1'));
    sink.send(msg(1, 'b2'), track('b2'));
    calls[0]!.reject(Object.assign(new Error('broker down'), { type: 'NETWORK' }));
    await tick();
    expect(outcome.get('a1')).toBe('fail');
    expect(outcome.get('a2')).toBe('fail');
    // b1 was already in flight: its own outcome stands; b2 never gets sent.
    expect(outcome.get('b2')).toBe('fail');
    calls[1]!.resolve();
    await tick();
    expect(outcome.get('b1')).toBe('ack');
    expect(calls).toHaveLength(2);
    sink.send(msg(1, 'b3'), track('b3'));
    expect(outcome.get('b3')).toBe('fail');
    expect((sink.failure as Error).message).toMatch(/Kafka did not acknowledge a batch of 1 events/);
    await sink.drained();
  });

  it('keeps batches under the byte limit and explains an oversized event', async () => {
    const { kafka, calls } = fakeKafka();
    const sink = new KafkaSink({ kafka, logger: silentLogger(), lanes: 1, maxBatchBytes: 1000 });
    await sink.connect();
    const big = 'x'.repeat(700);
    let failure: unknown = null;
    sink.send(msg(0, big), { onAck: () => undefined, onFail: (e) => (failure = e) });
    sink.send(msg(0, big), { onAck: () => undefined, onFail: () => undefined });
    expect(calls[0]!.values).toHaveLength(1);
    calls[0]!.reject(Object.assign(new Error('too large'), { type: 'MESSAGE_TOO_LARGE' }));
    await tick();
    expect((failure as { hint?: string }).hint).toMatch(/max.message.bytes/);
  });
});
