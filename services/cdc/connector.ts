/**
 * The CDC connector: PostgreSQL logical replication -> Kafka, run by `parity cdc run`.
 *
 * One process owns one slot. It checks the source, creates the publication and slot (taking the initial
 * snapshot inside the slot's exported snapshot), then runs replication sessions until stopped. A session
 * decodes each transaction, sends its events to Kafka and reports a commit to the slot only when the
 * ack tracker says it and everything before it is durable. Any failure (Kafka, registry, source, a
 * value that cannot be serialized) ends the session without reporting anything further; the next
 * session replays from the slot's confirmed position. That is the whole durability argument: no
 * acknowledgement before Kafka's, no resume from memory.
 */
import { hostname } from 'node:os';
import type pg from 'pg';
import type { Registry } from 'prom-client';
import { ParityError, isParityError, toParityError } from '../core/errors.js';
import { type HealthReport, type StatusServer, startStatusServer } from '../core/http.js';
import type { Logger } from '../core/log.js';
import { type Lsn, formatLsn } from '../core/lsn.js';
import { backoffDelay, sleep } from '../core/retry.js';
import { type Spec, controlDatabase } from '../core/spec.js';
import { messageTopic, transactionTopic } from '../core/topics.js';
import { regexListFilter } from '../core/regex-list.js';
import { createPgPool } from '../core/clients.js';
import { TypeResolver } from '../../connectors/postgres-source/catalog.js';
import type { RelationState } from '../../connectors/postgres-source/change-builder.js';
import { IncrementalSnapshotter } from '../../connectors/postgres-source/incremental-snapshot.js';
import { relationFromCatalog, relationFromMessage } from '../../connectors/postgres-source/relations.js';
import { ReplicationStream } from '../../connectors/postgres-source/replication-stream.js';
import {
  type TableRef,
  assertSlotUsable,
  checkSource,
  createSlot,
  ensurePublication,
  slotInfo,
  slotLag,
  validatePublicationName,
  validateSlotName,
} from '../../connectors/postgres-source/slot.js';
import { RESUME_INITIAL_REASON } from './status.js';
import {
  checkpointInitial,
  enqueueSnapshot,
  ensureSnapshotTables,
  initialSnapshotState,
  writeCdcStatus,
} from '../../connectors/postgres-source/snapshot-store.js';
import { type ChangeEncoder, type MessageEncoder, type TableEncoder, createChangeEncoder } from '../../connectors/kafka-sink/serde.js';
import type { RegistryClient } from '../../connectors/kafka-sink/registry-client.js';
import { ensureTopics, partitionCounts } from '../../connectors/kafka-sink/admin.js';
import { createKafkaSink } from '../../connectors/kafka-sink/create-sink.js';
import type { ChangeSink, SinkProducer } from '../../connectors/kafka-sink/sink.js';
import type { KafkaClients } from '../core/clients.js';
import { type CdcMetrics, cdcMetrics } from './metrics.js';
import { EnvelopeBuilder } from './envelope.js';
import { takeInitialSnapshot } from './initial-snapshot.js';
import { ChangePipeline, HEARTBEAT_PREFIX } from './pipeline.js';

export { HEARTBEAT_PREFIX } from './pipeline.js';
export { CONNECTOR_VERSION } from './envelope.js';

/** True when the spec asks for Debezium's transaction metadata (its topic and blocks). */
function transactionMetadata(spec: Spec): boolean {
  return spec.cdc.encoding === 'debezium' && spec.cdc.debezium['provide.transaction.metadata'];
}

/** The tables a spec captures: the source table plus cdc.tables, as "schema.table". */
export function capturedTables(spec: Spec): TableRef[] {
  const out = new Map<string, TableRef>();
  out.set(`${spec.source.schema}.${spec.source.table}`, { schema: spec.source.schema, table: spec.source.table });
  for (const t of spec.cdc.tables) {
    const [schema, table] = t.split('.') as [string, string];
    out.set(`${schema}.${table}`, { schema, table });
  }
  return [...out.values()];
}

