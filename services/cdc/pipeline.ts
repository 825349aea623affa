/**
 * The message path of one replication session, in the order a change travels:
 *
 *   decode (replication-stream.ts) -> change (change-builder.ts) -> envelope (envelope.ts)
 *     -> sink (kafka-sink/sink.ts) -> ack tracker (ack-tracker.ts)
 *
 * and the commit LSN's route: the stream hands each pgoutput message to `handle`; a Commit registers
 * its end LSN with the ack tracker; the tracker's onDurable carries the durable LSN (once the
 * transaction and every earlier one are acknowledged by Kafka) to `options.onDurable`, which the
 * connector wires to the stream's `durableAdvanced`. Nothing else reports a position to the slot.
 */
import type { Op } from '../core/change-event.js';
import { type Lsn, parseLsn } from '../core/lsn.js';
import { AckTracker, type TrackedTransaction } from '../../connectors/postgres-source/ack-tracker.js';
import { type RelationState, type SourceChange, changesOf } from '../../connectors/postgres-source/change-builder.js';
import { type IncrementalSnapshotter, WATERMARK_PREFIX } from '../../connectors/postgres-source/incremental-snapshot.js';
import type { PgoutputMessage } from '../../connectors/postgres-source/replication-stream.js';
import type { ConnectRecordEncoder, MessageEncoder, TableEncoder } from '../../connectors/kafka-sink/serde.js';
import type { ChangeSink } from '../../connectors/kafka-sink/sink.js';
import { type EnvelopeBuilder, type SnapshotMarker, type TransactionContext, transactionContext } from './envelope.js';
import type { CdcMetrics } from './metrics.js';

/** Logical messages with this prefix are the connector's heartbeats (counted, never sent). */
export const HEARTBEAT_PREFIX = 'parity.heartbeat';
/** parity's own logical messages (heartbeats, snapshot watermarks, the reverse cutover's flip): never written to Kafka. */
export const PARITY_MESSAGE_PREFIX = 'parity.';

type Message<T extends PgoutputMessage['tag']> = Extract<PgoutputMessage, { tag: T }>;

/** What the pipeline needs to know about captured tables (the connector's relation cache). */
export interface RelationSource {
  /** True when "schema.table" is captured by this pipeline. */
  captured(name: string): boolean;
  /** The relation a Relation message describes (also refreshes the connector's cache by name). */
  fromMessage(message: Message<'relation'>): Promise<RelationState>;
  /** The relation's encoder, its schemas registered (waits, paused, while the registry refuses). */
  encoderFor(relation: RelationState, signal: AbortSignal): Promise<TableEncoder>;
}

export interface ChangePipelineOptions {
  /** The slot's confirmed flush LSN: where the ack tracker starts. */
  startLsn: Lsn;
  sink: ChangeSink;
  envelopes: EnvelopeBuilder;
  relations: RelationSource;
  snapshotter: IncrementalSnapshotter;
  metrics: CdcMetrics;
  /** Events in flight to Kafka before the decoder waits (memory bound). */
  maxInFlight: number;
  /** Aborted when the session ends: later messages are left unacknowledged, the next session replays them. */
  signal: AbortSignal;
  /** The durable position advanced (carried by the ack tracker's onDurable): the stream reports it. */
  onDurable: (lsn: Lsn) => void;
  /** A send failed: its transaction can never become durable, the session must end. */
  onFail: (err: unknown) => void;
  /** One event was acknowledged by Kafka (the connector's running count). */
  onAcked: (count: number) => void;
  /**
   * Logical decoding messages (debezium encoding): which prefixes are written, and the encoders of
   * `<prefix>.message` (the topic created and its schemas registered at the first message). Absent:
   * none are written (exact-text).
   */
  messages?: {
    includes(prefix: string): boolean;
    encoder(signal: AbortSignal): Promise<MessageEncoder>;
  };
}

interface OpenTransaction extends TransactionContext {
  tracked: TrackedTransaction;
  commitLsn: Lsn;
  ordinal: number;
  /** Debezium's transaction topic, once this transaction's BEGIN record was sent. */
  transactions?: ConnectRecordEncoder;
  /** Ack callbacks per table and op (see EventAck). */
  acks?: Map<number, EventAck>;
}

/** The counter of records that are not change events. */
const NOT_COUNTED = { inc: (_count?: number) => undefined };

/** A small number per op, for per-transaction lookups without building strings. */
const OP_SLOTS: Record<Op, number> = { c: 0, u: 1, d: 2, r: 3, t: 4 };

/** One callbacks object per (transaction, table, op), not a pair of closures per event. */
class EventAck {
  constructor(
    private readonly pipeline: ChangePipeline,
    private readonly tx: OpenTransaction,
    private readonly counter: { inc: (count?: number) => void },
    private readonly commitMs: number,
  ) {}

