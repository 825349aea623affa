/**
 * The Kafka side of CDC, two interchangeable implementations of `ChangeSink` (chosen by
 * `createKafkaSink`, see the CDC README for the measurement behind the default):
 *
 * - `maintained` (maintained-sink.ts): @platformatic/kafka's idempotent producer (acks=all);
 * - `wire` (this file): one idempotent producer (acks=all) speaking the produce protocol directly
 *   (produce-client.ts, wire.ts) with the spec's TLS and SASL settings (kafka.security) and record
 *   batch compression (cdc.compression); metadata through @platformatic/kafka's admin client.
 *
 * Topics are created up front (admin.ts), messages batched. What follows describes the wire sink.
 *
 * Ordering: messages queue per partition leader (one lane per broker). A lane sends its queue head as
 * one Produce request (one record batch per partition) while up to `maxInFlight` requests are in
 * flight on its connection; the broker handles a connection's requests in order and the producer's
 * sequence numbers refuse any gap, so each partition's messages land in the order they were queued,
 * and with each key pinned to one partition every key's events land in commit order.
 *
 * Batches stay under 900 KB: Kafka refuses a record batch above message.max.bytes (1 MB by default).
 *
 * Failure: when a request fails, it, everything queued behind it and everything in the other lanes are
 * failed too, and the sink refuses further sends. Nothing after a gap can be acknowledged; the caller
 * starts a new session (a new sink, a new producer id) that replays from the slot.
 */
import type { KafkaClients } from '../../services/core/clients.js';
import { ParityError } from '../../services/core/errors.js';
import { kafkaError } from '../../services/core/kafka-errors.js';
import { describeKafkaSecurity } from '../../services/core/kafka-security.js';
import type { Logger } from '../../services/core/log.js';
import type { EncodedChange } from './serde.js';
import { type BrokerAddress, ProduceClient, ProduceError, produceFailure } from './produce-client.js';
import type { Compression, WireRecord } from './wire.js';

/** Which implementation sends CDC events: @platformatic/kafka's producer, or the hand-written protocol. */
export type SinkProducer = 'maintained' | 'wire';
export const SINK_PRODUCERS: readonly SinkProducer[] = ['maintained', 'wire'];

export interface SinkCallbacks {
  /**
   * Kafka acknowledged the message (acks=all); `count` (default 1): that many consecutive messages sent
   * with these same callbacks, acknowledged together (see ackInRuns).
   */
  onAck(count?: number): void;
  /** The message was not (or may not have been) written; it must be replayed. */
  onFail(err: unknown): void;
}

/**
 * Acknowledges a batch in order: one `onAck(count)` per run of consecutive messages that share their
 * callbacks object (the CDC passes one per transaction, table and op), not one call per message.
 */
export function ackInRuns(batch: readonly { callbacks: SinkCallbacks }[]): void {
  let i = 0;
  while (i < batch.length) {
    const callbacks = batch[i]!.callbacks;
    let j = i + 1;
    while (j < batch.length && batch[j]!.callbacks === callbacks) j++;
    callbacks.onAck(j - i);
    i = j;
  }
}

/** How the sink reaches Kafka: the real ProduceClient, or a stand-in in unit tests of the lane logic. */
export interface ProduceTransport {
  connect(brokers: BrokerAddress[]): Promise<void>;
  inFlight(nodeId: number): number;
  produce(nodeId: number, batches: { topic: string; partition: number; records: WireRecord[] }[]): Promise<unknown>;
  close(): void;
}

/** Cluster metadata the sink needs: brokers, and each topic's partition leaders. */
export interface SinkMetadata {
  brokers(): Promise<BrokerAddress[]>;
  /** Leader node id per partition index, per topic; topics Kafka does not know are left out. */
  leaders(topics: string[]): Promise<Map<string, number[]>>;
}