export interface CdcConnectorOptions {
  spec: Spec;
  logger: Logger;
  metrics: Registry;
  kafka: KafkaClients;
  /** Which producer sends the events (default: DEFAULT_SINK_PRODUCER in create-sink.ts). */
  producer?: SinkProducer;
  registry: RegistryClient;
  /** Set REPLICA IDENTITY FULL on captured tables that lack complete before-images. */
  setReplicaIdentityFull?: boolean;
  /** Overrides spec.cdc.statusPort (0 = any free port). */
  statusPort?: number;
  /** Events in flight to Kafka before the decoder waits (memory bound). */
  maxInFlightEvents?: number;
  /** How often to write the status row and refresh lag gauges. */
  statusEveryMs?: number;
  /** Sink batch size (messages per produce request). */
  maxBatchMessages?: number;
}

type State = 'starting' | 'snapshotting' | 'streaming' | 'paused' | 'stopping' | 'stopped';

/** /readyz turns 503 while the slot lags more than this (the stream is behind, not broken). */
export const READY_MAX_LAG_SECONDS = 60;
/** How long a session started after a pause runs without failing before /healthz leaves the pause. */
const SESSION_PROVEN_MS = 5_000;

export class CdcConnector {
  private readonly spec: Spec;
  private readonly log: Logger;
  private readonly m: CdcMetrics;
  private readonly tables: TableRef[];
  private readonly tableNames: Set<string>;
  /** The logical decoding message prefixes written to `<prefix>.message` (debezium encoding); null: none. */
  private readonly messageIncludes: ((prefix: string) => boolean) | null;
  private readonly encoder: ChangeEncoder;
  private readonly maxInFlight: number;
  private source!: pg.Pool;
  private control!: pg.Pool;
  private types!: TypeResolver;
  private dbName = '';
  private partitions = new Map<string, number>();
  private state: State = 'starting';
  private reason: string | undefined;
  private hint: string | undefined;
  private server: StatusServer | null = null;
  private snapshotter!: IncrementalSnapshotter;
  private readonly stopController = new AbortController();
  private pipeline: ChangePipeline | null = null;
  private envelopes!: EnvelopeBuilder;
  private stream: ReplicationStream | null = null;
  private sink: ChangeSink | null = null;
  private eventsAcked = 0;
  private lastLag: { bytes: number; seconds: number } | null = null;
  /** Catalog-built relations by "schema.table" (snapshots), refreshed by Relation messages. */
  private readonly relationsByName = new Map<string, RelationState>();

  constructor(private readonly options: CdcConnectorOptions) {
    this.spec = options.spec;
    this.log = options.logger;
    this.m = cdcMetrics(options.metrics);
    this.tables = capturedTables(options.spec);
    this.tableNames = new Set(this.tables.map((t) => `${t.schema}.${t.table}`));
    const debezium = options.spec.cdc.debezium;
    this.messageIncludes =
      options.spec.cdc.encoding === 'debezium'
        ? regexListFilter(debezium['message.prefix.include.list'], debezium['message.prefix.exclude.list'])
        : null;
    this.encoder = createChangeEncoder({
      registry: options.registry,
      format: options.spec.cdc.format,
      fieldNameAdjustment: options.spec.cdc.debezium['field.name.adjustment.mode'],
      ...(transactionMetadata(options.spec) ? { transactionTopic: transactionTopic(options.spec.cdc.topicPrefix) } : {}),
    });
    this.maxInFlight = options.maxInFlightEvents ?? 5_000;
  }

  /** For /healthz: paused states say why and what to do. */
  health(): HealthReport {
    const ok = this.state === 'starting' || this.state === 'snapshotting' || this.state === 'streaming';
    return {
      ok,
      status: this.state,
      ...(this.reason ? { reason: this.hint ? `${this.reason} (what to do: ${this.hint})` : this.reason } : {}),
      details: {
        slot: this.spec.cdc.slot,
        durableLsn: this.pipeline ? formatLsn(this.pipeline.tracker.durableLsn) : null,
        inFlightEvents: this.pipeline?.tracker.inFlightEvents ?? 0,
        eventsAcked: this.eventsAcked,
        lagBytes: this.lastLag?.bytes ?? null,
        lagSeconds: this.lastLag?.seconds ?? null,
        snapshot: this.snapshotter?.current ? { request: this.snapshotter.current.id, table: this.snapshotter.current.tableName } : null,
      },
    };
  }

