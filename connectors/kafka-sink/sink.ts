/**
 * The Kafka side of CDC: idempotent producers (acks=all), topics created up front, messages batched.
 *
 * Ordering: messages go to lanes by partition (lane = partition mod lanes). Each lane is one idempotent
 * producer with exactly one produce request in flight while its next batch accumulates, so each
 * partition's messages land in the order they were queued, and with each key pinned to one partition
 * every key's events land in commit order. Lanes run concurrently: kafkajs serializes an idempotent
 * producer's requests per broker behind a lock (and assigns sequence numbers when a request is sent,
 * rolling them back on failure), so one producer cannot pipeline; several producers on disjoint
 * partitions can, without ever putting two requests for one partition in flight.
 *
 * Batches stay under 900 KB: Kafka refuses a record batch above message.max.bytes (1 MB by default).
 *
 * Failure: when a batch fails after the producer's own retries, it, everything queued behind it and
 * everything in the other lanes are failed too, and the sink refuses further sends. Nothing after a gap
 * can be acknowledged; the caller starts a new session (new producers) that replays from the slot.
 */
import { Partitioners, type Kafka, type Producer, type ITopicConfig } from 'kafkajs';
import { ParityError } from '../../services/core/errors.js';
import type { Logger } from '../../services/core/log.js';
import type { EncodedChange } from './serde.js';

export interface SinkCallbacks {
  /** Kafka acknowledged the message (acks=all). */
  onAck(): void;
  /** The message was not (or may not have been) written; it must be replayed. */
  onFail(err: unknown): void;
}

export interface KafkaSinkOptions {
  kafka: Kafka;
  logger: Logger;
  /** Messages per produce request. */
  maxBatchMessages?: number;
  /** Bytes per produce request; keep under the topic's max.message.bytes. */
  maxBatchBytes?: number;
  /** Producer retries before a batch counts as failed. */
  retries?: number;
  /** Concurrent producers (each owning the partitions p with p mod lanes = its index). */
  lanes?: number;
}

interface Queued {
  message: EncodedChange;
  callbacks: SinkCallbacks;
  size: number;
}

interface Lane {
  producer: Producer;
  queue: Queued[];
  /** Read position in `queue` (avoids O(n) shifts). */
  head: number;
  sending: boolean;
}

export class KafkaSink {
  private lanes: Lane[] = [];
  private broken: unknown = null;
  private idleWaiters: (() => void)[] = [];
  private readonly maxBatchMessages: number;
  private readonly maxBatchBytes: number;
  /** Messages queued or in flight. */
  private outstanding = 0;
  /** Called after every produce request with its size and duration; for metrics. */
  onBatch?: (messages: number, seconds: number) => void;

  constructor(private readonly options: KafkaSinkOptions) {
    // kafkajs groups a batch per partition by copying arrays (quadratic in the batch): keep batches modest.
    this.maxBatchMessages = options.maxBatchMessages ?? 500;
    this.maxBatchBytes = options.maxBatchBytes ?? 900 * 1024;
  }

  async connect(): Promise<void> {
    const retries = this.options.retries ?? 8;
    const count = Math.max(1, this.options.lanes ?? 3);
    try {
      for (let i = 0; i < count; i++) {
        const producer = this.options.kafka.producer({
          idempotent: true,
          maxInFlightRequests: 1,
          allowAutoTopicCreation: false,
          // Every message carries its partition; the partitioner is never consulted.
          createPartitioner: Partitioners.DefaultPartitioner,
          // Finite retries: after them the session restarts and replays from the slot (no gap, only
          // duplicates with identical dedupe keys), and /healthz says Kafka is the problem.
          retry: { retries, initialRetryTime: 200, maxRetryTime: 5_000 },
        });
        this.lanes.push({ producer, queue: [], head: 0, sending: false });
        await producer.connect();
      }
    } catch (err) {
      await this.close();
      throw new ParityError('PARITY_KAFKA', `cannot connect the Kafka producer: ${(err as Error).message}`, { cause: err });
    }
  }

