/**
 * A minimal idempotent Kafka producer for the CDC sink: one connection per partition leader (TCP, or
 * TLS with the spec's CA, client certificate and hostname check), ApiVersions to check the broker,
 * SASL (PLAIN, SCRAM-SHA-256/512, OAUTHBEARER: SaslHandshake then SaslAuthenticate) when configured,
 * InitProducerId for a producer id and epoch, then Produce v7 requests with acks=all (record batches
 * optionally gzip or zstd compressed), pipelined up to `maxInFlight` per connection.
 *
 * Refusals no retry can fix (authentication, an untrusted or misnamed certificate, a mechanism the
 * broker does not enable, an unsupported version) are ProduceErrors marked `fatal`, naming the broker
 * and the spec setting to check; they never count as retriable.
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
import { isIP, Socket } from 'node:net';
import { connect as tlsConnect, type TLSSocket } from 'node:tls';
import { ParityError } from '../../services/core/errors.js';
import { fatalKafkaHint } from '../../services/core/kafka-errors.js';
import { describeKafkaSecurity, type KafkaSecurity } from '../../services/core/kafka-security.js';
import { SaslProtocolError, saslSession } from './sasl.js';
import {
  API_INIT_PRODUCER_ID,
  API_PRODUCE,
  API_SASL_AUTHENTICATE,
  API_SASL_HANDSHAKE,
  type Compression,
  INIT_PRODUCER_ID_VERSION,
  SASL_AUTHENTICATE_VERSION,
  SASL_HANDSHAKE_VERSION,
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
  readSaslAuthenticate,
  readSaslHandshake,
  saslAuthenticateRequest,
  saslHandshakeRequest,
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

/**
 * A Writer whose finished frame is a view of its own buffer, not a copy. Produce requests (up to ~900 KB,
 * tens per second when draining a backlog) are written into a few of these per connection, each reused
 * once the socket has taken its bytes: a fresh ~1 MB Buffer per request is memory that only a garbage
 * collection gives back, and it showed in the connector's peak RSS.
 */
class FrameWriter extends Writer {
  override toBuffer(): Buffer {
    return this.buf.subarray(0, this.pos);
  }
}

/** Idle frame writers kept per connection: one per request in flight (at most 5) plus the one being written. */
const MAX_IDLE_FRAME_WRITERS = 6;

/** TLS verification failures: the certificate chain, or the name in it. */
const TLS_NAME_ERRORS = new Set(['ERR_TLS_CERT_ALTNAME_INVALID', 'HOSTNAME_MISMATCH']);

/** One TCP (or TLS) connection to a broker, with request/response correlation. */
export class BrokerConnection {
  private socket: Socket | TLSSocket | null = null;
  /** Set once the connection answered its first request: a close before that is reported as a refusal. */
  answered = false;
  private pending = new Map<number, Pending>();
  private correlation = 0;
  private chunks: Buffer[] = [];
  private buffered = 0;
  private closedWith: Error | null = null;
  readonly writer = new Writer();
  private readonly frameWriters: FrameWriter[] = [];

  constructor(
    readonly broker: BrokerAddress,
    private readonly requestTimeoutMs: number,
    private readonly security: KafkaSecurity = { protocol: 'PLAINTEXT' },
  ) {}

  get inFlight(): number {
    return this.pending.size;
  }