  /** For /readyz: streaming and caught up; paused, starting or lagging is not ready, with the reason. */
  readiness(): { ok: boolean; status: string; reason?: string } {
    if (this.state !== 'streaming') {
      return {
        ok: false,
        status: this.state,
        reason: this.reason ? (this.hint ? `${this.reason} (what to do: ${this.hint})` : this.reason) : `not streaming yet (${this.state})`,
      };
    }
    const lag = this.lastLag?.seconds;
    if (lag !== undefined && lag !== null && lag > READY_MAX_LAG_SECONDS) {
      return {
        ok: false,
        status: 'lagging',
        reason: `the oldest change not yet in Kafka is ${Math.round(lag)} s old (ready below ${READY_MAX_LAG_SECONDS} s)`,
      };
    }
    return { ok: true, status: 'streaming' };
  }

  get statusUrl(): string | null {
    return this.server?.url ?? null;
  }

  /** Asks `run` to finish: in-flight events are drained and the durable position reported. */
  stop(): void {
    if (this.stopController.signal.aborted) return;
    this.setState('stopping');
    this.stopController.abort();
    const stream = this.stream;
    const sink = this.sink;
    if (stream && sink) {
      // Let in-flight sends finish so their transactions become durable, report that, then close.
      void (async () => {
        await Promise.race([sink.drained(), sleep(10_000)]);
        await stream.stop().catch(() => undefined);
      })();
    }
  }

  /** Runs until `stop()`. Throws only for problems no retry can fix (configuration, privileges). */
  async run(): Promise<void> {
    const signal = this.stopController.signal;
    const spec = this.spec;
    validateSlotName(spec.cdc.slot);
    validatePublicationName(spec.cdc.publication);
    this.source = createPgPool(spec.source.database, { applicationName: 'parity-cdc', max: 4 });
    const controlUrl = controlDatabase(spec);
    this.control = controlUrl === spec.source.database ? this.source : createPgPool(controlUrl, { applicationName: 'parity-cdc', max: 2 });
    const timers: NodeJS.Timeout[] = [];
    try {
      this.server = await startStatusServer({
        registry: this.options.metrics,
        health: () => this.health(),
        ready: () => this.readiness(),
        live: () => ({ ok: this.state !== 'stopped', status: this.state }),
        port: this.options.statusPort ?? spec.cdc.statusPort ?? 0,
      });
      this.log.info({ status: this.server.url }, 'cdc status server listening');
      await this.retrying(() => this.prepare(), signal);
      this.envelopes = new EnvelopeBuilder({
        topicPrefix: spec.cdc.topicPrefix,
        db: this.dbName,
        partitions: this.partitions,
        defaultPartitions: spec.cdc.partitions,
        debezium: spec.cdc.debezium,
      });
      this.snapshotter = new IncrementalSnapshotter({
        source: this.source,
        control: this.control,
        controlSchema: spec.control.schema,
        slot: spec.cdc.slot,
        logger: this.log,
        relationFor: (table) => this.relationByName(table),
        onRows: (table, rows) => this.m.snapshotRows.inc({ table, kind: 'incremental' }, rows),
      });
      if (spec.cdc.heartbeatIntervalSeconds > 0) {
        timers.push(setInterval(() => void this.heartbeat(), spec.cdc.heartbeatIntervalSeconds * 1000));
      }
      timers.push(setInterval(() => void this.refreshStatus(), this.options.statusEveryMs ?? 5_000));
      await this.ensureSlot(signal);
      const snapshots = this.snapshotter.run(signal);
      let attempt = 0;
      while (!signal.aborted) {
        const started = Date.now();
        try {
          await this.session(signal);
        } catch (err) {
          if (signal.aborted) break;
          if (Date.now() - started > 30_000) attempt = 0;
          await this.backoff(toParityError(err, 'PARITY_CONNECTION'), attempt++);
        }
      }
      await snapshots;
    } catch (err) {
      // A stop requested while starting up is a clean stop, not a failure.
      if (!signal.aborted) throw err;
    } finally {
      for (const t of timers) clearInterval(t);
      await this.refreshStatus().catch(() => undefined);
      this.setState('stopped');
      await this.server?.close();
      await this.source.end().catch(() => undefined);
      if (this.control !== this.source) await this.control.end().catch(() => undefined);
    }
  }

  private setState(state: State, reason?: string, hint?: string): void {
    this.state = state;
    this.reason = reason;
    this.hint = hint;
    this.m.paused.set(state === 'paused' ? 1 : 0);
  }

