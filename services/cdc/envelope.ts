/**
 * Envelope building, the third step of the message path (decode -> change -> envelope -> sink -> ack
 * tracker): a source change plus its position becomes the envelope, its position headers and its Kafka
 * message(s). The wire texts (position, headers, `source.sequence` of exact-text) come from
 * services/core/change-event.ts, their only home.
 *
 * The debezium encoding writes Debezium 3.x's envelope v2 and source block (debezium-envelope.ts), a
 * tombstone after each delete (`tombstones.on.delete`), the `__debezium.oldkey` / `newkey` headers on
 * the delete, tombstone and create a primary-key change becomes, Debezium 3's `__debezium.context.*`
 * headers (`extended.headers.enabled`), and leaves out `skipped.operations`.
 */
import { randomBytes } from 'node:crypto';
import { type Op, type Row, TransactionPositions } from '../core/change-event.js';
import type { ConnectStruct } from '../core/connect-schema.js';
import type { Lsn, Position } from '../core/lsn.js';
import type { Spec } from '../core/spec.js';
import type { RelationState, SourceChange } from '../../connectors/postgres-source/change-builder.js';
import { binaryValue } from '../../connectors/postgres-source/debezium-types.js';
import {
  NEW_KEY_HEADER,
  OLD_KEY_HEADER,
  type SnapshotMarker as DebeziumSnapshotMarker,
  envelope as debeziumEnvelope,
  messageRecord,
  sourceValue,
  transactionBlock,
  transactionRecord,
} from '../../connectors/kafka-sink/debezium-envelope.js';
import {
  type ConnectRecordEncoder,
  type EncodedChange,
  type MessageEncoder,
  type TableEncoder,
  encodeChange,
  partitionForKey,
} from '../../connectors/kafka-sink/serde.js';

export const CONNECTOR_VERSION = '0.1.0';
/** The data collection Debezium counts logical decoding messages under (transaction metadata). */
export const MESSAGE_COLLECTION = 'LOGICAL_DECODING_MESSAGE';
/** `source.version` of the debezium encoding: the Debezium release whose events parity's equal. */
export const DEBEZIUM_VERSION = '3.6.0.Final';

/**
 * `source.snapshot`: a streamed change, a row of the initial snapshot (Debezium's first/last markers
 * included), or of an incremental one. Exact-text writes the first/last markers as `true`.
 */
export type SnapshotMarker = DebeziumSnapshotMarker;

/** What every event of one transaction (or one snapshot chunk) shares. */
export interface TransactionContext {
  xid: number | null;
  commitTimeUs: bigint;
  /** The transaction's wire texts, computed once (the hot path runs per event). */
  positions: TransactionPositions;
  /** `source.txId` of the debezium encoding (the xid as a BigInt), made once per transaction. */
  txIdLong: bigint | null;
  /** Debezium's transaction block state (`provide.transaction.metadata`), made at the first event. */
  debeziumOrder?: { id: string; total: number; perTable: Map<string, number> };
}

/** A transaction context for the given commit (snapshot chunks pass xid null and the time they are read). */
export function transactionContext(commitLsn: Lsn, xid: number | null, commitTimeUs: bigint): TransactionContext {
  return {
    xid,
    commitTimeUs,
    positions: new TransactionPositions(commitLsn, xid, commitTimeUs),
    txIdLong: xid === null ? null : BigInt(xid),
  };
}

/** The fields of a change the envelope carries (`changeLsn`: the change's own LSN, else the commit's). */
export interface EnvelopeChange {
  op: Op;
  key: Row | null;
  before: Row | null;
  after: Row | null;
  changeLsn?: Lsn;
}

export interface EnvelopeBuilderOptions {
  /** spec.cdc.topicPrefix: `source.name`. */
  topicPrefix: string;
  /** The source database's name: `source.db`. */
  db: string;
  /** Partition counts by topic, as created (see kafka-sink/admin.ts). */
  partitions: ReadonlyMap<string, number>;
  /** spec.cdc.partitions, for a topic missing from `partitions`. */
  defaultPartitions: number;
  /** spec.cdc's debezium options (tombstones, skipped operations, context headers); Debezium's defaults when absent. */
  debezium?: Pick<Spec['cdc']['debezium'], 'tombstones.on.delete' | 'skipped.operations' | 'provide.transaction.metadata'> &
    Partial<Pick<Spec['cdc']['debezium'], 'extended.headers.enabled' | 'binary.handling.mode'>>;
}