  onAck(count = 1): void {
    this.pipeline.acked(this.tx.tracked, this.counter, this.commitMs, count);
  }

  onFail(err: unknown): void {
    this.pipeline.sendFailed(this.tx.tracked, err);
  }
}

/** One session's message path: see the module comment for the order and the commit LSN's route. */
export class ChangePipeline {
  /** The only judge of how far the slot may advance (read by the connector's status). */
  readonly tracker: AckTracker;
  private readonly relations = new Map<number, RelationState>();
  private readonly encoders = new Map<number, TableEncoder>();
  private readonly ignored = new Set<number>();
  private readonly eventCounters = new Map<string, { inc: (count?: number) => void }>();
  private current: OpenTransaction | null = null;

  constructor(private readonly options: ChangePipelineOptions) {
    this.tracker = new AckTracker(options.startLsn, { onDurable: (lsn) => options.onDurable(lsn) });
  }

  /** True when nothing received waits for Kafka (the stream may then confirm an idle keepalive's WAL end). */
  get idle(): boolean {
    return this.tracker.idle && this.options.sink.inFlight === 0;
  }

  /**
   * Handles one pgoutput message, in WAL order (the stream awaits it before the next). A row change
   * is handled synchronously unless it has to wait (backpressure, an encoder to register, Debezium's
   * transaction topic): then the returned promise settles once it is handled. No promise per event
   * otherwise, where an async chain of four made four.
   */
  handle(message: PgoutputMessage, lsn: Lsn): Promise<void> | undefined {
    if (this.options.signal.aborted) return;
    switch (message.tag) {
      case 'begin':
        this.begin(message);
        return;
      case 'commit':
        return this.commit(message);
      case 'relation':
        return this.relation(message);
      case 'message':
        return this.logicalMessage(message, lsn);
      case 'insert':
      case 'update':
      case 'delete':
      case 'truncate':
        return this.rowChanges(message, lsn);
      default:
        return;
    }
  }

  /** Ends the session's waits (backpressure) so a stopping session does not hang. */
  close(): void {
    this.tracker.releaseWaiters();
  }

  /** Kafka acknowledged one event (called by EventAck). */
  acked(tx: TrackedTransaction, counter: { inc: (count?: number) => void }, commitMs: number, count: number): void {
    this.tracker.acked(tx, count);
    this.options.onAcked(count);
    counter.inc(count);
    // Every event of the run was acknowledged at the same moment: one latency, observed once per event.
    const seconds = Math.max(0, Date.now() - commitMs) / 1000;
    const histogram = this.options.metrics.commitToAck;
    for (let i = 0; i < count; i++) histogram.observe(seconds);
  }

  /** A send failed (called by EventAck): the transaction is poisoned and the session ends. */
  sendFailed(tx: TrackedTransaction, err: unknown): void {
    this.tracker.failed(tx);
    this.options.onFail(err);
  }

  private begin(message: Message<'begin'>): void {
    const commitTimeUs = BigInt(message.commitTime as bigint);
    const xid = message.xid >>> 0;
    const commitLsn = parseLsn(message.commitLsn!);
    this.current = {
      tracked: this.tracker.begin(xid, commitTimeUs),
      commitLsn,
      ordinal: 0,
      ...transactionContext(commitLsn, xid, commitTimeUs),
    };
  }

  // The commit LSN's only way towards the slot: the tracker decides when it is durable (onDurable).
  private async commit(message: Message<'commit'>): Promise<void> {
    const tx = this.current;
    if (!tx) throw new Error('Commit without Begin');
    if (tx.transactions) {
      // Debezium's END record is part of the transaction: the slot passes it only once Kafka has it.
      const end = this.options.envelopes.transactionMessage(tx.transactions, tx, 'END', parseLsn(message.commitEndLsn!));
      if (end) await this.sendRecord(end, tx);
    }
    if (tx.ordinal > 0) this.options.envelopes.committed(parseLsn(message.commitEndLsn!));
    // The incremental snapshot waits until the transactions before its LOW watermark are visible.
    if (tx.xid !== null) this.options.snapshotter.onCommitted(tx.xid);
    this.tracker.commit(tx.tracked, parseLsn(message.commitEndLsn!));
    this.current = null;
  }

  private async relation(message: Message<'relation'>): Promise<void> {
    if (!this.options.relations.captured(`${message.schema}.${message.name}`)) {
      this.ignored.add(message.relationOid);
      return;
    }
    const relation = await this.options.relations.fromMessage(message);
    this.relations.set(relation.oid, relation);
    this.encoders.set(relation.oid, await this.options.relations.encoderFor(relation, this.options.signal));
  }

