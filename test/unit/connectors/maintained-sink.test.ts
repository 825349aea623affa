import { ProtocolError } from '@platformatic/kafka';
import { describe, expect, it } from 'vitest';
import { MaintainedSink } from '../../../connectors/kafka-sink/maintained-sink.js';
import { recordSize } from '../../../connectors/kafka-sink/sink.js';
import type { EncodedChange } from '../../../connectors/kafka-sink/serde.js';
import type { KafkaClients } from '../../../services/core/clients.js';
import { silentLogger } from '../../../services/core/log.js';

interface Send {
  values: string[];
  resolve: () => void;
  reject: (err: unknown) => void;
}

/** Client factory whose producer's sends stay pending until the test settles them. */
function fakeKafka() {
  const sends: Send[] = [];
  const producer = {
    initIdempotentProducer: async () => ({ producerId: 1n, producerEpoch: 0 }),
    metadata: async () => ({}),
    close: async () => undefined,
    send: (options: { messages: { topic: string; partition: number; value: Buffer }[] }) =>
      new Promise((resolve, reject) =>
        sends.push({
          values: options.messages.map((m) => `${m.topic}/${m.partition}:${m.value.toString()}`),
          resolve: () => resolve({}),
          reject,
        }),
      ),
  };
  const kafka = { clientId: 'test', brokers: [], producer: () => producer } as unknown as KafkaClients;
  return { kafka, sends };
}

const msg = (partition: number, value: string): EncodedChange => ({
  topic: 't',
  partition,
  key: null,
  value: Buffer.from(value),
  headers: { 'parity.ordinal': '1' },
});
const tick = () => new Promise((r) => setTimeout(r, 0));

describe('MaintainedSink', () => {
  it('keeps one send in flight; what is queued meanwhile goes out next, in order; acks in queue order', async () => {
    const f = fakeKafka();
    const sink = new MaintainedSink({ kafka: f.kafka, logger: silentLogger() });
    await sink.connect(['t']);
    const acks: string[] = [];
    const cb = (v: string) => ({ onAck: () => acks.push(v), onFail: () => acks.push(`fail ${v}`) });
    sink.send(msg(0, 'a'), cb('a'));
    sink.send(msg(1, 'b'), cb('b'));
    await tick();
    sink.send(msg(0, 'c'), cb('c'));
    sink.send(msg(2, 'd'), cb('d'));
    await tick();
    expect(f.sends.map((s) => s.values)).toEqual([['t/0:a', 't/1:b']]);
    expect(sink.inFlight).toBe(4);
    f.sends[0]!.resolve();
    await tick();
    expect(acks).toEqual(['a', 'b']);
    expect(f.sends.map((s) => s.values)).toEqual([
      ['t/0:a', 't/1:b'],
      ['t/0:c', 't/2:d'],
    ]);
    f.sends[1]!.resolve();
    await sink.drained();
    expect(acks).toEqual(['a', 'b', 'c', 'd']);
    expect(sink.inFlight).toBe(0);
  });

  it('splits a send before a partition would exceed its byte budget', async () => {
    const f = fakeKafka();
    // Room for two of these messages, not three (recordSize: key, value, headers and framing).
    const budget = Math.floor(recordSize(msg(0, 'x'.repeat(100))) * 2.5);
    const sink = new MaintainedSink({ kafka: f.kafka, logger: silentLogger(), maxPartitionBytes: budget });
    await sink.connect();
    const noop = { onAck: () => undefined, onFail: () => undefined };
    for (const v of ['x'.repeat(100), 'y'.repeat(100), 'z'.repeat(100)]) sink.send(msg(0, v), noop);
    sink.send(msg(1, 'w'.repeat(100)), noop);
    await tick();
    expect(f.sends[0]!.values.map((v) => v.slice(0, 5))).toEqual(['t/0:x', 't/0:y']);
    f.sends[0]!.resolve();
    await tick();
    expect(f.sends[1]!.values.map((v) => v.slice(0, 5))).toEqual(['t/0:z', 't/1:w']);
  });

  it('fails the batch in flight, everything queued and every later send; an authorization error is not retriable', async () => {
    const f = fakeKafka();
    const sink = new MaintainedSink({ kafka: f.kafka, logger: silentLogger() });
    await sink.connect();
    const failures: unknown[] = [];
    const acks: string[] = [];
    const cb = (v: string) => ({ onAck: () => acks.push(v), onFail: (e: unknown) => failures.push(e) });
    sink.send(msg(0, 'a'), cb('a'));
    await tick();
    sink.send(msg(0, 'b'), cb('b'));
    f.sends[0]!.reject(new ProtocolError('TOPIC_AUTHORIZATION_FAILED'));
    await tick();
    sink.send(msg(0, 'c'), cb('c'));
    expect(acks).toEqual([]);
    expect(failures).toHaveLength(3);
    expect((sink.failure as { retriable: boolean }).retriable).toBe(false);
    expect(f.sends).toHaveLength(1);
    expect(sink.inFlight).toBe(0);
    await sink.drained();
  });

  it('a transient failure is retriable (the connector replays from the slot)', async () => {
    const f = fakeKafka();
    const sink = new MaintainedSink({ kafka: f.kafka, logger: silentLogger() });
    await sink.connect();
    sink.send(msg(0, 'a'), { onAck: () => undefined, onFail: () => undefined });
    await tick();
    f.sends[0]!.reject(new ProtocolError('NOT_ENOUGH_REPLICAS'));
    await tick();
    expect((sink.failure as { retriable: boolean; code: string }).retriable).toBe(true);
    expect((sink.failure as { code: string }).code).toBe('PARITY_KAFKA');
  });
});