/** Debezium 3's context headers (`extended.headers.enabled`), in Debezium's order. */
export const CONTEXT_HEADERS = {
  connectorLogicalName: '__debezium.context.connectorLogicalName',
  taskId: '__debezium.context.taskId',
  connectorName: '__debezium.context.connectorName',
  runId: '__debezium.context.runId',
} as const;

/**
 * A UUID version 7 (RFC 9562: 48-bit Unix milliseconds, version, random bits, variant), the kind of id
 * Debezium gives each run of a connector task.
 */
export function uuidV7(now: number = Date.now()): string {
  const b = randomBytes(16);
  b.writeUIntBE(now, 0, 6);
  b[6] = 0x70 | (b[6]! & 0x0f);
  b[8] = 0x80 | (b[8]! & 0x3f);
  const h = b.toString('hex');
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
}

/**
 * The context headers' values as Buffers, made once per connector start (the hot path only points at
 * them): the topic prefix, task `0` (parity runs one task), `postgresql`, and a fresh run id.
 */
export function contextHeaders(topicPrefix: string, runId: string = uuidV7()): readonly (readonly [string, Buffer])[] {
  return [
    [CONTEXT_HEADERS.connectorLogicalName, Buffer.from(topicPrefix)],
    [CONTEXT_HEADERS.taskId, Buffer.from('0')],
    [CONTEXT_HEADERS.connectorName, Buffer.from('postgresql')],
    [CONTEXT_HEADERS.runId, Buffer.from(runId)],
  ];
}

/** The operations `skipped.operations` names ("none": none). */
function skippedOperations(text: string | undefined): ReadonlySet<Op> {
  if (text === undefined) return new Set(['t']);
  if (text === 'none') return new Set();
  return new Set(text.split(',').map((o) => o.trim() as Op));
}

/** Builds the Kafka message of each change (one per connector, created once the source and topics are known). */
export class EnvelopeBuilder {
  private readonly skipped: ReadonlySet<Op>;
  private readonly tombstones: boolean;
  /** `extended.headers.enabled`: Debezium's context headers, empty when off. */
  private readonly context: readonly (readonly [string, Buffer])[];
  /** The commit end LSN of the last transaction that had events: Debezium's first `sequence` element. */
  private lastCommitLsn: Lsn | null = null;

  constructor(private readonly options: EnvelopeBuilderOptions) {
    this.skipped = skippedOperations(options.debezium?.['skipped.operations']);
    this.tombstones = options.debezium?.['tombstones.on.delete'] ?? true;
    this.context = (options.debezium?.['extended.headers.enabled'] ?? true) ? contextHeaders(options.topicPrefix) : [];
  }

  /**
   * Every Kafka message one change becomes: the event, and in the debezium encoding a tombstone after
   * a delete; none for an operation in `skipped.operations` (debezium encoding).
   */
  buildAll(
    encoder: TableEncoder,
    relation: RelationState,
    change: EnvelopeChange & Pick<SourceChange, 'keyChange'>,
    position: Position,
    tx: TransactionContext,
    snapshot: SnapshotMarker,
    partition?: number,
  ): EncodedChange[] {
    if (!encoder.debezium) return [this.build(encoder, relation, change, position, tx, snapshot, partition)];
    if (this.skipped.has(change.op)) return [];
    const event = this.build(encoder, relation, change, position, tx, snapshot, partition);
    const tombstone = this.tombstoneAfter(change.op, event);
    return tombstone ? [event, tombstone] : [event];
  }

  /** True when the debezium encoding leaves `op` out (`skipped.operations`). */
  skips(op: Op): boolean {
    return this.skipped.has(op);
  }

  /** The tombstone that follows a delete's event in the debezium encoding (`tombstones.on.delete`), else null. */
  tombstoneAfter(op: Op, event: EncodedChange): EncodedChange | null {
    if (op !== 'd' || !this.tombstones || event.key === null) return null;
    return { ...event, value: null };
  }

