/**
 * The initial snapshot, taken once when the connector creates its slot: every captured table read
 * inside the slot's exported snapshot (so the stream continues exactly where the snapshot ends) and
 * sent as `op: r` events positioned just before the slot's consistent point. Chunks are checkpointed
 * (snapshot-store.ts), so a process killed half-way continues incrementally from the last key.
 */
import type pg from 'pg';
import { ParityError, toParityError } from '../core/errors.js';
import type { Logger } from '../core/log.js';
import { type Position, formatLsn } from '../core/lsn.js';
import type { Spec } from '../core/spec.js';
import type { RelationState } from '../../connectors/postgres-source/change-builder.js';
import { createSlotWithSnapshot } from '../../connectors/postgres-source/slot.js';
import { type Chunk, importSnapshot, runInitialSnapshot } from '../../connectors/postgres-source/snapshot.js';
import { checkpointInitial, planInitialSnapshot } from '../../connectors/postgres-source/snapshot-store.js';
import type { TableEncoder } from '../../connectors/kafka-sink/serde.js';
import type { ChangeSink } from '../../connectors/kafka-sink/sink.js';
import { type EnvelopeBuilder, type SnapshotMarker, transactionContext } from './envelope.js';
import type { CdcMetrics } from './metrics.js';

/** What the snapshot borrows from the connector that supervises it. */
export interface InitialSnapshotDeps {
  spec: Spec;
  source: pg.Pool;
  control: pg.Pool;
  logger: Logger;
  metrics: CdcMetrics;
  envelopes: EnvelopeBuilder;
  /** Captured tables, "schema.table". */
  tables: string[];
  relationByName(name: string): Promise<RelationState>;
  /** The relation's encoder, its schemas registered (waits, paused, while the registry refuses). */
  encoderFor(relation: RelationState, signal: AbortSignal): Promise<TableEncoder>;
  /** A new, unconnected sink. */
  newSink(): ChangeSink;
  /** The change topics, for the sink's connect. */
  topics(): string[];
  /** Counts a retriable failure, reports the pause (with the reason) and waits before attempt `attempt + 1`. */
  backoff(error: ParityError, attempt: number): Promise<void>;
  /** The connector's state went back from paused: it is snapshotting again. */
  resumed(): void;
}

/**
 * Creates the slot with an exported snapshot and sends every captured row before streaming starts.
 * Kafka comes first: a broker still starting (COORDINATOR_LOAD_IN_PROGRESS on InitProducerId, ...) is
 * waited for before the slot exists, so it cannot turn the initial snapshot into a hand-over; the same
 * holds for retriable failures while chunks are sent (see sendChunk).
 */
export async function takeInitialSnapshot(deps: InitialSnapshotDeps, signal: AbortSignal): Promise<void> {
  const { spec, logger } = deps;
  const sinkBox = { sink: await connectedSink(deps, signal) };
  let exported: Awaited<ReturnType<typeof createSlotWithSnapshot>>;
  try {
    // Planned before the slot exists: a crash right after creating the slot still finds the plan.
    await planInitialSnapshot(deps.control, spec.control.schema, spec.cdc.slot, deps.tables);
    exported = await createSlotWithSnapshot(spec.source.database, spec.cdc.slot);
  } catch (err) {
    await sinkBox.sink.close().catch(() => undefined);
    throw err;
  }
  const reader = await deps.source.connect().catch(async (err: unknown) => {
    await sinkBox.sink.close().catch(() => undefined);
    throw err;
  });
  let readerOk = false;
  try {
    try {
      await importSnapshot(reader, exported.snapshotName);
    } finally {
      await exported.release();
    }
    logger.info({ consistentPoint: formatLsn(exported.consistentPoint), tables: deps.tables }, 'initial snapshot started');
    await readTables(deps, reader, exported.consistentPoint, sinkBox, signal);
    await reader.query('COMMIT');
    readerOk = true;
    logger.info('initial snapshot done; streaming from the consistent point');
  } finally {
    await sinkBox.sink.close().catch(() => undefined);
    if (!readerOk) await reader.query('ROLLBACK').catch(() => undefined);
    reader.release();
  }
}

