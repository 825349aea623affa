import { describe, expect, it } from 'vitest';
import type { KafkaClients } from '../../../services/core/clients.js';
import { KafkaSink, type ProduceTransport, type SinkMetadata, ackInRuns } from '../../../connectors/kafka-sink/sink.js';
import { ProduceError } from '../../../connectors/kafka-sink/produce-client.js';
import { silentLogger } from '../../../services/core/log.js';
import type { EncodedChange } from '../../../connectors/kafka-sink/serde.js';

interface Call {
  nodeId: number;
  /** "topic/partition:value" in request order. */
  values: string[];
  resolve: () => void;
  reject: (err: unknown) => void;
}

/** A transport whose produce calls stay pending until the test settles them; leaders: partition p on broker p % 2. */
function fakeKafka(topics: Record<string, number> = { t: 3 }) {
  const calls: Call[] = [];
  const inFlight = new Map<number, number>();
  const lookups: string[][] = [];
  const transport: ProduceTransport = {
    connect: async () => undefined,
    close: () => undefined,
    inFlight: (nodeId) => inFlight.get(nodeId) ?? 0,
    produce: (nodeId, batches) => {
      inFlight.set(nodeId, (inFlight.get(nodeId) ?? 0) + 1);
      const done = () => inFlight.set(nodeId, inFlight.get(nodeId)! - 1);
      return new Promise<void>((resolve, reject) => {
        const values = batches.flatMap((b) => b.records.map((r) => `${b.topic}/${b.partition}:${r.value!.toString()}`));
        calls.push({ nodeId, values, resolve: () => (done(), resolve()), reject: (e) => (done(), reject(e)) });
      });
    },
  };
  const metadata: SinkMetadata = {
    brokers: async () => [
      { nodeId: 0, host: '127.0.0.1', port: 1 },
      { nodeId: 1, host: '127.0.0.1', port: 2 },
    ],
    leaders: async (names) => {
      lookups.push(names);
      return new Map(names.filter((n) => topics[n] !== undefined).map((n) => [n, Array.from({ length: topics[n]! }, (_, p) => p % 2)]));
    },
  };
  return { kafka: {} as KafkaClients, transport, metadata, calls, lookups };
}

const msg = (partition: number, value: string, topic = 't'): EncodedChange => ({
  topic,
  partition,
  key: null,
  value: Buffer.from(value),
  headers: { 'parity.ordinal': '1' },
});
const tick = () => new Promise((r) => setTimeout(r, 0));