  async connect(connectTimeoutMs = 10_000): Promise<void> {
    const tls = this.security.tls;
    // SNI and the name check use the broker's host name; an IP address is checked against the
    // certificate's IP entries (Node refuses an IP as SNI).
    const servername = tls?.servername ?? (isIP(this.broker.host) ? undefined : this.broker.host);
    const socket = tls
      ? tlsConnect({ ...tls, host: this.broker.host, port: this.broker.port, ...(servername ? { servername } : {}) })
      : new Socket();
    this.socket = socket;
    socket.setNoDelay(true);
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => {
        socket.destroy();
        reject(new Error(`connecting to Kafka broker ${this.address} timed out after ${connectTimeoutMs} ms`));
      }, connectTimeoutMs);
      socket.once('error', (err: NodeJS.ErrnoException) => {
        clearTimeout(timer);
        reject(tls ? tlsFailure(this.address, err) : new Error(`cannot connect to Kafka broker ${this.address}: ${err.message}`));
      });
      const ready = () => {
        clearTimeout(timer);
        socket.removeAllListeners('error');
        resolve();
      };
      if (tls) socket.once('secureConnect', ready);
      else socket.connect(this.broker.port, this.broker.host, ready);
    });
    socket.on('data', (chunk: Buffer) => this.onData(chunk));
    socket.on('error', (err) => this.fail(new Error(`Kafka broker ${this.address}: ${err.message}`)));
    socket.on('close', () =>
      this.fail(
        this.answered
          ? new Error(`Kafka broker ${this.address} closed the connection`)
          : new Error(
              `Kafka broker ${this.address} closed the connection before answering (connecting with kafka.security.protocol ${this.security.protocol}): if its listener wants TLS or SASL, set kafka.security to match it`,
            ),
      ),
    );
  }

  get address(): string {
    return `${this.broker.host}:${this.broker.port}`;
  }

  nextCorrelationId(): number {
    this.correlation = (this.correlation + 1) & 0x7fffffff;
    return this.correlation;
  }

  /** A writer for one request whose frame is a view of it; hand both to `request`, which gives the writer back. */
  takeFrameWriter(): Writer {
    return this.frameWriters.pop() ?? new FrameWriter();
  }

  /** Returns a frame writer once the socket no longer needs the frame written into it. */
  private releaseFrameWriter(w: Writer): void {
    if (this.frameWriters.length < MAX_IDLE_FRAME_WRITERS) this.frameWriters.push(w as FrameWriter);
  }

  /**
   * Sends a finished frame whose header carries `correlationId`; resolves with the response body.
   * `frameWriter`: the writer from `takeFrameWriter` that `frame` is a view of, reused once the socket
   * has taken the frame's bytes (the write callback), not before.
   */
  request(correlationId: number, frame: Buffer, frameWriter?: Writer): Promise<Buffer> {
    if (this.closedWith) return Promise.reject(this.closedWith);
    if (!this.socket) return Promise.reject(new Error('not connected'));
    return new Promise<Buffer>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.fail(new Error(`Kafka broker ${this.address} did not answer within ${this.requestTimeoutMs} ms`));
      }, this.requestTimeoutMs);
      this.pending.set(correlationId, { resolve, reject, timer });
      if (frameWriter) this.socket!.write(frame, () => this.releaseFrameWriter(frameWriter));
      else this.socket!.write(frame);
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
      this.answered = true;
      clearTimeout(p.timer);
      p.resolve(frame.subarray(4));
    }
  }
}

export interface ProduceClientOptions {
  clientId: string;
  /** TLS and SASL (kafka.security, resolved); default PLAINTEXT. */
  security?: KafkaSecurity;
  /** Record batch codec (cdc.compression); default none. */
  compression?: Compression;
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
    /** No retry can fix it (a refused login, an untrusted certificate): the hint says which setting to check. */
    readonly fatal: { hint: string } | null = null,
  ) {
    super(message);
  }
}