  /**
   * Logical decoding messages: parity's own (`parity.*`) are never written — heartbeats are counted, a
   * watermark may close an incremental snapshot chunk, whose rows go out here; any other prefix goes to
   * `<prefix>.message` as Debezium writes it (debezium encoding, `message.prefix.include/exclude.list`).
   */
  private async logicalMessage(message: Message<'message'>, lsn: Lsn): Promise<void> {
    const tx = message.transactional ? this.current : null;
    if (message.transactional && !tx) throw new Error('a transactional logical decoding message outside a transaction');
    if (message.prefix.startsWith(PARITY_MESSAGE_PREFIX)) {
      if (!tx) return;
      if (message.prefix === HEARTBEAT_PREFIX) this.options.metrics.heartbeats.inc({ stage: 'received' });
      else if (message.prefix === WATERMARK_PREFIX) await this.watermark(message, lsn, tx);
      return;
    }
    const messages = this.options.messages;
    if (!messages) return;
    if (!messages.includes(message.prefix)) {
      this.options.metrics.logicalMessages.inc({ outcome: 'filtered' });
      return;
    }
    const encoder = await messages.encoder(this.options.signal);
    const at = message.messageLsn ? parseLsn(message.messageLsn) : lsn;
    const envelopes = this.options.envelopes;
    if (tx) {
      const record = envelopes.message(encoder, message, at, { commitLsn: tx.commitLsn, ordinal: tx.ordinal++ }, tx);
      if (encoder.transactions && !tx.transactions) {
        const begin = envelopes.transactionMessage(encoder.transactions, tx, 'BEGIN');
        if (begin) {
          tx.transactions = encoder.transactions;
          await this.sendRecord(begin, tx);
        }
      }
      await this.sendRecord(record, tx, this.messagesWritten);
      return;
    }
    // Non-transactional: no Commit follows. The message is a unit of its own for the ack tracker, durable
    // (and the slot past it) once Kafka has it; its position is its own LSN.
    const receivedUs = BigInt(Date.now()) * 1000n;
    const own: OpenTransaction = {
      tracked: this.tracker.begin(0, receivedUs),
      commitLsn: at,
      ordinal: 0,
      ...transactionContext(at, null, receivedUs),
    };
    // As Debezium: the message commits its own position before it is written, so its `sequence` and the
    // next events' name its LSN as the last commit.
    envelopes.committed(at);
    const record = envelopes.message(encoder, message, at, { commitLsn: at, ordinal: 0 }, own);
    await this.sendRecord(record, own, this.messagesWritten);
    this.tracker.commit(own.tracked, at);
  }

  /** Logical decoding messages written (`parity_cdc_logical_messages_total{outcome="written"}`). */
  private readonly messagesWritten = { inc: (count = 1) => this.options.metrics.logicalMessages.inc({ outcome: 'written' }, count) };

  /** A watermark may close an incremental snapshot chunk, whose rows go out here. */
  private async watermark(message: Message<'message'>, lsn: Lsn, tx: OpenTransaction): Promise<void> {
    const emission = this.options.snapshotter.onWatermark(message.content);
    if (!emission) return;
    const relation = emission.relation;
    this.encoders.set(relation.oid, await this.options.relations.encoderFor(relation, this.options.signal));
    for (const { key, row } of emission.rows) {
      await this.emit({ relation, op: 'r', key, before: null, after: row, changeLsn: lsn }, tx, 'incremental');
    }
    this.options.metrics.snapshotRows.inc(
      { table: `${relation.schema}.${relation.table}`, kind: 'incremental-emitted' },
      emission.rows.length,
    );
    this.tracker.whenDurable(tx.tracked, emission.durable);
  }

  private readonly relationFor = (oid: number): RelationState | undefined => this.relations.get(oid);

  private rowChanges(message: Message<'insert' | 'update' | 'delete' | 'truncate'>, lsn: Lsn): Promise<void> | undefined {
    const tx = this.current;
    if (!tx) throw new Error(`${message.tag} outside a transaction`);
    const truncate = message.tag === 'truncate';
    if (!truncate && this.ignored.has(message.relation.relationOid)) return;
    return this.emitChanges(changesOf(message, lsn, this.relationFor), 0, tx, truncate);
  }

  /** Emits changes[from..] in order; when one has to wait, the rest follow once it is done. */
  private emitChanges(changes: SourceChange[], from: number, tx: OpenTransaction, truncate: boolean): Promise<void> | undefined {
    for (let i = from; i < changes.length; i++) {
      const change = changes[i]!;
      // The incremental snapshot drops rows of its open chunk that the stream changed meanwhile.
      if (truncate) this.options.snapshotter.onChange(change.relation.name, null, true);
      else this.options.snapshotter.onChange(change.relation.name, change.key);
      const pending = this.emitStreamed(change, tx);
      if (pending) return pending.then(() => this.emitChanges(changes, i + 1, tx, truncate));
    }
    return undefined;
  }