  private pause(error: ParityError, retryInMs: number): void {
    const reason = error.message;
    let hint = error.hint;
    if (error.code === 'PARITY_KAFKA') hint ??= 'check the Kafka brokers (infra.kafka.brokers); parity resumes by itself';
    if (error.code === 'PARITY_SLOT_IN_USE') hint ??= 'another process streams from this slot; stop it (one slot per pipeline)';
    hint = `${hint ?? 'parity retries by itself'}; retrying in ${Math.round(retryInMs / 100) / 10} s`;
    if (this.reason !== reason) this.log.warn({ code: error.code, hint }, `cdc paused: ${reason}`);
    this.setState('paused', reason, hint);
  }

  /** Checks, publication, control tables, topics. Errors here are configuration problems: fatal. */
  private async prepare(): Promise<void> {
    const spec = this.spec;
    const client = await this.source.connect().catch((err: unknown) => {
      throw new ParityError('PARITY_CONNECTION', `cannot connect to the source database: ${(err as Error).message}`, {
        cause: err,
        hint: 'check source.database in the spec',
      });
    });
    try {
      const check = await checkSource(client, this.tables, { setReplicaIdentityFull: this.options.setReplicaIdentityFull ?? false });
      for (const w of check.warnings) this.log.warn(w);
      const { rows } = await client.query<{ db: string }>('SELECT current_database() AS db');
      this.dbName = rows[0]!.db;
      await ensurePublication(client, spec.cdc.publication, this.tables);
    } finally {
      client.release();
    }
    await ensureSnapshotTables(this.control, spec.control.schema);
    this.types = new TypeResolver(this.source, { encoding: spec.cdc.encoding, debezium: spec.cdc.debezium });
    for (const t of this.tables) await this.relationByName(`${t.schema}.${t.table}`, true);
    const topics = [...this.relationsByName.values()].map((r) => r.shape.topic);
    if (transactionMetadata(spec)) topics.push(transactionTopic(spec.cdc.topicPrefix));
    await ensureTopics(this.options.kafka, topics, spec.cdc.partitions);
    this.partitions = await partitionCounts(this.options.kafka, topics);
  }

  private async relationByName(name: string, refresh = false): Promise<RelationState> {
    const cached = this.relationsByName.get(name);
    if (cached && !refresh) return cached;
    const [schema, table] = name.split('.') as [string, string];
    const relation = await relationFromCatalog(this.source, this.types, this.spec.cdc.topicPrefix, schema, table);
    this.relationsByName.set(name, relation);
    return relation;
  }

  /** Registers a relation's schemas, pausing (without acknowledging anything) while the registry refuses. */
  private encoderFor(relation: RelationState, signal: AbortSignal): Promise<TableEncoder> {
    return this.pausingWhileRefused(() => this.encoder.forTable(relation.shape), signal);
  }

  /**
   * The encoders of Debezium's `<prefix>.message` topic: created at the first logical decoding message
   * (as Debezium's topic is auto-created then), its schemas registered; pausing like `encoderFor`.
   */
  private messageEncoder(signal: AbortSignal): Promise<MessageEncoder> {
    return this.pausingWhileRefused(async () => {
      const topic = messageTopic(this.spec.cdc.topicPrefix);
      if (!this.partitions.has(topic)) {
        await ensureTopics(this.options.kafka, [topic], this.spec.cdc.partitions);
        for (const [name, count] of await partitionCounts(this.options.kafka, [topic])) this.partitions.set(name, count);
      }
      return this.encoder.forMessages(topic, this.spec.cdc.debezium['binary.handling.mode'] === 'bytes' ? 'bytes' : 'string');
    }, signal);
  }

  /**
   * Runs `register` until it succeeds, paused (nothing acknowledged) while the registry or Kafka refuses.
   * Ends only its own pause: one a session inherited from the last (see `streamingOnceProven`) stays.
   */
  private async pausingWhileRefused<T>(register: () => Promise<T>, signal: AbortSignal): Promise<T> {
    for (let attempt = 0; ; attempt++) {
      try {
        const encoder = await register();
        if (attempt > 0 && this.state === 'paused') this.setState('streaming');
        return encoder;
      } catch (err) {
        const error = toParityError(err, 'PARITY_CONNECTION');
        if (signal.aborted || !error.retriable) throw error;
        await this.backoff(error, Math.min(attempt, 5));
        if (signal.aborted) throw new ParityError('PARITY_ABORTED', 'stopping');
      }
    }
  }

