/**
 * The Kafka side of CDC: one idempotent producer (acks=all), topics created up front, messages batched.
 *
 * Ordering: exactly one `sendBatch` is in flight at a time while the next batch accumulates behind it,
 * so batches land in the order they were queued and, with each key pinned to one partition, every key's
 * events land in commit order. (kafkajs assigns idempotent sequence numbers when a request is sent and
 * rolls them back on failure; two concurrent requests to one partition could then reorder.) Thousands of
 * events are still in flight at once inside a batch, and decoding continues while a batch is sent.
 *
 * Failure: when a batch fails after the producer's own retries, it and everything queued behind it are
 * failed too, and the sink refuses further sends. Nothing after a gap can be acknowledged; the caller
 * starts a new session (new producer) that replays from the replication slot.
 */
import type { Kafka, Producer, ITopicConfig } from 'kafkajs';
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
  /** Approximate bytes per produce request. */
  maxBatchBytes?: number;
  /** Producer retries before a batch counts as failed. */
  retries?: number;
}

interface Queued {
  message: EncodedChange;
  callbacks: SinkCallbacks;
  size: number;
}

export class KafkaSink {
  private producer: Producer | null = null;
  private queue: Queued[] = [];
  private sending = false;
  private broken: unknown = null;
  private idleWaiters: (() => void)[] = [];
  private readonly maxBatchMessages: number;
  private readonly maxBatchBytes: number;
  /** Messages queued or in flight. */
  private outstanding = 0;
  /** Called after every produce request with its size and duration; for metrics. */
  onBatch?: (messages: number, seconds: number) => void;

  constructor(private readonly options: KafkaSinkOptions) {
    this.maxBatchMessages = options.maxBatchMessages ?? 4_000;
    this.maxBatchBytes = options.maxBatchBytes ?? 4 * 1024 * 1024;
  }

  async connect(): Promise<void> {
    const retries = this.options.retries ?? 8;
    this.producer = this.options.kafka.producer({
      idempotent: true,
      maxInFlightRequests: 1,
      allowAutoTopicCreation: false,
      // Finite retries: after them the session restarts and replays from the slot (no gap, only
      // duplicates with identical dedupe keys), and /healthz says Kafka is the problem.
      retry: { retries, initialRetryTime: 200, maxRetryTime: 5_000 },
    });
    try {
      await this.producer.connect();
    } catch (err) {
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

  /** Queues one message. Callbacks fire exactly once, in queue order. */
  send(message: EncodedChange, callbacks: SinkCallbacks): void {
    if (this.broken) {
      callbacks.onFail(this.broken);
      return;
    }
    const size = (message.key?.length ?? 0) + message.value.length + 64;
    this.queue.push({ message, callbacks, size });
    this.outstanding++;
    this.pump();
  }

  /** Resolves when nothing is queued or in flight. */
  drained(): Promise<void> {
    if (this.outstanding === 0) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  async close(): Promise<void> {
    await this.producer?.disconnect().catch(() => undefined);
    this.producer = null;
  }

  private pump(): void {
    if (this.sending || this.queue.length === 0) return;
    if (!this.producer) {
      this.breakWith(new ParityError('PARITY_KAFKA', 'the Kafka producer is not connected'));
      return;
    }
    let count = 0;
    let bytes = 0;
    while (count < this.queue.length && count < this.maxBatchMessages && bytes < this.maxBatchBytes) {
      bytes += this.queue[count]!.size;
      count++;
    }
    const batch = this.queue.splice(0, count);
    const byTopic = new Map<string, { partition: number; key: Buffer | null; value: Buffer; headers: Record<string, string> }[]>();
    for (const { message } of batch) {
      let list = byTopic.get(message.topic);
      if (!list) byTopic.set(message.topic, (list = []));
      list.push({ partition: message.partition, key: message.key, value: message.value, headers: message.headers });
    }
    this.sending = true;
    const started = performance.now();
    this.producer
      .sendBatch({ acks: -1, topicMessages: [...byTopic].map(([topic, messages]) => ({ topic, messages })) })
      .then(
        () => {
          this.onBatch?.(batch.length, (performance.now() - started) / 1000);
          this.outstanding -= batch.length;
          for (const q of batch) q.callbacks.onAck();
        },
        (err: unknown) => {
          const failure = new ParityError('PARITY_KAFKA', `Kafka did not acknowledge a batch of ${batch.length} events: ${(err as Error).message}`, {
            cause: err,
            hint: 'check that the Kafka brokers are up; CDC replays the unacknowledged events from the replication slot',
          });
          this.outstanding -= batch.length;
          for (const q of batch) q.callbacks.onFail(failure);
          this.breakWith(failure);
        },
      )
      .finally(() => {
        this.sending = false;
        if (!this.broken) this.pump();
        this.notifyIdle();
      });
  }

  private breakWith(err: unknown): void {
    if (!this.broken) {
      this.broken = err;
      this.options.logger.warn({ err: (err as Error).message }, 'kafka sink failed; later sends are refused');
    }
    const rest = this.queue;
    this.queue = [];
    this.outstanding -= rest.length;
    for (const q of rest) q.callbacks.onFail(err);
    this.notifyIdle();
  }

  private notifyIdle(): void {
    if (this.outstanding !== 0) return;
    const waiters = this.idleWaiters;
    this.idleWaiters = [];
    for (const w of waiters) w();
  }
}
