/**
 * A minimal idempotent Kafka producer for the CDC sink: one plaintext TCP connection per partition
 * leader, ApiVersions to check the broker, InitProducerId for a producer id and epoch, then Produce v7
 * requests with acks=all, pipelined up to `maxInFlight` per connection.
 *
 * It does no retries of its own by design: a failed request fails every request after it on that
 * connection (the broker would answer OUT_OF_ORDER_SEQUENCE_NUMBER for them anyway), and the sink then
 * refuses further sends; the connector starts a new session (a new producer id) that replays from the
 * slot's confirmed position. Duplicates that replay produces carry identical dedupe keys.
 *
 * Ordering: per connection the broker handles requests in the order they were sent and answers in that
 * order, and the idempotent producer's sequence numbers make it refuse any gap, so a partition's
 * batches land in the order they were handed to `produce`.
 *
 * Metadata (leaders, broker addresses) and topic creation go through @platformatic/kafka's admin client.
 */
import { Socket } from 'node:net';
import { ParityError } from '../../services/core/errors.js';
import { fatalKafkaHint } from '../../services/core/kafka-errors.js';
import {
  API_INIT_PRODUCER_ID,
  API_PRODUCE,
  INIT_PRODUCER_ID_VERSION,
  KAFKA_ERRORS,
  PRODUCE_VERSION,
  type PartitionBatch,
  type PartitionResult,
  type ProducerIdentity,
  Writer,
  apiVersionsRequest,
  initProducerIdRequest,
  kafkaErrorName,
  produceRequest,
  readApiVersions,
  readInitProducerId,
  readProduceResponse,
} from './wire.js';

export interface BrokerAddress {
  nodeId: number;
  host: string;
  port: number;
}

interface Pending {
  resolve(body: Buffer): void;
  reject(err: Error): void;
  timer: NodeJS.Timeout;
}

/** One TCP connection to a broker, with request/response correlation. */
export class BrokerConnection {
  private socket: Socket | null = null;
  private pending = new Map<number, Pending>();
  private correlation = 0;
  private chunks: Buffer[] = [];
  private buffered = 0;
  private closedWith: Error | null = null;
  readonly writer = new Writer();

  constructor(
    readonly broker: BrokerAddress,
    private readonly requestTimeoutMs: number,
  ) {}

  get inFlight(): number {
    return this.pending.size;
  }

  async connect(connectTimeoutMs = 10_000): Promise<void> {
    const socket = new Socket();
    this.socket = socket;
    socket.setNoDelay(true);
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => {
        socket.destroy();
        reject(new Error(`connecting to Kafka broker ${this.address} timed out after ${connectTimeoutMs} ms`));
      }, connectTimeoutMs);
      socket.once('error', (err) => {
        clearTimeout(timer);
        reject(new Error(`cannot connect to Kafka broker ${this.address}: ${err.message}`));
      });
      socket.connect(this.broker.port, this.broker.host, () => {
        clearTimeout(timer);
        socket.removeAllListeners('error');
        resolve();
      });
    });
    socket.on('data', (chunk: Buffer) => this.onData(chunk));
    socket.on('error', (err) => this.fail(new Error(`Kafka broker ${this.address}: ${err.message}`)));
    socket.on('close', () => this.fail(new Error(`Kafka broker ${this.address} closed the connection`)));
  }

  get address(): string {
    return `${this.broker.host}:${this.broker.port}`;
  }

  nextCorrelationId(): number {
    this.correlation = (this.correlation + 1) & 0x7fffffff;
    return this.correlation;
  }

  /** Sends a finished frame whose header carries `correlationId`; resolves with the response body. */
  request(correlationId: number, frame: Buffer): Promise<Buffer> {
    if (this.closedWith) return Promise.reject(this.closedWith);
    if (!this.socket) return Promise.reject(new Error('not connected'));
    return new Promise<Buffer>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.fail(new Error(`Kafka broker ${this.address} did not answer within ${this.requestTimeoutMs} ms`));
      }, this.requestTimeoutMs);
      this.pending.set(correlationId, { resolve, reject, timer });
      this.socket!.write(frame);
    });
  }

  close(): void {
    this.fail(new Error('connection closed'));
  }

  private fail(err: Error): void {
    if (!this.closedWith) this.closedWith = err;
    this.socket?.destroy();
    const pending = [...this.pending.values()];
    this.pending.clear();
    for (const p of pending) {
      clearTimeout(p.timer);
      p.reject(this.closedWith);
    }
  }

  private onData(chunk: Buffer): void {
    this.chunks.push(chunk);
    this.buffered += chunk.length;
    for (;;) {
      if (this.buffered < 4) return;
      let head = this.chunks[0]!;
      if (head.length < 4) {
        head = Buffer.concat(this.chunks);
        this.chunks = [head];
      }
      const size = head.readInt32BE(0);
      if (this.buffered < 4 + size) return;
      if (head.length < 4 + size) {
        head = Buffer.concat(this.chunks);
        this.chunks = [head];
      }
      const frame = head.subarray(4, 4 + size);
      const rest = head.subarray(4 + size);
      this.buffered -= 4 + size;
      this.chunks[0] = rest;
      if (rest.length === 0) this.chunks.shift();
      const correlationId = frame.readInt32BE(0);
      const p = this.pending.get(correlationId);
      if (!p) {
        this.fail(new Error(`Kafka broker ${this.address} answered an unknown request (correlation id ${correlationId})`));
        return;
      }
      this.pending.delete(correlationId);
      clearTimeout(p.timer);
      p.resolve(frame.subarray(4));
    }
  }
}

