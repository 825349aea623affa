/**
 * Debezium 3.x's change-event envelope for PostgreSQL as Connect schemas and values: the key struct,
 * `{before, after, source, transaction, op, ts_ms, ts_us, ts_ns}`, the source block, the transaction
 * block and the transaction-metadata topic's BEGIN/END records. Field names, order, optionality and
 * schema names are Debezium's (checked against its own output in
 * test/unit/connectors/debezium-envelope.test.ts).
 */
import type { ConnectField, ConnectSchema, ConnectStruct } from '../../services/core/connect-schema.js';

const req = (type: ConnectSchema['type']): ConnectSchema => ({ type, optional: false });
const opt = (type: ConnectSchema['type']): ConnectSchema => ({ type, optional: true });

/** Debezium's `source.snapshot` values. */
export type SnapshotMarker = 'true' | 'first' | 'first_in_data_collection' | 'last_in_data_collection' | 'last' | 'false' | 'incremental';

export const SOURCE_SCHEMA: ConnectSchema = {
  type: 'struct',
  optional: false,
  name: 'io.debezium.connector.postgresql.Source',
  version: 1,
  fields: [
    { name: 'version', schema: req('string') },
    { name: 'connector', schema: req('string') },
    { name: 'name', schema: req('string') },
    { name: 'ts_ms', schema: req('int64') },
    {
      name: 'snapshot',
      schema: {
        type: 'string',
        optional: true,
        name: 'io.debezium.data.Enum',
        version: 1,
        parameters: { allowed: 'true,first,first_in_data_collection,last_in_data_collection,last,false,incremental' },
        default: 'false',
      },
    },
    { name: 'db', schema: req('string') },
    { name: 'sequence', schema: opt('string') },
    { name: 'ts_us', schema: opt('int64') },
    { name: 'ts_ns', schema: opt('int64') },
    { name: 'schema', schema: req('string') },
    { name: 'table', schema: req('string') },
    { name: 'txId', schema: opt('int64') },
    { name: 'lsn', schema: opt('int64') },
    { name: 'xmin', schema: opt('int64') },
    { name: 'origin', schema: opt('string') },
    { name: 'origin_lsn', schema: opt('int64') },
  ],
};

/** The `transaction` block of a change event (`provide.transaction.metadata`). */
export const TRANSACTION_BLOCK_SCHEMA: ConnectSchema = {
  type: 'struct',
  optional: true,
  name: 'event.block',
  version: 1,
  fields: [
    { name: 'id', schema: req('string') },
    { name: 'total_order', schema: req('int64') },
    { name: 'data_collection_order', schema: req('int64') },
  ],
};

export const TRANSACTION_KEY_SCHEMA: ConnectSchema = {
  type: 'struct',
  optional: false,
  name: 'io.debezium.connector.common.TransactionMetadataKey',
  version: 1,
  fields: [{ name: 'id', schema: req('string') }],
};

export const TRANSACTION_VALUE_SCHEMA: ConnectSchema = {
  type: 'struct',
  optional: false,
  name: 'io.debezium.connector.common.TransactionMetadataValue',
  version: 1,
  fields: [
    { name: 'status', schema: req('string') },
    { name: 'id', schema: req('string') },
    { name: 'event_count', schema: opt('int64') },
    {
      name: 'data_collections',
      schema: {
        type: 'array',
        optional: true,
        items: {
          type: 'struct',
          optional: true,
          name: 'event.collection',
          version: 1,
          fields: [
            { name: 'data_collection', schema: req('string') },
            { name: 'event_count', schema: req('int64') },
          ],
        },
      },
    },
    { name: 'ts_ms', schema: req('int64') },
  ],
};

/** `<prefix>.<schema>.<table>.Key`: the key columns, required. */
export function keySchema(topic: string, keyFields: ConnectField[]): ConnectSchema {
  return {
    type: 'struct',
    optional: false,
    name: `${topic}.Key`,
    fields: keyFields.map((f) => ({ name: f.name, schema: { ...f.schema, optional: false } })),
  };
}

