/**
 * Envelope building, the third step of the message path (decode -> change -> envelope -> sink -> ack
 * tracker): a source change plus its position becomes the Debezium-compatible envelope, its position
 * headers and its Kafka message. The wire texts (position, headers, `source.sequence`) come from
 * services/core/change-event.ts, their only home.
 */
import { type Op, type Row, TransactionPositions } from '../core/change-event.js';
import type { Lsn, Position } from '../core/lsn.js';
import type { RelationState } from '../../connectors/postgres-source/change-builder.js';
import { type EncodedChange, type TableEncoder, encodeChange } from '../../connectors/kafka-sink/serde.js';

export const CONNECTOR_VERSION = '0.1.0';

/** `source.snapshot`: a streamed change, a row of the initial snapshot, or of an incremental one. */
export type SnapshotMarker = 'true' | 'false' | 'incremental';

/** What every event of one transaction (or one snapshot chunk) shares. */
export interface TransactionContext {
  xid: number | null;
  commitTimeUs: bigint;
  /** The transaction's wire texts, computed once (the hot path runs per event). */
  positions: TransactionPositions;
}

/** A transaction context for the given commit (snapshot chunks pass xid null and the time they are read). */
export function transactionContext(commitLsn: Lsn, xid: number | null, commitTimeUs: bigint): TransactionContext {
  return { xid, commitTimeUs, positions: new TransactionPositions(commitLsn, xid, commitTimeUs) };
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
}

/** Builds the Kafka message of each change (one per connector, created once the source and topics are known). */
export class EnvelopeBuilder {
  constructor(private readonly options: EnvelopeBuilderOptions) {}

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
    const { xid, commitTimeUs, positions } = tx;
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
        snapshot,
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
}