/** What the CDC connector needs of a sink, whichever producer is behind it. */
export interface ChangeSink {
  /** Connects and gets a producer id; `topics` are routed up front (others on first use). */
  connect(topics?: string[]): Promise<void>;
  /** Queues one message. Callbacks fire exactly once; in queue order within a partition. */
  send(message: EncodedChange, callbacks: SinkCallbacks): void;
  /** Resolves when nothing is queued or in flight. */
  drained(): Promise<void>;
  close(): Promise<void>;
  /** Messages queued or in flight. */
  readonly inFlight: number;
  /** Set once a batch failed: the sink accepts nothing more. */
  readonly failure: unknown;
  /** Called after every produce request with its size and duration; for metrics. */
  onBatch?: (messages: number, seconds: number) => void;
}

export interface KafkaSinkOptions {
  kafka: KafkaClients;
  logger: Logger;
  /** Messages per produce request. */
  maxBatchMessages?: number;
  /** Bytes per produce request; keep under the topic's max.message.bytes. */
  maxBatchBytes?: number;
  /** Produce requests in flight per broker connection (1-5). */
  maxInFlight?: number;
  clientId?: string;
  /** Record batch codec (cdc.compression); default none. */
  compression?: Compression;
  /** Replaces the network side (unit tests of the batching and ordering logic). */
  transport?: ProduceTransport;
  metadata?: SinkMetadata;
}

interface Queued {
  message: EncodedChange;
  callbacks: SinkCallbacks;
  size: number;
}

interface Lane {
  nodeId: number;
  queue: Queued[];
  /** Read position in `queue` (avoids O(n) shifts). */
  head: number;
}

/**
 * An upper bound of a record's bytes in a batch: key, value, every header (name, value and their varint
 * lengths) and the record's own framing. The batch cap below counts headers too: Debezium's events carry
 * seven (parity's three and Debezium's context), a few hundred bytes that alone can push 2,000 records of a
 * wide table past the broker's message.max.bytes.
 */
export function recordSize(message: EncodedChange): number {
  let size = (message.key?.length ?? 0) + (message.value?.length ?? 0) + 64;
  for (const name in message.headers) {
    const value = message.headers[name]!;
    // A string header is written as UTF-8: at most three bytes per UTF-16 unit.
    size += name.length * 3 + (typeof value === 'string' ? value.length * 3 : value.length) + 10;
  }
  return size;
}

function kafkaMetadata(kafka: KafkaClients): SinkMetadata & { close(): Promise<void> } {
  const admin = kafka.admin();
  return {
    async brokers() {
      const meta = await admin.metadata({ topics: [] });
      return [...meta.brokers].map(([nodeId, b]) => ({ nodeId, host: b.host, port: b.port }));
    },
    async leaders(topics) {
      const out = new Map<string, number[]>();
      const existing = new Set(await admin.listTopics());
      const known = topics.filter((t) => existing.has(t));
      if (known.length === 0) return out;
      const meta = await admin.metadata({ topics: known, forceUpdate: true });
      for (const t of known) {
        const m = meta.topics.get(t);
        if (m)
          out.set(
            t,
            m.partitions.map((p) => p.leader),
          );
      }
      return out;
    },
    async close() {
      await admin.close().catch(() => undefined);
    },
  };
}

export class KafkaSink implements ChangeSink {
  private lanes = new Map<number, Lane>();
  private routes = new Map<string, number[]>();
  /** Messages of topics whose leaders are being looked up; everything queues here meanwhile (order). */
  private unrouted: Queued[] = [];
  private routing = false;
  private broken: unknown = null;
  private idleWaiters: (() => void)[] = [];
  private readonly maxBatchMessages: number;
  private readonly maxBatchBytes: number;
  private readonly maxInFlight: number;
  private transport: ProduceTransport | null = null;
  private metadata: (SinkMetadata & { close?(): Promise<void> }) | null = null;
  /** Messages queued or in flight. */
  private outstanding = 0;
  /** Called after every produce request with its size and duration; for metrics. */
  onBatch?: (messages: number, seconds: number) => void;

  constructor(private readonly options: KafkaSinkOptions) {
    this.maxBatchMessages = options.maxBatchMessages ?? 2_000;
    this.maxBatchBytes = options.maxBatchBytes ?? 900 * 1024;
    this.maxInFlight = Math.min(5, Math.max(1, options.maxInFlight ?? 2));
  }