/** A TLS handshake failure as a fatal ProduceError naming the setting to check. */
function tlsFailure(address: string, err: NodeJS.ErrnoException): Error {
  const code = err.code ?? '';
  if (!code.startsWith('ERR_TLS') && !/CERT|SELF_SIGNED|VERIFY|HOSTNAME/.test(code)) {
    // Not a verification failure (refused, reset, EPROTO from a plaintext listener): say what we tried.
    const plain = code === 'EPROTO' || /wrong version number|packet length too long/i.test(err.message);
    return new ProduceError(
      plain
        ? `Kafka broker ${address} did not answer the TLS handshake (${err.message}): its listener looks like PLAINTEXT or SASL_PLAINTEXT; check kafka.security.protocol`
        : `cannot connect to Kafka broker ${address} over TLS: ${err.message}`,
      null,
      plain ? { hint: 'set kafka.security.protocol to what the broker listener speaks (listener.security.protocol.map)' } : null,
    );
  }
  const hint = TLS_NAME_ERRORS.has(code)
    ? 'the broker certificate does not name this host: connect with the name in its certificate, set kafka.security.tls.servername, or (not recommended) kafka.security.tls.verifyHostname: false'
    : 'the broker certificate is not signed by a CA this client trusts: point kafka.security.tls.ca at the CA that signed it';
  return new ProduceError(
    `Kafka broker ${address} failed TLS verification (${code}: ${err.message}); check kafka.security.tls.${TLS_NAME_ERRORS.has(code) ? 'servername' : 'ca'}`,
    null,
    { hint },
  );
}

/** One idempotent producer (one producer id) over connections to the partition leaders. */
export class ProduceClient {
  private readonly connections = new Map<number, BrokerConnection>();
  private identity: ProducerIdentity | null = null;
  private readonly sequences = new Map<string, number>();
  private readonly requestTimeoutMs: number;
  readonly maxInFlight: number;

  private readonly security: KafkaSecurity;
  private readonly compression: Compression;

  constructor(private readonly options: ProduceClientOptions) {
    this.security = options.security ?? { protocol: 'PLAINTEXT' };
    this.compression = options.compression ?? 'none';
    this.requestTimeoutMs = options.requestTimeoutMs ?? 30_000;
    this.maxInFlight = Math.min(5, Math.max(1, options.maxInFlight ?? 2));
  }

  /** Connects to `brokers` (the partition leaders), checks their API versions and gets a producer id. */
  async connect(brokers: BrokerAddress[]): Promise<void> {
    for (const b of brokers) {
      // The client waits a little longer than the broker's own timeout, so the broker's answer wins.
      const conn = new BrokerConnection(b, this.requestTimeoutMs + 5_000, this.security);
      this.connections.set(b.nodeId, conn);
      await conn.connect();
      const id = conn.nextCorrelationId();
      const { errorCode, versions } = readApiVersions(await conn.request(id, apiVersionsRequest(conn.writer, id, this.options.clientId)));
      if (errorCode !== 0)
        throw new ProduceError(`Kafka broker ${conn.address} refused ApiVersions: ${kafkaErrorName(errorCode)}`, errorCode);
      const needed: [number, number, string][] = [
        [API_PRODUCE, PRODUCE_VERSION, 'Produce'],
        [API_INIT_PRODUCER_ID, INIT_PRODUCER_ID_VERSION, 'InitProducerId'],
      ];
      if (this.security.sasl)
        needed.push(
          [API_SASL_HANDSHAKE, SASL_HANDSHAKE_VERSION, 'SaslHandshake'],
          [API_SASL_AUTHENTICATE, SASL_AUTHENTICATE_VERSION, 'SaslAuthenticate'],
        );
      for (const [api, version, name] of needed) {
        const v = versions.get(api);
        if (!v || v.min > version || v.max < version) {
          throw new ProduceError(
            `Kafka broker ${conn.address} does not speak ${name} v${version} (it supports ${v ? `v${v.min}-v${v.max}` : 'none'}); CDC needs Kafka 2.1 or later`,
            35,
          );
        }
      }
      if (this.security.sasl) await this.authenticate(conn);
    }
    const first = this.connections.values().next().value as BrokerConnection | undefined;
    if (!first) throw new ProduceError('no Kafka broker to produce to', null);
    const id = first.nextCorrelationId();
    const init = readInitProducerId(await first.request(id, initProducerIdRequest(first.writer, id, this.options.clientId)));
    if (init.errorCode !== 0) {
      const known = KAFKA_ERRORS[init.errorCode];
      throw new ProduceError(
        `Kafka refused a producer id (${describeKafkaSecurity(this.security)}): ${kafkaErrorName(init.errorCode)}${known?.hint ? ` (${known.hint})` : ''}`,
        init.errorCode,
      );
    }
    this.identity = { producerId: init.producerId, producerEpoch: init.producerEpoch };
  }