  /** The partition count of a relation's topic. */
  partitionsOf(relation: RelationState): number {
    return this.options.partitions.get(relation.shape.topic) ?? this.options.defaultPartitions;
  }

  /** The Kafka message for one change; `partition` pins it (a truncate's copies), else the key decides. */
  build(
    encoder: TableEncoder,
    relation: RelationState,
    change: EnvelopeChange,
    position: Position,
    tx: TransactionContext,
    snapshot: SnapshotMarker,
    partition?: number,
  ): EncodedChange {
    if (encoder.debezium) return this.buildDebezium(encoder, relation, change, position, tx, snapshot, partition);
    const { xid, commitTimeUs, positions } = tx;
    const exactSnapshot: 'true' | 'false' | 'incremental' = snapshot === 'false' || snapshot === 'incremental' ? snapshot : 'true';
    const envelope = {
      before: change.before,
      after: change.after,
      op: change.op,
      ts_ms: Date.now(),
      source: {
        version: CONNECTOR_VERSION,
        connector: 'postgresql' as const,
        name: this.options.topicPrefix,
        db: this.options.db,
        schema: relation.schema,
        table: relation.table,
        lsn: Number(change.changeLsn ?? position.commitLsn),
        txId: xid,
        ts_ms: Number(commitTimeUs / 1000n),
        ts_us: Number(commitTimeUs),
        snapshot: exactSnapshot,
        sequence: positions.sequence(position.ordinal),
      },
    };
    const headers = positions.headers(position.ordinal);
    const message = {
      key: change.key,
      envelope,
      position,
      txId: xid,
      commitTimeUs,
      headers,
      ...(partition === undefined ? {} : { partition }),
    };
    return encodeChange(encoder, message, this.partitionsOf(relation));
  }

  /**
   * `provide.transaction.metadata`: Debezium's block of a streamed event, its id `<txId>:<LSN of the
   * transaction's first event>`, its orders counted from 1 in the transaction and in its table.
   */
  private transactionBlock(tx: TransactionContext, collection: string, snapshot: SnapshotMarker, lsn: Lsn): ConnectStruct | null {
    if (!this.options.debezium?.['provide.transaction.metadata'] || snapshot !== 'false' || tx.xid === null) return null;
    const order = (tx.debeziumOrder ??= { id: `${tx.xid}:${lsn}`, total: 0, perTable: new Map() });
    order.total++;
    const inTable = (order.perTable.get(collection) ?? 0) + 1;
    order.perTable.set(collection, inTable);
    return transactionBlock(BigInt(tx.xid), 0n, order.total, inTable, order.id);
  }

  /** A transaction that had events committed (`source.sequence` of the next one names it). */
  committed(commitEndLsn: Lsn): void {
    this.lastCommitLsn = commitEndLsn;
  }

  /**
   * A record of Debezium's transaction topic for a transaction that has events: BEGIN (once its first
   * event is built, so its id is the events' id) or END (with the counts per table, its id
   * `<txId>:<commit end LSN>` as Debezium 3.6 writes it). Null when the transaction has no Debezium block.
   */
  transactionMessage(
    transactions: ConnectRecordEncoder,
    tx: TransactionContext,
    status: 'BEGIN' | 'END',
    commitLsn?: Lsn,
  ): EncodedChange | null {
    const order = tx.debeziumOrder;
    if (!order || tx.xid === null) return null;
    const id = status === 'BEGIN' ? order.id : `${tx.xid}:${commitLsn ?? 0n}`;
    const counts = status === 'END' ? { total: order.total, perCollection: [...order.perTable] } : undefined;
    const record = transactionRecord(status, id, tx.commitTimeUs / 1000n, counts);
    const partitions = this.options.partitions.get(transactions.topic) ?? this.options.defaultPartitions;
    return {
      topic: transactions.topic,
      partition: partitionForKey(record.key, ['id'], partitions),
      key: transactions.encodeKey(record.key),
      value: transactions.encodeValue(record.value),
      headers: {},
    };
  }