  /** Connects to every broker and gets a producer id; `topics` are routed up front (others on first use). */
  async connect(topics: string[] = []): Promise<void> {
    try {
      this.metadata = this.options.metadata ?? kafkaMetadata(this.options.kafka);
      this.transport =
        this.options.transport ??
        new ProduceClient({
          clientId: this.options.clientId ?? 'parity-cdc',
          maxInFlight: this.maxInFlight,
          security: this.options.kafka.security,
          compression: this.options.compression ?? 'none',
        });
      await this.transport.connect(await this.metadata.brokers());
      if (topics.length > 0) for (const [t, leaders] of await this.metadata.leaders(topics)) this.routes.set(t, leaders);
    } catch (err) {
      await this.close();
      // A refused login or an untrusted certificate answers the same on every retry: stop at once.
      if (err instanceof ProduceError && err.fatal)
        throw new ParityError('PARITY_KAFKA', `cannot connect the Kafka producer: ${err.message}`, {
          cause: err,
          retriable: false,
          hint: err.fatal.hint,
        });
      // Metadata comes first, through @platformatic/kafka: its refusals name neither broker nor setting.
      const { brokers, security } = this.options.kafka;
      const fatalHint = security.sasl
        ? `check kafka.security.sasl (mechanism ${security.sasl.mechanism}, username/password or tokenEnv) and kafka.security.tls.ca`
        : 'check kafka.security (protocol, tls.ca)';
      throw kafkaError(
        err,
        `cannot connect the Kafka producer to ${brokers.join(',')} (kafka.security.protocol ${describeKafkaSecurity(security)})`,
        fatalHint,
      );
    }
  }

  /** Messages queued or in flight. */
  get inFlight(): number {
    return this.outstanding;
  }

  /** Set once a batch failed: the sink accepts nothing more. */
  get failure(): unknown {
    return this.broken;
  }

  /** Queues one message. Callbacks fire exactly once; in queue order within a partition. */
  send(message: EncodedChange, callbacks: SinkCallbacks): void {
    if (this.broken) {
      callbacks.onFail(this.broken);
      return;
    }
    if (!this.transport) {
      callbacks.onFail(new ParityError('PARITY_KAFKA', 'the Kafka producer is not connected'));
      return;
    }
    const q: Queued = { message, callbacks, size: recordSize(message) };
    this.outstanding++;
    if (this.unrouted.length > 0 || !this.routes.has(message.topic)) {
      this.unrouted.push(q);
      this.route();
      return;
    }
    this.enqueue(q);
  }