/** Reads every table in the exported snapshot, sending and checkpointing chunk by chunk. */
async function readTables(
  deps: InitialSnapshotDeps,
  reader: pg.PoolClient,
  consistentPoint: bigint,
  sinkBox: { sink: ChangeSink },
  signal: AbortSignal,
): Promise<void> {
  const { spec } = deps;
  const position: Position = { commitLsn: consistentPoint - 1n, ordinal: 0 };
  const tables = await Promise.all(deps.tables.map(async (name) => ({ name, relation: await deps.relationByName(name) })));
  let started = false;
  const tablesStarted = new Set<string>();
  await runInitialSnapshot({
    reader,
    tables,
    chunkRows: spec.cdc.snapshotChunkRows,
    signal,
    emit: async (table, rows) => {
      // Debezium's markers: a short chunk is a table's last (a table whose rows fill the last chunk
      // exactly ends on `true`, as the next, empty chunk has no row to mark).
      const tableIndex = tables.indexOf(table);
      const lastChunk = rows.length < spec.cdc.snapshotChunkRows || table.relation.keyColumns.length === 0;
      const markers = snapshotMarkers(rows.length, {
        first: !started,
        firstInTable: !tablesStarted.has(table.name),
        lastInTable: lastChunk,
        lastTable: tableIndex === tables.length - 1,
      });
      started = true;
      tablesStarted.add(table.name);
      await sendChunk(deps, sinkBox, table.relation, rows, position, signal, markers);
      deps.metrics.snapshotRows.inc({ table: table.name, kind: 'initial' }, rows.length);
    },
    checkpoint: (table, lastKey, rows, done) =>
      checkpointInitial(deps.control, spec.control.schema, spec.cdc.slot, table.name, {
        state: done ? 'done' : 'running',
        lastKey,
        rows,
        consistentLsn: formatLsn(consistentPoint),
      }),
  });
}

/** `source.snapshot` of each row of a chunk, with Debezium's first/last markers. */
export function snapshotMarkers(
  rows: number,
  at: { first: boolean; firstInTable: boolean; lastInTable: boolean; lastTable: boolean },
): SnapshotMarker[] {
  const out: SnapshotMarker[] = new Array(rows).fill('true');
  if (rows === 0) return out;
  if (at.firstInTable) out[0] = 'first_in_data_collection';
  if (at.lastInTable) out[rows - 1] = at.lastTable ? 'last' : 'last_in_data_collection';
  if (at.first) out[0] = 'first';
  return out;
}

/**
 * Sends one chunk. The exported snapshot stays open in the reader meanwhile: a retriable Kafka failure
 * resends this chunk on a new sink (duplicates of it, same positions) instead of ending the snapshot.
 */
async function sendChunk(
  deps: InitialSnapshotDeps,
  sinkBox: { sink: ChangeSink },
  relation: RelationState,
  rows: Chunk['rows'],
  position: Position,
  signal: AbortSignal,
  markers: SnapshotMarker[],
): Promise<void> {
  const encoder = await deps.encoderFor(relation, signal);
  for (let attempt = 0; ; attempt++) {
    const first = position.ordinal;
    try {
      await emitSnapshotRows(deps.envelopes, sinkBox.sink, encoder, relation, rows, position, (i) => markers[i] ?? 'true');
      return;
    } catch (err) {
      const error = toParityError(err, 'PARITY_CONNECTION');
      if (!error.retriable || signal.aborted) throw error;
      position.ordinal = first;
      await sinkBox.sink.close().catch(() => undefined);
      await deps.backoff(error, attempt);
      sinkBox.sink = await connectedSink(deps, signal);
    }
  }
}

/** A connected sink; retriable failures are waited out (paused, with the reason). */
async function connectedSink(deps: InitialSnapshotDeps, signal: AbortSignal): Promise<ChangeSink> {
  for (let attempt = 0; ; attempt++) {
    const sink = deps.newSink();
    try {
      await sink.connect(deps.topics());
      deps.resumed();
      return sink;
    } catch (err) {
      await sink.close().catch(() => undefined);
      const error = toParityError(err, 'PARITY_CONNECTION');
      if (!error.retriable || signal.aborted) throw error;
      await deps.backoff(error, attempt);
      if (signal.aborted) throw new ParityError('PARITY_ABORTED', 'stopped before the initial snapshot started');
    }
  }
}

/** Sends snapshot rows (advancing `position.ordinal`) and resolves once Kafka acknowledged all of them. */
export function emitSnapshotRows(
  envelopes: EnvelopeBuilder,
  sink: ChangeSink,
  encoder: TableEncoder,
  relation: RelationState,
  rows: Chunk['rows'],
  position: Position,
  snapshot: SnapshotMarker | ((index: number) => SnapshotMarker),
): Promise<void> {
  return new Promise((resolve, reject) => {
    let pending = rows.length;
    let failed = false;
    if (pending === 0) return resolve();
    const tx = transactionContext(position.commitLsn, null, BigInt(Date.now()) * 1000n);
    rows.forEach(({ key, row }, i) => {
      const pos = { commitLsn: position.commitLsn, ordinal: position.ordinal++ };
      const marker = typeof snapshot === 'function' ? snapshot(i) : snapshot;
      sink.send(envelopes.build(encoder, relation, { op: 'r', key, before: null, after: row }, pos, tx, marker), {
        onAck: () => {
          if (--pending === 0 && !failed) resolve();
        },
        onFail: (err) => {
          if (!failed) {
            failed = true;
            reject(err);
          }
        },
      });
    });
  });
}