  /** Creates missing topics with `partitions` partitions (existing topics are left as they are). */
  async ensureTopics(topics: string[], partitions: number): Promise<void> {
    const admin = this.options.kafka.admin();
    try {
      await admin.connect();
      const existing = new Set(await admin.listTopics());
      const missing: ITopicConfig[] = topics.filter((t) => !existing.has(t)).map((topic) => ({ topic, numPartitions: partitions, replicationFactor: -1 }));
      if (missing.length > 0) {
        try {
          await admin.createTopics({ topics: missing, waitForLeaders: true });
        } catch (err) {
          // A concurrent creator won the race: fine.
          if (!/already exists/i.test((err as Error).message)) throw err;
        }
      }
    } catch (err) {
      throw new ParityError('PARITY_KAFKA', `cannot create topics ${topics.join(', ')}: ${(err as Error).message}`, { cause: err });
    } finally {
      await admin.disconnect().catch(() => undefined);
    }
  }

  /** Partition counts of `topics`, read from the cluster metadata. */
  async partitionCounts(topics: string[]): Promise<Map<string, number>> {
    const admin = this.options.kafka.admin();
    try {
      await admin.connect();
      const meta = await admin.fetchTopicMetadata({ topics });
      return new Map(meta.topics.map((t) => [t.name, t.partitions.length]));
    } catch (err) {
      throw new ParityError('PARITY_KAFKA', `cannot read metadata of ${topics.join(', ')}: ${(err as Error).message}`, { cause: err });
    } finally {
      await admin.disconnect().catch(() => undefined);
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
    const lane = this.lanes[message.partition % this.lanes.length];
    if (!lane) {
      callbacks.onFail(new ParityError('PARITY_KAFKA', 'the Kafka producer is not connected'));
      return;
    }
    const size = (message.key?.length ?? 0) + message.value.length + 128;
    lane.queue.push({ message, callbacks, size });
    this.outstanding++;
    this.pump(lane);
  }

  /** Resolves when nothing is queued or in flight. */
  drained(): Promise<void> {
    if (this.outstanding === 0) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  async close(): Promise<void> {
    const lanes = this.lanes;
    this.lanes = [];
    await Promise.all(lanes.map((l) => l.producer.disconnect().catch(() => undefined)));
  }

  private pump(lane: Lane): void {
    if (lane.sending || lane.head >= lane.queue.length || this.broken) return;
    let end = lane.head;
    let bytes = 0;
    // At least one message, even an oversized one: Kafka's refusal then says why.
    while (end < lane.queue.length && end - lane.head < this.maxBatchMessages && (end === lane.head || bytes + lane.queue[end]!.size <= this.maxBatchBytes)) {
      bytes += lane.queue[end]!.size;
      end++;
    }
    const batch = lane.queue.slice(lane.head, end);
    lane.head = end;
    if (lane.head > 4096 && lane.head * 2 > lane.queue.length) {
      lane.queue = lane.queue.slice(lane.head);
      lane.head = 0;
    }
    const byTopic = new Map<string, { partition: number; key: Buffer | null; value: Buffer; headers: Record<string, string | Buffer> }[]>();
    for (const { message } of batch) {
      let list = byTopic.get(message.topic);
      if (!list) byTopic.set(message.topic, (list = []));
      list.push({ partition: message.partition, key: message.key, value: message.value, headers: message.headers });
    }
    lane.sending = true;
    const started = performance.now();
    lane.producer
      .sendBatch({ acks: -1, topicMessages: [...byTopic].map(([topic, messages]) => ({ topic, messages })) })
      .then(
        () => {
          this.onBatch?.(batch.length, (performance.now() - started) / 1000);
          this.outstanding -= batch.length;
          for (const q of batch) q.callbacks.onAck();
        },
        (err: unknown) => {
          const tooLarge = (err as { type?: string }).type === 'MESSAGE_TOO_LARGE';
          const failure = new ParityError('PARITY_KAFKA', `Kafka did not acknowledge a batch of ${batch.length} events: ${(err as Error).message}`, {
            cause: err,
            hint: tooLarge
              ? 'one event is larger than the topic accepts: raise max.message.bytes on the topic (and message.max.bytes on the broker); CDC stays paused at that change until then'
              : 'check that the Kafka brokers are up; CDC replays the unacknowledged events from the replication slot',
          });
          this.outstanding -= batch.length;
          for (const q of batch) q.callbacks.onFail(failure);
          this.breakWith(failure);
        },
      )
      .finally(() => {
        lane.sending = false;
        if (!this.broken) this.pump(lane);
        this.notifyIdle();
      });
  }

  private breakWith(err: unknown): void {
    if (!this.broken) {
      this.broken = err;
      this.options.logger.warn({ err: (err as Error).message }, 'kafka sink failed; later sends are refused');
    }
    for (const lane of this.lanes) {
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