  /** SaslHandshake v1, then the mechanism's messages in SaslAuthenticate v1 requests. */
  private async authenticate(conn: BrokerConnection): Promise<void> {
    const sasl = this.security.sasl!;
    const who = sasl.mechanism === 'OAUTHBEARER' ? 'with the token from kafka.security.sasl.tokenEnv' : `for user '${sasl.username ?? ''}'`;
    const setting =
      sasl.mechanism === 'OAUTHBEARER'
        ? 'kafka.security.sasl.tokenEnv (is the token valid and unexpired?)'
        : 'kafka.security.sasl.username/password';
    let id = conn.nextCorrelationId();
    const hs = readSaslHandshake(await conn.request(id, saslHandshakeRequest(conn.writer, id, this.options.clientId, sasl.mechanism)));
    if (hs.errorCode !== 0) {
      throw new ProduceError(
        `Kafka ${conn.address} does not enable SASL ${sasl.mechanism} (it enables ${hs.mechanisms.join(', ') || 'none'}): check kafka.security.sasl.mechanism`,
        hs.errorCode,
        { hint: `set kafka.security.sasl.mechanism to one of ${hs.mechanisms.join(', ') || 'the mechanisms the broker enables'}` },
      );
    }
    const session = saslSession(sasl);
    let message: Buffer | null = session.start();
    while (message) {
      id = conn.nextCorrelationId();
      const res = readSaslAuthenticate(await conn.request(id, saslAuthenticateRequest(conn.writer, id, this.options.clientId, message)));
      if (res.errorCode !== 0) {
        throw new ProduceError(
          `Kafka ${conn.address} refused SASL ${sasl.mechanism} authentication ${who}${res.errorMessage ? ` (${res.errorMessage})` : ''}: check ${setting}`,
          res.errorCode,
          { hint: `check ${setting} and that the broker knows this principal for ${sasl.mechanism}` },
        );
      }
      try {
        message = session.respond(res.authBytes);
      } catch (err) {
        if (err instanceof SaslProtocolError)
          throw new ProduceError(`Kafka ${conn.address}: SASL ${sasl.mechanism} ${who} failed: ${err.message}; check ${setting}`, null, {
            hint: `check ${setting}`,
          });
        throw err;
      }
    }
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
    const writer = conn.takeFrameWriter();
    const frame = produceRequest(
      writer,
      { correlationId, clientId: this.options.clientId },
      { acks: -1, timeoutMs: this.requestTimeoutMs, timestampMs: Date.now(), producer: this.identity, compression: this.compression },
      withSequences,
    );
    return conn.request(correlationId, frame, writer).then((body) => {
      const results = readProduceResponse(body);
      const bad = results.find((r) => r.errorCode !== 0);
      if (bad) {
        throw new ProduceError(
          `Kafka refused the batch for ${bad.topic}[${bad.partition}]: ${kafkaErrorName(bad.errorCode)}`,
          bad.errorCode,
        );
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
  const fatal = (err instanceof ProduceError ? err.fatal?.hint : undefined) ?? (code === null ? null : fatalKafkaHint({ kafkaCode: code }));
  return new ParityError('PARITY_KAFKA', `Kafka did not acknowledge a batch of ${events} events: ${(err as Error).message}`, {
    cause: err,
    retriable: fatal === null,
    hint:
      (code === null ? undefined : KAFKA_ERRORS[code]?.hint) ??
      fatal ??
      'check that the Kafka brokers are up; CDC replays the unacknowledged events from the replication slot',
  });
}