  /**
   * Runs `fn` until it succeeds, retrying retriable failures (Kafka, registry or database unreachable)
   * with backoff while /healthz says why; anything else (configuration, privileges) is thrown.
   */
  private async retrying(fn: () => Promise<void>, signal: AbortSignal): Promise<void> {
    for (let attempt = 0; ; attempt++) {
      try {
        await fn();
        return;
      } catch (err) {
        const error = toParityError(err);
        if (!error.retriable || signal.aborted) throw error;
        await this.backoff(error, Math.min(attempt, 6));
        if (signal.aborted) throw new ParityError('PARITY_ABORTED', 'stopped before the connector was ready');
      }
    }
  }

  /** Creates the slot (with the initial snapshot) or resumes an interrupted snapshot incrementally. */
  private async ensureSlot(signal: AbortSignal): Promise<void> {
    const spec = this.spec;
    const schema = spec.control.schema;
    for (let attempt = 0; !signal.aborted; attempt++) {
      try {
        const info = await slotInfo(this.source, spec.cdc.slot);
        if (!info) {
          if (spec.cdc.snapshot === 'initial') await this.initialSnapshot(signal);
          else await createSlot(this.source, spec.cdc.slot);
          return;
        }
        await assertSlotUsable(this.source, info);
        const unfinished = (await initialSnapshotState(this.control, schema, spec.cdc.slot)).filter(
          (s) => s.state === 'pending' || s.state === 'running',
        );
        for (const s of unfinished) {
          // The exported snapshot died with the previous process: read the rest by watermarks.
          await enqueueSnapshot(
            this.control,
            schema,
            spec.cdc.slot,
            s.tableName,
            spec.cdc.snapshotChunkRows,
            RESUME_INITIAL_REASON,
            s.lastKey,
          );
          await checkpointInitial(this.control, schema, spec.cdc.slot, s.tableName, { state: 'handed-over' });
          this.log.info(
            { table: s.tableName, lastKey: s.lastKey },
            'initial snapshot was interrupted; the rest continues as an incremental snapshot',
          );
        }
        return;
      } catch (err) {
        const error = toParityError(err, 'PARITY_CONNECTION');
        if (!error.retriable || signal.aborted) throw error;
        await this.backoff(error, attempt);
      }
    }
  }

  /** Creates the slot with its exported snapshot and sends every captured row (initial-snapshot.ts). */
  private async initialSnapshot(signal: AbortSignal): Promise<void> {
    this.setState('snapshotting');
    await takeInitialSnapshot(
      {
        spec: this.spec,
        source: this.source,
        control: this.control,
        logger: this.log,
        metrics: this.m,
        envelopes: this.envelopes,
        tables: this.tables.map((t) => `${t.schema}.${t.table}`),
        relationByName: (name) => this.relationByName(name),
        encoderFor: (relation, s) => this.encoderFor(relation, s),
        newSink: () => this.newSink(),
        topics: () => [...this.partitions.keys()],
        backoff: (error, attempt) => this.backoff(error, Math.min(attempt, 6)),
        resumed: () => {
          if (this.state === 'paused') this.setState('snapshotting');
        },
      },
      signal,
    );
  }

  /** Counts a retriable failure, pauses with its reason (/healthz says why) and waits the backoff of `attempt`. */
  private async backoff(error: ParityError, attempt: number): Promise<void> {
    this.m.errors.inc({ code: error.code });
    const delay = backoffDelay(attempt, 500, 10_000);
    this.pause(error, delay);
    await sleep(delay);
  }

  private newSink(): ChangeSink {
    const { kafka, producer, maxBatchMessages, spec } = this.options;
    return createKafkaSink({
      kafka,
      logger: this.log,
      compression: spec.cdc.compression,
      ...(producer ? { producer } : {}),
      ...(maxBatchMessages === undefined ? {} : { maxBatchMessages }),
    });
  }