/** `<topic>.Value`: the row struct (optional inside the envelope). */
export function rowSchema(topic: string, fields: ConnectField[]): ConnectSchema {
  return { type: 'struct', optional: true, name: `${topic}.Value`, fields };
}

/** `<topic>.Envelope` version 2, Debezium 3.x's value schema. */
export function envelopeSchema(topic: string, row: ConnectSchema): ConnectSchema {
  return {
    type: 'struct',
    optional: false,
    name: `${topic}.Envelope`,
    version: 2,
    fields: [
      { name: 'before', schema: row },
      { name: 'after', schema: row },
      { name: 'source', schema: SOURCE_SCHEMA },
      { name: 'transaction', schema: TRANSACTION_BLOCK_SCHEMA },
      { name: 'op', schema: req('string') },
      { name: 'ts_ms', schema: opt('int64') },
      { name: 'ts_us', schema: opt('int64') },
      { name: 'ts_ns', schema: opt('int64') },
    ],
  };
}

export interface SourceFacts {
  /** `source.version`: parity says which Debezium it writes like, e.g. `3.6.0.Final`. */
  version: string;
  /** topic.prefix (Debezium's logical name). */
  name: string;
  db: string;
  schema: string;
  table: string;
  /** Commit time in microseconds since the epoch (snapshot: the read time). */
  commitMicros: bigint;
  snapshot: SnapshotMarker;
  txId: bigint | null;
  /** The change's own WAL position, as a number. */
  lsn: bigint | null;
  /** The previous transaction's commit end, Debezium's first `sequence` element. */
  lastCommitLsn: bigint | null;
}

// Every event of a transaction carries its commit time, and events written in the same millisecond share
// their processing time: the BigInt divisions and products behind ts_ms/ts_ns are done once per value.
let lastCommit: { micros: bigint; ms: bigint; ns: bigint } = { micros: -1n, ms: 0n, ns: 0n };
let lastProcessed: { nanos: bigint; ms: bigint; us: bigint } = { nanos: -1n, ms: 0n, us: 0n };

function commitTimes(micros: bigint): { ms: bigint; ns: bigint } {
  if (micros !== lastCommit.micros) lastCommit = { micros, ms: micros / 1000n, ns: micros * 1000n };
  return lastCommit;
}

function processedTimes(nanos: bigint): { ms: bigint; us: bigint } {
  if (nanos !== lastProcessed.nanos) lastProcessed = { nanos, ms: nanos / 1_000_000n, us: nanos / 1000n };
  return lastProcessed;
}

// `source.sequence` is `["<last commit LSN>","<LSN>"]` (JSON.stringify of the two texts, written by hand:
// digits need no escaping); the first element is the same for every event of a transaction.
let lastCommitSequence: { lsn: bigint | null; text: string } = { lsn: null, text: 'null' };

function lastCommitText(lsn: bigint | null): string {
  if (lsn !== lastCommitSequence.lsn) lastCommitSequence = { lsn, text: lsn === null ? 'null' : `"${lsn}"` };
  return lastCommitSequence.text;
}

/** The source block value. */
export function sourceBlock(f: SourceFacts): ConnectStruct {
  return sourceValue(f.version, f.name, f.db, f.schema, f.table, f.commitMicros, f.snapshot, f.txId, f.lsn, f.lastCommitLsn);
}

/** {@link sourceBlock} with the facts as arguments: the CDC hot path builds no facts object per event. */
export function sourceValue(
  version: string,
  name: string,
  db: string,
  schema: string,
  table: string,
  commitMicros: bigint,
  snapshot: SnapshotMarker,
  txId: bigint | null,
  lsn: bigint | null,
  lastCommitLsn: bigint | null,
): ConnectStruct {
  const commit = commitTimes(commitMicros);
  return {
    version,
    connector: 'postgresql',
    name,
    ts_ms: commit.ms,
    snapshot,
    db,
    sequence: `[${lastCommitText(lastCommitLsn)},${lsn === null ? 'null' : `"${lsn}"`}]`,
    ts_us: commitMicros,
    ts_ns: commit.ns,
    schema,
    table,
    txId,
    lsn,
    xmin: null,
    origin: null,
    origin_lsn: null,
  };
}