describe('KafkaSink', () => {
  it('pipelines up to maxInFlight requests per leader, keeps each partition in queue order, acks per request', async () => {
    const f = fakeKafka();
    const sink = new KafkaSink({ ...f, logger: silentLogger(), maxInFlight: 2, maxBatchMessages: 2 });
    await sink.connect(['t']);
    const acked: string[] = [];
    for (const [p, v] of [
      [0, 'a1'],
      [1, 'b1'],
      [0, 'a2'],
      [0, 'a3'],
      [2, 'c1'],
      [0, 'a4'],
      [1, 'b2'],
    ] as const) {
      sink.send(msg(p, v), { onAck: () => acked.push(v), onFail: () => acked.push(`fail ${v}`) });
    }
    // Broker 0 leads partitions 0 and 2, broker 1 partition 1. Two requests each go out at once.
    expect(f.calls.map((c) => [c.nodeId, c.values])).toEqual([
      [0, ['t/0:a1']],
      [1, ['t/1:b1']],
      [0, ['t/0:a2']],
      [1, ['t/1:b2']],
    ]);
    f.calls[0]!.resolve();
    await tick();
    // The queue behind the pipeline goes out as one request, grouped per partition in queue order.
    expect(f.calls[4]).toMatchObject({ nodeId: 0, values: ['t/0:a3', 't/2:c1'] });
    for (const c of f.calls.slice(1)) c.resolve();
    await tick();
    expect(f.calls[5]).toMatchObject({ nodeId: 0, values: ['t/0:a4'] });
    f.calls[5]!.resolve();
    await sink.drained();
    expect(acked.filter((v) => v.startsWith('a'))).toEqual(['a1', 'a2', 'a3', 'a4']);
    expect(acked).toHaveLength(7);
  });

  it('fails the batch, everything queued on every broker and every later send once a request fails', async () => {
    const f = fakeKafka();
    const sink = new KafkaSink({ ...f, logger: silentLogger(), maxInFlight: 1, maxBatchMessages: 1 });
    await sink.connect(['t']);
    const outcome = new Map<string, string>();
    const track = (v: string) => ({ onAck: () => outcome.set(v, 'ack'), onFail: () => outcome.set(v, 'fail') });
    sink.send(msg(0, 'a1'), track('a1'));
    sink.send(msg(0, 'a2'), track('a2'));
    sink.send(msg(1, 'b1'), track('b1'));
    sink.send(msg(1, 'b2'), track('b2'));
    f.calls[0]!.reject(new Error('broker down'));
    await tick();
    expect(outcome.get('a1')).toBe('fail');
    expect(outcome.get('a2')).toBe('fail');
    // b1 was already in flight: its own outcome stands; b2 never gets sent.
    expect(outcome.get('b2')).toBe('fail');
    f.calls[1]!.resolve();
    await tick();
    expect(outcome.get('b1')).toBe('ack');
    expect(f.calls).toHaveLength(2);
    sink.send(msg(1, 'b3'), track('b3'));
    expect(outcome.get('b3')).toBe('fail');
    expect((sink.failure as Error).message).toMatch(/Kafka did not acknowledge a batch of 1 events: broker down/);
    await sink.drained();
  });

  it('keeps requests under the byte limit and explains an oversized event', async () => {
    const f = fakeKafka();
    const sink = new KafkaSink({ ...f, logger: silentLogger(), maxInFlight: 1, maxBatchBytes: 1000 });
    await sink.connect(['t']);
    const big = 'x'.repeat(700);
    let failure: unknown = null;
    sink.send(msg(0, big), { onAck: () => undefined, onFail: (e) => (failure = e) });
    sink.send(msg(0, big), { onAck: () => undefined, onFail: () => undefined });
    sink.send(msg(0, big), { onAck: () => undefined, onFail: () => undefined });
    f.calls[0]!.resolve();
    await tick();
    expect(f.calls.map((c) => c.values.length)).toEqual([1, 1]);
    f.calls[1]!.reject(new ProduceError('Kafka refused the batch for t[0]: MESSAGE_TOO_LARGE', 10));
    await tick();
    expect(failure).toBeNull();
    await sink.drained();
    expect((sink.failure as { hint?: string }).hint).toMatch(/max.message.bytes/);
  });

  it('looks up the leaders of a topic it meets first in a send, keeping the order, and names a missing topic', async () => {
    const f = fakeKafka({ t: 3, u: 1 });
    const sink = new KafkaSink({ ...f, logger: silentLogger(), maxInFlight: 1 });
    await sink.connect(['t']);
    const acked: string[] = [];
    sink.send(msg(0, 'u1', 'u'), { onAck: () => acked.push('u1'), onFail: () => acked.push('fail u1') });
    sink.send(msg(0, 't1'), { onAck: () => acked.push('t1'), onFail: () => acked.push('fail t1') });
    expect(f.calls).toHaveLength(0);
    await tick();
    expect(f.lookups.at(-1)).toEqual(['u']);
    expect(f.calls.map((c) => c.values)).toEqual([['u/0:u1']]);
    f.calls[0]!.resolve();
    await tick();
    expect(f.calls[1]!.values).toEqual(['t/0:t1']);
    f.calls[1]!.resolve();
    await sink.drained();
    expect(acked).toEqual(['u1', 't1']);

    let failure: unknown = null;
    sink.send(msg(0, 'v1', 'gone'), { onAck: () => undefined, onFail: (e) => (failure = e) });
    await tick();
    expect((failure as Error).message).toMatch(/Kafka has no topic gone/);
  });

  it('refuses a partition the topic does not have', async () => {
    const f = fakeKafka();
    const sink = new KafkaSink({ ...f, logger: silentLogger() });
    await sink.connect(['t']);
    let failure: unknown = null;
    sink.send(msg(7, 'x'), { onAck: () => undefined, onFail: (e) => (failure = e) });
    expect((failure as Error).message).toMatch(/topic t has no partition 7 with a leader \(it has 3 partitions\)/);
    await sink.drained();
  });

  it('acknowledges a batch in order, once per run of messages that share their callbacks', () => {
    const calls: string[] = [];
    const cb = (name: string) => ({ onAck: (n = 1) => calls.push(`${name}x${n}`), onFail: () => calls.push(`fail ${name}`) });
    const [a, b] = [cb('a'), cb('b')];
    ackInRuns([a, a, a, b, a, b, b].map((callbacks) => ({ callbacks })));
    expect(calls).toEqual(['ax3', 'bx1', 'ax1', 'bx2']);
    ackInRuns([]);
    expect(calls).toHaveLength(4);
  });
});