  /**
   * One replication session: from the slot's confirmed position until a failure or stop. Composes the
   * session's parts: stream -> pipeline (pipeline.ts) -> ack tracker -> stream.
   */
  private async session(signal: AbortSignal): Promise<void> {
    this.m.sessions.inc();
    const start = await this.usableSlotPosition();
    const sink = this.newSink();
    sink.onBatch = (messages, seconds) => {
      this.m.kafkaBatchSeconds.observe(seconds);
      this.m.kafkaBatchMessages.observe(messages);
    };
    await sink.connect([...this.partitions.keys()]);
    // Ends with the session, so nothing started by this session (a registry retry loop) outlives it.
    const sessionAbort = new AbortController();
    const onStop = () => sessionAbort.abort();
    signal.addEventListener('abort', onStop, { once: true });
    const spec = this.spec;
    const stream: ReplicationStream = new ReplicationStream({
      connectionString: spec.source.database,
      slot: spec.cdc.slot,
      publication: spec.cdc.publication,
      logger: this.log,
      startLsn: start,
      // A change handled without waiting returns no promise (see ChangePipeline.handle).
      onMessage: (message, lsn) => pipeline.handle(message, lsn),
      idle: () => pipeline.idle,
    });
    const pipeline: ChangePipeline = this.pipelineFor(start, sink, sessionAbort.signal, stream);
    this.pipeline = pipeline;
    this.stream = stream;
    this.sink = sink;
    // stop() can land while this session is still connecting (before this.stream is set): the stream
    // then never starts, and one that started is drained and stopped here as stop() would.
    const stopStream = () =>
      void (async () => {
        await Promise.race([sink.drained(), sleep(10_000)]);
        await stream.stop().catch(() => undefined);
      })();
    signal.addEventListener('abort', stopStream, { once: true });
    const proving = this.streamingOnceProven();
    this.log.info({ slot: spec.cdc.slot, from: formatLsn(start) }, 'replication session started');
    let failure: unknown = null;
    try {
      if (!signal.aborted) await stream.run();
    } catch (err) {
      failure = err;
    } finally {
      clearTimeout(proving);
      sessionAbort.abort();
      signal.removeEventListener('abort', onStop);
      signal.removeEventListener('abort', stopStream);
      await this.endSession(signal, failure, pipeline, stream, sink);
    }
    if (failure && !signal.aborted) throw this.sessionError(failure);
  }

  /**
   * Says `streaming` for a new session, except after a pause: a change that failed the last session (a
   * value the encoding cannot hold) fails this one within moments, so /healthz keeps the pause and its
   * reason until the session proves itself, by a durable advance or by running `SESSION_PROVEN_MS`
   * without failing, instead of flickering to `streaming` between retries. Returns the timer to clear.
   */
  private streamingOnceProven(): NodeJS.Timeout | undefined {
    this.pausedReasonToClear = undefined;
    if (this.state !== 'paused') {
      this.setState('streaming');
      return undefined;
    }
    this.pausedReasonToClear = this.reason;
    return setTimeout(() => this.sessionProven(), SESSION_PROVEN_MS);
  }

  /** The session delivered (or ran long enough): a pause still showing the reason it started with ends. */
  private sessionProven(): void {
    if (this.pausedReasonToClear === undefined) return;
    if (this.state === 'paused' && this.reason === this.pausedReasonToClear) this.setState('streaming');
    this.pausedReasonToClear = undefined;
  }

  /** The slot's confirmed flush position; a missing or busy slot ends the session with the reason. */
  private async usableSlotPosition(): Promise<Lsn> {
    const slot = this.spec.cdc.slot;
    const info = await slotInfo(this.source, slot);
    if (!info) {
      throw new ParityError('PARITY_SLOT_MISSING', `replication slot ${slot} disappeared`, {
        retriable: false,
        hint: 'someone dropped the slot: changes since were lost to this pipeline; restart with a new snapshot (cdc.snapshot: initial)',
      });
    }
    if (info.active) throw new ParityError('PARITY_SLOT_IN_USE', `replication slot ${slot} is in use by PID ${info.activePid}`);
    return info.confirmedFlushLsn ?? 0n;
  }

