/**
 * The CDC sink on @platformatic/kafka's idempotent producer (acks=all): every TLS, SASL and
 * compression setting the client has, and no protocol code of ours.
 *
 * Ordering and no loss. The client pins an idempotent producer to one request in flight per broker
 * connection, and retries a failed request itself; but two `send()` calls in flight at once can still
 * land out of order after a failure (the later one may be retried, or re-sent under a new producer
 * id after OUT_OF_ORDER_SEQUENCE_NUMBER, before the earlier one's retry). So this sink keeps exactly
 * one `send()` in flight: everything queued meanwhile goes out in the next one, in queue order (one
 * record batch per partition, partitions chosen by the connector), and a send starts only once the
 * previous one was acknowledged. A retry of the one request in flight keeps its sequence numbers, so
 * the broker deduplicates it. When a send fails after the client's own retries, it, everything queued
 * and every later send fail, and the connector starts a new session that replays from the slot.
 *
 * Batches stay under 900 KB per partition: Kafka refuses a record batch above message.max.bytes.
 */
import type { KafkaClients, KafkaProducer } from '../../services/core/clients.js';
import { ParityError } from '../../services/core/errors.js';
import { kafkaError } from '../../services/core/kafka-errors.js';
import type { Logger } from '../../services/core/log.js';
import type { EncodedChange } from './serde.js';
import { type ChangeSink, type SinkCallbacks, ackInRuns, recordSize } from './sink.js';

export interface MaintainedSinkOptions {
  kafka: KafkaClients;
  logger: Logger;
  /** Most messages per send; default 20,000. */
  maxBatchMessages?: number;
  /** Most bytes per partition per send; keep under the topic's max.message.bytes. Default 900 KB. */
  maxPartitionBytes?: number;
  clientId?: string;
}

interface Queued {
  message: EncodedChange;
  callbacks: SinkCallbacks;
  size: number;
}

export class MaintainedSink implements ChangeSink {
  private producer: KafkaProducer | null = null;
  private queue: Queued[] = [];
  private head = 0;
  private sending = false;
  private broken: unknown = null;
  private outstanding = 0;
  private idleWaiters: (() => void)[] = [];
  private readonly maxBatchMessages: number;
  private readonly maxPartitionBytes: number;
  onBatch?: (messages: number, seconds: number) => void;

  constructor(private readonly options: MaintainedSinkOptions) {
    this.maxBatchMessages = options.maxBatchMessages ?? 20_000;
    this.maxPartitionBytes = options.maxPartitionBytes ?? 900 * 1024;
  }

  async connect(topics: string[] = []): Promise<void> {
    try {
      // The client's own retries cover a broker restart or a leader move of the one request in flight.
      this.producer = this.options.kafka.producer({ clientId: this.options.clientId ?? `${this.options.kafka.clientId}-cdc`, retries: 5 });
      await this.producer.initIdempotentProducer({});
      if (topics.length > 0) await this.producer.metadata({ topics, forceUpdate: true });
    } catch (err) {
      await this.close();
      throw kafkaError(err, 'cannot connect the Kafka producer');
    }
  }

  get inFlight(): number {
    return this.outstanding;
  }

  get failure(): unknown {
    return this.broken;
  }

  send(message: EncodedChange, callbacks: SinkCallbacks): void {
    if (this.broken) {
      callbacks.onFail(this.broken);
      return;
    }
    if (!this.producer) {
      callbacks.onFail(new ParityError('PARITY_KAFKA', 'the Kafka producer is not connected'));
      return;
    }
    this.outstanding++;
    this.queue.push({ message, callbacks, size: recordSize(message) });
    if (!this.sending) queueMicrotask(() => this.pump());
  }

  drained(): Promise<void> {
    if (this.outstanding === 0) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  async close(): Promise<void> {
    const p = this.producer;
    this.producer = null;
    await p?.close(true).catch(() => undefined);
  }

  private pump(): void {
    const producer = this.producer;
    if (this.sending || this.broken || !producer || this.head >= this.queue.length) return;
    const bytes = new Map<string, number>();
    let end = this.head;
    while (end < this.queue.length && end - this.head < this.maxBatchMessages) {
      const q = this.queue[end]!;
      const k = `${q.message.topic}\u0000${q.message.partition}`;
      const used = bytes.get(k) ?? 0;
      // At least one message, even an oversized one: Kafka's refusal then says why.
      if (end > this.head && used + q.size > this.maxPartitionBytes) break;
      bytes.set(k, used + q.size);
      end++;
    }
    const batch = this.queue.slice(this.head, end);
    this.head = end;
    if (this.head === this.queue.length) {
      this.queue = [];
      this.head = 0;
    } else if (this.head > 4096 && this.head * 2 > this.queue.length) {
      this.queue = this.queue.slice(this.head);
      this.head = 0;
    }
    this.sending = true;
    const started = performance.now();
    const messages = batch.map(({ message: m }) => ({
      topic: m.topic,
      partition: m.partition,
      ...(m.key ? { key: m.key } : {}),
      // A tombstone's value is null: the library's record writer writes null as Kafka's null (length -1).
      value: m.value as Buffer,
      headers: m.headers,
      ...(m.timestamp ? { timestamp: BigInt(m.timestamp) } : {}),
    }));
    producer.send({ messages }).then(
      () => {
        this.sending = false;
        this.onBatch?.(batch.length, (performance.now() - started) / 1000);
        this.outstanding -= batch.length;
        ackInRuns(batch);
        this.pump();
        this.notifyIdle();
      },
      (err: unknown) => {
        this.sending = false;
        const failure = kafkaError(
          err,
          `Kafka did not acknowledge a batch of ${batch.length} events`,
          'check that the Kafka brokers are up; CDC replays the unacknowledged events from the replication slot',
        );
        this.outstanding -= batch.length;
        for (const q of batch) q.callbacks.onFail(failure);
        this.breakWith(failure);
      },
    );
  }

  private breakWith(err: unknown): void {
    if (!this.broken) {
      this.broken = err;
      this.options.logger.warn({ err: (err as Error).message }, 'kafka sink failed; later sends are refused');
    }
    const rest = this.queue.slice(this.head);
    this.queue = [];
    this.head = 0;
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