  /**
   * A logical decoding message's record for `<prefix>.message`, as Debezium writes it: `source.schema`
   * and `table` empty, the LSN of the message, the txId and commit time of its transaction (a
   * non-transactional message has no transaction: no txId, and the time it was received), the
   * transaction block (`provide.transaction.metadata`, transactional messages; counted under Debezium's
   * collection name `LOGICAL_DECODING_MESSAGE`), the content as `binary.handling.mode` writes bytes.
   * Headers: parity's position headers (the dedupe key); Debezium writes no context headers on messages.
   * The prefix is the key: one prefix's messages stay in order on one partition.
   */
  message(
    encoder: MessageEncoder,
    message: { prefix: string; content: Uint8Array; transactional: boolean },
    lsn: Lsn,
    position: Position,
    tx: TransactionContext,
  ): EncodedChange {
    const source = sourceValue(
      DEBEZIUM_VERSION,
      this.options.topicPrefix,
      this.options.db,
      '',
      '',
      tx.commitTimeUs,
      'false',
      message.transactional ? tx.txIdLong : null,
      lsn,
      this.lastCommitLsn,
    );
    const block = message.transactional ? this.transactionBlock(tx, MESSAGE_COLLECTION, 'false', lsn) : null;
    const content = Buffer.from(message.content.buffer, message.content.byteOffset, message.content.byteLength);
    const record = messageRecord(
      message.prefix,
      binaryValue(content, this.options.debezium?.['binary.handling.mode'] ?? 'bytes'),
      source,
      block,
      this.processedNanos() / 1_000_000n,
    );
    const topic = encoder.messages.topic;
    const partitions = this.options.partitions.get(topic) ?? this.options.defaultPartitions;
    return {
      topic,
      partition: partitionForKey(record.key, ['prefix'], partitions),
      key: encoder.messages.encodeKey(record.key),
      value: encoder.messages.encodeValue(record.value),
      headers: tx.positions.headers(position.ordinal),
    };
  }

  private lastMs = -1;
  private lastNanos = 0n;

  /** Now in nanoseconds since the epoch (millisecond resolution), one BigInt per millisecond. */
  private processedNanos(): bigint {
    const now = Date.now();
    if (now !== this.lastMs) {
      this.lastMs = now;
      this.lastNanos = BigInt(now) * 1_000_000n;
    }
    return this.lastNanos;
  }

  /** Debezium 3.x's envelope v2 and source block; the key change's headers beside parity's own. */
  private buildDebezium(
    encoder: TableEncoder,
    relation: RelationState,
    change: EnvelopeChange & Pick<SourceChange, 'keyChange'>,
    position: Position,
    tx: TransactionContext,
    snapshot: SnapshotMarker,
    partition?: number,
  ): EncodedChange {
    const { commitTimeUs, positions } = tx;
    const source = sourceValue(
      DEBEZIUM_VERSION,
      this.options.topicPrefix,
      this.options.db,
      relation.schema,
      relation.table,
      commitTimeUs,
      snapshot,
      tx.txIdLong,
      change.changeLsn ?? position.commitLsn,
      snapshot === 'false' ? this.lastCommitLsn : null,
    );
    const value: ConnectStruct = debeziumEnvelope(
      change.op,
      change.before as ConnectStruct | null,
      change.after as ConnectStruct | null,
      source,
      this.transactionBlock(tx, relation.name, snapshot, change.changeLsn ?? position.commitLsn),
      this.processedNanos(),
    );
    let headers = positions.headers(position.ordinal);
    // A fresh object per event: the shared context Buffers go in without copies.
    const context = this.context;
    for (let i = 0; i < context.length; i++) headers[context[i]![0]] = context[i]![1];
    const keyChange = change.keyChange;
    if (keyChange) {
      // Debezium: the delete (and its tombstone) names the new key, the create the old one.
      headers =
        change.op === 'd'
          ? { ...headers, [NEW_KEY_HEADER]: encoder.debezium!.keyHeader(keyChange.newKey) }
          : { ...headers, [OLD_KEY_HEADER]: encoder.debezium!.keyHeader(keyChange.oldKey) };
    }
    return encodeChange(
      encoder,
      { key: change.key, envelope: value, position, txId: tx.xid, commitTimeUs, headers, partition },
      this.partitionsOf(relation),
    );
  }
}