  /** The session's message path; its durable positions go to `stream`, its failures end it. */
  private pipelineFor(start: Lsn, sink: ChangeSink, signal: AbortSignal, stream: ReplicationStream): ChangePipeline {
    return new ChangePipeline({
      startLsn: start,
      sink,
      envelopes: this.envelopes,
      snapshotter: this.snapshotter,
      metrics: this.m,
      maxInFlight: this.maxInFlight,
      signal,
      relations: {
        captured: (name) => this.tableNames.has(name),
        fromMessage: async (message) => {
          const relation = await relationFromMessage(this.source, this.types, this.spec.cdc.topicPrefix, message);
          this.relationsByName.set(relation.name, relation);
          return relation;
        },
        encoderFor: (relation, s) => this.encoderFor(relation, s),
      },
      ...(this.messageIncludes
        ? { messages: { includes: this.messageIncludes, encoder: (s: AbortSignal) => this.messageEncoder(s) } }
        : {}),
      onDurable: (lsn) => {
        this.lastDurableAt = Date.now();
        this.sessionProven();
        stream.durableAdvanced(lsn);
      },
      onFail: (err) => stream.fail(err),
      onAcked: (count) => {
        this.eventsAcked += count;
      },
    });
  }

  /** Graceful stop: in-flight sends finish and their durable position is reported; a failure reports nothing more. */
  private async endSession(
    signal: AbortSignal,
    failure: unknown,
    pipeline: ChangePipeline,
    stream: ReplicationStream,
    sink: ChangeSink,
  ): Promise<void> {
    this.snapshotter.reset(failure ?? new Error('session ended'));
    pipeline.close();
    if (signal.aborted) {
      await Promise.race([sink.drained(), sleep(10_000)]);
      await stream.stop().catch(() => undefined);
    } else {
      await stream.abort();
    }
    await sink.close();
    this.stream = null;
    this.sink = null;
  }

  private sessionError(failure: unknown): ParityError {
    const code = (failure as { code?: string }).code;
    if (code === '55006')
      return new ParityError('PARITY_SLOT_IN_USE', `replication slot ${this.spec.cdc.slot} is in use: ${(failure as Error).message}`, {
        cause: failure,
      });
    if (isParityError(failure)) return failure;
    return new ParityError('PARITY_CONNECTION', `replication session ended: ${(failure as Error).message}`, { cause: failure });
  }

  private async heartbeat(): Promise<void> {
    try {
      await this.source.query('SELECT pg_catalog.pg_logical_emit_message(true, $1, $2)', [HEARTBEAT_PREFIX, new Date().toISOString()]);
      this.m.heartbeats.inc({ stage: 'emitted' });
    } catch (err) {
      this.m.errors.inc({ code: 'PARITY_CONNECTION' });
      this.log.warn({ err: (err as Error).message }, 'heartbeat failed');
    }
  }

  private async refreshStatus(): Promise<void> {
    const tracker = this.pipeline?.tracker;
    if (tracker) {
      this.m.inFlightEvents.set(tracker.inFlightEvents);
      this.m.inFlightTransactions.set(tracker.inFlightTransactions);
      this.m.decoderQueue.set(this.stream?.takeMaxQueued() ?? 0);
      this.m.durableLsn.set(Number(tracker.durableLsn));
    }
    try {
      const lag = await slotLag(this.source, this.spec.cdc.slot);
      if (lag) {
        const oldest = tracker?.oldest();
        // Seconds: age of the oldest transaction received and not yet durable. When nothing is in
        // flight but WAL is piling up beyond a segment, the slot is behind the server: use the time
        // since the last durable advance as a lower bound.
        let seconds = 0;
        if (oldest) seconds = Math.max(0, Date.now() / 1000 - Number(oldest.commitTimeUs) / 1e6);
        else if (lag.lagBytes > 16 * 1024 * 1024) seconds = (Date.now() - this.lastDurableAt) / 1000;
        this.lastLag = { bytes: lag.lagBytes, seconds };
        this.m.slotLagBytes.set(lag.lagBytes);
        this.m.slotRetainedBytes.set(lag.retainedBytes);
        this.m.slotLagSeconds.set(seconds);
      }
      await writeCdcStatus(this.control, this.spec.control.schema, {
        slot: this.spec.cdc.slot,
        pid: process.pid,
        host: hostname(),
        state: this.state,
        reason: this.reason ?? null,
        durableLsn: tracker ? formatLsn(tracker.durableLsn) : null,
        lagBytes: this.lastLag?.bytes ?? null,
        lagSeconds: this.lastLag?.seconds ?? null,
        events: this.eventsAcked,
      });
    } catch (err) {
      this.log.debug({ err: (err as Error).message }, 'status refresh failed');
    }
  }

  private lastDurableAt = Date.now();
  /** The pause a new session keeps until it proves itself (see `streamingOnceProven`). */
  private pausedReasonToClear: string | undefined;
}