export interface ProduceClientOptions {
  clientId: string;
  /** Broker answers slower than this fail the connection. */
  requestTimeoutMs?: number;
  /** Produce requests in flight per connection (at most 5 keeps the idempotent ordering guarantee). */
  maxInFlight?: number;
}

/** A failed produce, with the Kafka error name and advice when there is one. */
export class ProduceError extends Error {
  constructor(
    message: string,
    readonly code: number | null,
  ) {
    super(message);
  }
}

/** One idempotent producer (one producer id) over connections to the partition leaders. */
export class ProduceClient {
  private readonly connections = new Map<number, BrokerConnection>();
  private identity: ProducerIdentity | null = null;
  private readonly sequences = new Map<string, number>();
  private readonly requestTimeoutMs: number;
  readonly maxInFlight: number;

  constructor(private readonly options: ProduceClientOptions) {
    this.requestTimeoutMs = options.requestTimeoutMs ?? 30_000;
    this.maxInFlight = Math.min(5, Math.max(1, options.maxInFlight ?? 2));
  }

  /** Connects to `brokers` (the partition leaders), checks their API versions and gets a producer id. */
  async connect(brokers: BrokerAddress[]): Promise<void> {
    for (const b of brokers) {
      // The client waits a little longer than the broker's own timeout, so the broker's answer wins.
      const conn = new BrokerConnection(b, this.requestTimeoutMs + 5_000);
      this.connections.set(b.nodeId, conn);
      await conn.connect();
      const id = conn.nextCorrelationId();
      const { errorCode, versions } = readApiVersions(await conn.request(id, apiVersionsRequest(conn.writer, id, this.options.clientId)));
      if (errorCode !== 0) throw new ProduceError(`Kafka broker ${conn.address} refused ApiVersions: ${kafkaErrorName(errorCode)}`, errorCode);
      for (const [api, version, name] of [[API_PRODUCE, PRODUCE_VERSION, 'Produce'], [API_INIT_PRODUCER_ID, INIT_PRODUCER_ID_VERSION, 'InitProducerId']] as const) {
        const v = versions.get(api);
        if (!v || v.min > version || v.max < version) {
          throw new ProduceError(`Kafka broker ${conn.address} does not speak ${name} v${version} (it supports ${v ? `v${v.min}-v${v.max}` : 'none'}); CDC needs Kafka 2.1 or later`, 35);
        }
      }
    }
    const first = this.connections.values().next().value as BrokerConnection | undefined;
    if (!first) throw new ProduceError('no Kafka broker to produce to', null);
    const id = first.nextCorrelationId();
    const init = readInitProducerId(await first.request(id, initProducerIdRequest(first.writer, id, this.options.clientId)));
    if (init.errorCode !== 0) {
      const known = KAFKA_ERRORS[init.errorCode];
      throw new ProduceError(`Kafka refused a producer id: ${kafkaErrorName(init.errorCode)}${known?.hint ? ` (${known.hint})` : ''}`, init.errorCode);
    }
    this.identity = { producerId: init.producerId, producerEpoch: init.producerEpoch };
  }

  /** Requests in flight to broker `nodeId`. */
  inFlight(nodeId: number): number {
    return this.connections.get(nodeId)?.inFlight ?? 0;
  }

  /**
   * Sends one Produce request with a batch per partition to broker `nodeId` (the leader of them all);
   * resolves when every partition was appended (acks=all), rejects with the first partition error.
   * Sequence numbers advance when the request is written, in call order.
   */
  produce(nodeId: number, batches: { topic: string; partition: number; records: PartitionBatch['records'] }[]): Promise<PartitionResult[]> {
    const conn = this.connections.get(nodeId);
    if (!conn || !this.identity) return Promise.reject(new ProduceError(`not connected to Kafka broker ${nodeId}`, null));
    const withSequences: PartitionBatch[] = batches.map((b) => {
      const k = `${b.topic}\u0000${b.partition}`;
      const baseSequence = this.sequences.get(k) ?? 0;
      const next = baseSequence + b.records.length;
      // Sequences wrap from 2^31-1 to 0, as the broker expects.
      this.sequences.set(k, next > 0x7fffffff ? next - 0x80000000 : next);
      return { ...b, baseSequence };
    });
    const correlationId = conn.nextCorrelationId();
    const frame = produceRequest(conn.writer, { correlationId, clientId: this.options.clientId }, { acks: -1, timeoutMs: this.requestTimeoutMs, timestampMs: Date.now(), producer: this.identity }, withSequences);
    return conn.request(correlationId, frame).then((body) => {
      const results = readProduceResponse(body);
      const bad = results.find((r) => r.errorCode !== 0);
      if (bad) {
        throw new ProduceError(`Kafka refused the batch for ${bad.topic}[${bad.partition}]: ${kafkaErrorName(bad.errorCode)}`, bad.errorCode);
      }
      return results;
    });
  }

  close(): void {
    for (const c of this.connections.values()) c.close();
    this.connections.clear();
  }
}

/**
 * A failed produce as a ParityError: retriable (a new session replays from the slot) unless Kafka
 * refused who we are, what we may do or how we speak (authentication, authorization, unsupported
 * version), which no replay can fix.
 */
export function produceFailure(err: unknown, events: number): ParityError {
  const code = err instanceof ProduceError ? err.code : null;
  const fatal = code === null ? null : fatalKafkaHint({ kafkaCode: code });
  return new ParityError('PARITY_KAFKA', `Kafka did not acknowledge a batch of ${events} events: ${(err as Error).message}`, {
    cause: err,
    retriable: fatal === null,
    hint: (code === null ? undefined : KAFKA_ERRORS[code]?.hint) ?? fatal ?? 'check that the Kafka brokers are up; CDC replays the unacknowledged events from the replication slot',
  });
}