  /**
   * A streamed change's messages: the common cases (an encoder at hand, not a truncate, no Debezium
   * transaction topic) synchronously, the same steps as `emit`; the rest through `emit`.
   */
  private emitStreamed(change: SourceChange, tx: OpenTransaction): Promise<void> | undefined {
    const relation = change.relation;
    const encoder = this.encoders.get(relation.oid);
    if (!encoder || change.op === 't' || encoder.debezium?.transactions) return this.emit(change, tx);
    const position = { commitLsn: tx.commitLsn, ordinal: tx.ordinal++ };
    const envelopes = this.options.envelopes;
    if (!encoder.debezium) return this.send(envelopes.build(encoder, relation, change, position, tx, 'false'), tx, relation, change.op);
    if (envelopes.skips(change.op)) return;
    const event = envelopes.build(encoder, relation, change, position, tx, 'false');
    const wait = this.send(event, tx, relation, change.op);
    const tombstone = envelopes.tombstoneAfter(change.op, event);
    if (!tombstone) return wait;
    return wait ? wait.then(() => this.send(tombstone, tx, relation, change.op)) : this.send(tombstone, tx, relation, change.op);
  }

  private async emit(change: SourceChange, tx: OpenTransaction, snapshot: SnapshotMarker = 'false'): Promise<void> {
    const relation = change.relation;
    const encoder = this.encoders.get(relation.oid) ?? (await this.options.relations.encoderFor(relation, this.options.signal));
    const position = { commitLsn: tx.commitLsn, ordinal: tx.ordinal++ };
    const envelopes = this.options.envelopes;
    if (change.op === 't') {
      // A truncate concerns every key: one copy per partition (same dedupe key), so every consumer
      // sees it in order with the keys of its partitions.
      const partitions = envelopes.partitionsOf(relation);
      for (let p = 0; p < partitions; p++)
        for (const message of envelopes.buildAll(encoder, relation, change, position, tx, snapshot, p))
          await this.send(message, tx, relation, 't');
      return;
    }
    if (!encoder.debezium) {
      await this.send(envelopes.build(encoder, relation, change, position, tx, snapshot), tx, relation, change.op);
      return;
    }
    // The debezium encoding: a tombstone follows a delete, skipped operations write nothing (buildAll's
    // rules, taken step by step here: no array per event).
    if (envelopes.skips(change.op)) return;
    const event = envelopes.build(encoder, relation, change, position, tx, snapshot);
    const transactions = encoder.debezium.transactions;
    if (transactions && !tx.transactions && snapshot === 'false') {
      const begin = envelopes.transactionMessage(transactions, tx, 'BEGIN');
      if (begin) {
        tx.transactions = transactions;
        await this.sendRecord(begin, tx);
      }
    }
    await this.send(event, tx, relation, change.op);
    const tombstone = envelopes.tombstoneAfter(change.op, event);
    if (tombstone) await this.send(tombstone, tx, relation, change.op);
  }

  /** A record that is not a change event (Debezium's transaction topic, a logical message): tracked, not counted per table. */
  private async sendRecord(
    message: Parameters<ChangeSink['send']>[0],
    tx: OpenTransaction,
    counter: { inc: (count?: number) => void } = NOT_COUNTED,
  ): Promise<void> {
    this.tracker.sent(tx.tracked);
    this.options.sink.send(message, new EventAck(this, tx, counter, Number(tx.commitTimeUs / 1000n)));
    const max = this.options.maxInFlight;
    if (this.tracker.inFlightEvents >= max) await this.tracker.whenBelow(Math.floor(max / 2));
  }

  /** Queues one event; returns a promise only when the decoder has to wait (backpressure). */
  private send(
    message: Parameters<ChangeSink['send']>[0],
    tx: OpenTransaction,
    relation: RelationState,
    op: Op,
  ): Promise<void> | undefined {
    this.tracker.sent(tx.tracked);
    this.options.sink.send(message, this.ackFor(tx, relation, op));
    const max = this.options.maxInFlight;
    if (this.tracker.inFlightEvents >= max) return this.tracker.whenBelow(Math.floor(max / 2));
    return undefined;
  }

  private ackFor(tx: OpenTransaction, relation: RelationState, op: Op): EventAck {
    const acks = (tx.acks ??= new Map());
    const k = relation.oid * 8 + OP_SLOTS[op];
    let ack = acks.get(k);
    if (!ack) acks.set(k, (ack = new EventAck(this, tx, this.counterFor(relation.name, op), Number(tx.commitTimeUs / 1000n))));
    return ack;
  }

  private counterFor(table: string, op: Op): { inc: (count?: number) => void } {
    const k = `${table}\u0000${op}`;
    let c = this.eventCounters.get(k);
    if (!c) this.eventCounters.set(k, (c = this.options.metrics.events.labels({ table, op })));
    return c;
  }
}