  /** Resolves when nothing is queued or in flight. */
  drained(): Promise<void> {
    if (this.outstanding === 0) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  async close(): Promise<void> {
    this.transport?.close();
    this.transport = null;
    await this.metadata?.close?.();
    this.metadata = null;
  }

  private enqueue(q: Queued): void {
    const leaders = this.routes.get(q.message.topic)!;
    const nodeId = leaders[q.message.partition];
    if (nodeId === undefined || nodeId < 0) {
      this.outstanding--;
      const err = new ParityError(
        'PARITY_KAFKA',
        `topic ${q.message.topic} has no partition ${q.message.partition} with a leader (it has ${leaders.length} partitions)`,
        {
          hint: 'the topic has fewer partitions than CDC expects, or a broker is down: check `kafka-topics --describe`; CDC replays from the slot once it is fixed',
        },
      );
      q.callbacks.onFail(err);
      this.breakWith(err);
      return;
    }
    let lane = this.lanes.get(nodeId);
    if (!lane) this.lanes.set(nodeId, (lane = { nodeId, queue: [], head: 0 }));
    lane.queue.push(q);
    this.pump(lane);
  }

  /** Looks up the leaders of the unrouted messages' topics, then queues them in order. */
  private route(): void {
    if (this.routing || !this.metadata) return;
    this.routing = true;
    const topics = [...new Set(this.unrouted.map((q) => q.message.topic))].filter((t) => !this.routes.has(t));
    const lookup = topics.length > 0 ? this.metadata.leaders(topics) : Promise.resolve(new Map<string, number[]>());
    lookup.then(
      (found) => {
        this.routing = false;
        if (this.broken) return;
        for (const [t, leaders] of found) this.routes.set(t, leaders);
        const missing = topics.filter((t) => !this.routes.has(t));
        if (missing.length > 0) {
          this.breakWith(
            new ParityError('PARITY_KAFKA', `Kafka has no topic ${missing.join(', ')}`, {
              hint: 'CDC creates its topics at start: restart it, or create the topic',
            }),
          );
          return;
        }
        const queued = this.unrouted;
        this.unrouted = [];
        for (const q of queued) {
          if (this.broken) break;
          this.enqueue(q);
        }
      },
      (err: unknown) => {
        this.routing = false;
        this.breakWith(
          new ParityError('PARITY_KAFKA', `cannot read the leaders of ${topics.join(', ')}: ${(err as Error).message}`, { cause: err }),
        );
      },
    );
  }

  private pump(lane: Lane): void {
    const transport = this.transport;
    while (transport && !this.broken && lane.head < lane.queue.length && transport.inFlight(lane.nodeId) < this.maxInFlight) {
      let end = lane.head;
      let bytes = 0;
      // At least one message, even an oversized one: Kafka's refusal then says why.
      while (
        end < lane.queue.length &&
        end - lane.head < this.maxBatchMessages &&
        (end === lane.head || bytes + lane.queue[end]!.size <= this.maxBatchBytes)
      ) {
        bytes += lane.queue[end]!.size;
        end++;
      }
      const batch = lane.queue.slice(lane.head, end);
      lane.head = end;
      if (lane.head > 4096 && lane.head * 2 > lane.queue.length) {
        lane.queue = lane.queue.slice(lane.head);
        lane.head = 0;
      }
      // One record batch per partition, topics contiguous, queue order kept within each partition. An
      // EncodedChange is its own WireRecord (its headers object goes to the batch writer as it is).
      const byTopic = new Map<string, { topic: string; partition: number; records: WireRecord[] }[]>();
      const groups: { topic: string; partition: number; records: WireRecord[] }[] = [];
      for (let i = 0; i < batch.length; i++) {
        const message = batch[i]!.message;
        let partitions = byTopic.get(message.topic);
        if (!partitions) byTopic.set(message.topic, (partitions = []));
        let group = partitions[message.partition];
        if (!group) {
          partitions[message.partition] = group = { topic: message.topic, partition: message.partition, records: [] };
          groups.push(group);
        }
        group.records.push(message);
      }
      groups.sort((a, b) => (a.topic < b.topic ? -1 : a.topic > b.topic ? 1 : 0));
      const started = performance.now();
      transport.produce(lane.nodeId, groups).then(
        () => {
          this.onBatch?.(batch.length, (performance.now() - started) / 1000);
          this.outstanding -= batch.length;
          ackInRuns(batch);
          if (!this.broken) this.pump(lane);
          this.notifyIdle();
        },
        (err: unknown) => {
          const failure = produceFailure(err, batch.length);
          this.outstanding -= batch.length;
          for (const q of batch) q.callbacks.onFail(failure);
          this.breakWith(failure);
        },
      );
    }
  }

  private breakWith(err: unknown): void {
    if (!this.broken) {
      this.broken = err;
      this.options.logger.warn({ err: (err as Error).message }, 'kafka sink failed; later sends are refused');
    }
    const rest0 = this.unrouted;
    this.unrouted = [];
    this.outstanding -= rest0.length;
    for (const q of rest0) q.callbacks.onFail(err);
    for (const lane of this.lanes.values()) {
      const rest = lane.queue.slice(lane.head);
      lane.queue = [];
      lane.head = 0;
      this.outstanding -= rest.length;
      for (const q of rest) q.callbacks.onFail(err);
    }
    this.notifyIdle();
  }

  private notifyIdle(): void {
    if (this.outstanding !== 0) return;
    const waiters = this.idleWaiters;
    this.idleWaiters = [];
    for (const w of waiters) w();
  }
}