/**
 * The transaction block: Debezium's id is `<txId>:<LSN>`, the LSN of the transaction's first event as
 * Debezium 3.6 writes it (`id` given: used as is).
 */
export function transactionBlock(
  txId: bigint,
  beginLsn: bigint,
  totalOrder: number,
  dataCollectionOrder: number,
  id?: string,
): ConnectStruct {
  return { id: id ?? `${txId}:${beginLsn}`, total_order: BigInt(totalOrder), data_collection_order: BigInt(dataCollectionOrder) };
}

/** The envelope value; `processedNanos` is when parity wrote the event (Debezium's envelope ts_*). */
export function envelope(
  op: 'c' | 'u' | 'd' | 'r' | 't',
  before: ConnectStruct | null,
  after: ConnectStruct | null,
  source: ConnectStruct,
  transaction: ConnectStruct | null,
  processedNanos: bigint,
): ConnectStruct {
  const processed = processedTimes(processedNanos);
  return {
    before,
    after,
    source,
    transaction,
    op,
    ts_ms: processed.ms,
    ts_us: processed.us,
    ts_ns: processedNanos,
  };
}

/** A transaction-metadata record (`<prefix>.transaction` topic). */
export function transactionRecord(
  status: 'BEGIN' | 'END',
  id: string,
  tsMs: bigint,
  counts?: { total: number; perCollection: [string, number][] },
): { key: ConnectStruct; value: ConnectStruct } {
  return {
    key: { id },
    value: {
      status,
      id,
      event_count: counts ? BigInt(counts.total) : null,
      data_collections: counts ? counts.perCollection.map(([c, n]) => ({ data_collection: c, event_count: BigInt(n) })) : null,
      ts_ms: tsMs,
    },
  };
}

/** Headers Debezium adds when a key changes: the delete carries the new key, the create the old one. */
export const OLD_KEY_HEADER = '__debezium.oldkey';
export const NEW_KEY_HEADER = '__debezium.newkey';

/**
 * Logical decoding messages (`pg_logical_emit_message`) as Debezium's PostgreSQL connector writes them
 * to `<prefix>.message`: the key `{prefix}`, the value `{op: "m", ts_ms, source, transaction, message:
 * {prefix, content}}` (no ts_us/ts_ns: Debezium 3.6's MessageValue has none). `content` is bytes, or a
 * string under `binary.handling.mode` base64, base64-url-safe and hex.
 */
export const MESSAGE_KEY_SCHEMA: ConnectSchema = {
  type: 'struct',
  optional: false,
  name: 'io.debezium.connector.postgresql.MessageKey',
  version: 1,
  fields: [{ name: 'prefix', schema: opt('string') }],
};

/** The message value schema; `contentType` follows `binary.handling.mode` (bytes, else string). */
export function messageValueSchema(contentType: 'bytes' | 'string'): ConnectSchema {
  return {
    type: 'struct',
    optional: false,
    name: 'io.debezium.connector.postgresql.MessageValue',
    version: 1,
    fields: [
      { name: 'op', schema: req('string') },
      { name: 'ts_ms', schema: opt('int64') },
      { name: 'source', schema: SOURCE_SCHEMA },
      { name: 'transaction', schema: TRANSACTION_BLOCK_SCHEMA },
      {
        name: 'message',
        schema: {
          type: 'struct',
          optional: false,
          name: 'io.debezium.connector.postgresql.Message',
          version: 1,
          fields: [
            { name: 'prefix', schema: opt('string') },
            { name: 'content', schema: opt(contentType) },
          ],
        },
      },
    ],
  };
}

/** One logical decoding message's record: key and value of `<prefix>.message`. */
export function messageRecord(
  prefix: string,
  content: Buffer | string,
  source: ConnectStruct,
  transaction: ConnectStruct | null,
  processedMs: bigint,
): { key: ConnectStruct; value: ConnectStruct } {
  return {
    key: { prefix },
    value: { op: 'm', ts_ms: processedMs, source, transaction, message: { prefix, content } },
  };
}
