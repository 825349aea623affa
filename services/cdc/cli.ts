/**
 * `parity cdc run | status | drop-slot | snapshot`.
 */
import { setFlagsFromString } from 'node:v8';
import { parseOptions, required } from '../core/options.js';
import { createKafkaForSpec, createPgPool } from '../core/clients.js';
import { ParityError } from '../core/errors.js';
import { createLogger } from '../core/log.js';
import { createMetricsRegistry } from '../core/metrics.js';
import { resolveStatusPort, specStatusPort } from '../core/http.js';
import { sleep } from '../core/retry.js';
import { redact } from '../core/secrets.js';
import { type Spec, controlDatabase, loadSpec } from '../core/spec.js';
import { createRegistryClient } from '../../connectors/kafka-sink/registry-client.js';
import { SINK_PRODUCERS, type SinkProducer } from '../../connectors/kafka-sink/sink.js';
import { dropSlotAndPublication } from '../../connectors/postgres-source/slot.js';
import {
  enqueueSnapshot,
  ensureSnapshotTables,
  getSnapshotRequest,
  readCdcStatus,
  snapshotRequestsTable,
  snapshotTablesTable,
} from '../../connectors/postgres-source/snapshot-store.js';
import { CdcConnector, capturedTables } from './connector.js';
import { cdcStatus, formatStatus } from './status.js';

const RUN_USAGE =
  'parity cdc run --spec FILE [--set-replica-identity-full] [--status-port N] [--max-in-flight N] [--producer maintained|wire]';

/**
 * V8's old-generation growing factor for `parity cdc run`, as a percentage over 1 (V8's
 * `--heap-growing-percent`; 100 = the old generation may double before the next full collection). By
 * default V8 lets it grow up to 4x what survived the last full collection, and a connector draining a
 * backlog promotes its in-flight events fast enough to get there: ~50 MB of its peak RSS in
 * `npm run bench:cdc`. 100 kept the peak at 225-242 MB for ~1 % more CPU per event; 50 saved little
 * more (223-224 MB) and cost ~15 % (BENCHMARKS.md, CDC). Set here, not in the bin's flags: it concerns
 * this command only. The operator's own flag wins (`node --heap-growing-percent=N ... parity.js cdc run`;
 * Node refuses it in NODE_OPTIONS).
 */
export const CDC_HEAP_GROWING_PERCENT = 100;

/** Sets the CDC connector's V8 heap growing factor unless the process was started with its own. */
export function limitHeapGrowth(execArgv: readonly string[] = process.execArgv): boolean {
  if (execArgv.some((a) => /^--heap[-_]growing[-_]percent\b/.test(a))) return false;
  setFlagsFromString(`--heap-growing-percent=${CDC_HEAP_GROWING_PERCENT}`);
  return true;
}

/** `parity cdc run`: streams the spec's tables into Kafka until SIGTERM/SIGINT. */
export async function cdcRun(argv: string[]): Promise<number> {
  limitHeapGrowth();
  const { values } = parseOptions(
    argv,
    {
      spec: { type: 'string' },
      'set-replica-identity-full': { type: 'boolean' },
      'status-port': { type: 'string' },
      'max-in-flight': { type: 'string' },
      producer: { type: 'string' },
    },
    RUN_USAGE,
  );
  const producer = values.producer as SinkProducer | undefined;
  if (producer !== undefined && !SINK_PRODUCERS.includes(producer)) {
    throw new ParityError('PARITY_BAD_INPUT', `--producer must be one of ${SINK_PRODUCERS.join(', ')}, got ${values.producer}`, {
      hint: `usage: ${RUN_USAGE}`,
    });
  }
  const maxInFlight = values['max-in-flight'] === undefined ? undefined : Number(values['max-in-flight']);
  if (maxInFlight !== undefined && (!Number.isInteger(maxInFlight) || maxInFlight < 1)) {
    throw new ParityError('PARITY_BAD_INPUT', `--max-in-flight must be a positive integer, got ${values['max-in-flight']}`, {
      hint: `usage: ${RUN_USAGE}`,
    });
  }
  const { spec } = loadSpec(required(values.spec, '--spec', RUN_USAGE));
  // Status server: --status-port > PARITY_STATUS_PORT > spec > 9401 (see services/core/http.ts).
  const statusPort = resolveStatusPort('cdc', {
    flag: values['status-port'],
    specPort: specStatusPort(spec, 'cdc'),
    usage: RUN_USAGE,
  }).port;
  const logger = createLogger({ name: 'parity-cdc' });
  const metrics = createMetricsRegistry({ service: 'cdc' });
  const connector = new CdcConnector({
    spec,
    logger,
    metrics,
    kafka: createKafkaForSpec(spec.infra.kafka, { clientId: `parity-cdc-${spec.cdc.slot}`, logger }),
    ...(producer ? { producer } : {}),
    registry: createRegistryClient(spec.infra.registry),
    setReplicaIdentityFull: values['set-replica-identity-full'] ?? false,
    statusPort,
    ...(maxInFlight === undefined ? {} : { maxInFlightEvents: maxInFlight }),
  });
  const stop = () => {
    logger.info('stopping: draining in-flight events');
    connector.stop();
  };
  process.once('SIGTERM', stop);
  process.once('SIGINT', stop);
  await connector.run().catch((err: unknown) => {
    // The status server starts inside the connector; a taken port is a setting to change, not a crash.
    if ((err as { code?: string }).code === 'EADDRINUSE') {
      throw new ParityError('PARITY_BAD_INPUT', `status port ${statusPort} is taken (another parity process on this host?)`, {
        hint: 'pick another with --status-port, PARITY_STATUS_PORT or status.ports.cdc (0 = any free port)',
        cause: err,
      });
    }
    throw err;
  });
  logger.info('stopped');
  return 0;
}

const STATUS_USAGE = 'parity cdc status --spec FILE [--json]';

/** `parity cdc status`: slot lag (bytes and seconds), state, the connector's last report, snapshots. */
export async function cdcStatusCommand(argv: string[]): Promise<number> {
  const { values } = parseOptions(argv, { spec: { type: 'string' }, json: { type: 'boolean' } }, STATUS_USAGE);
  const { spec } = loadSpec(required(values.spec, '--spec', STATUS_USAGE));
  await withPools(spec, async (source, control) => {
    const status = await cdcStatus(source, control, spec);
    process.stdout.write(values.json ? `${redact(JSON.stringify(status, null, 2))}\n` : redact(formatStatus(status)));
  });
  return 0;
}

const DROP_USAGE = 'parity cdc drop-slot --spec FILE [--force] [--json]';

/** `parity cdc drop-slot`: removes the slot (releasing its WAL) and the publication. */
export async function cdcDropSlot(argv: string[]): Promise<number> {
  const { values } = parseOptions(argv, { spec: { type: 'string' }, force: { type: 'boolean' }, json: { type: 'boolean' } }, DROP_USAGE);
  const { spec } = loadSpec(required(values.spec, '--spec', DROP_USAGE));
  await withPools(spec, async (source, control) => {
    const result = await dropSlotAndPublication(source, spec.cdc.slot, spec.cdc.publication, values.force ?? false);
    await ensureSnapshotTables(control, spec.control.schema);
    // A new slot needs a new initial snapshot: forget the old one's checkpoints and open requests.
    await control.query(`DELETE FROM ${snapshotTablesTable(spec.control.schema)} WHERE slot = $1`, [spec.cdc.slot]);
    await control.query(
      `UPDATE ${snapshotRequestsTable(spec.control.schema)} SET state = 'cancelled', finished_at = clock_timestamp(), error = 'slot dropped'
        WHERE slot = $1 AND state IN ('queued', 'running')`,
      [spec.cdc.slot],
    );
    if (values.json) {
      const report = {
        slot: spec.cdc.slot,
        slotDropped: result.slotDropped,
        publication: spec.cdc.publication,
        publicationDropped: result.publicationDropped,
      };
      process.stdout.write(`${JSON.stringify(report)}\n`);
    } else
      process.stdout.write(
        `slot ${spec.cdc.slot}: ${result.slotDropped ? 'dropped' : 'did not exist'}; publication ${spec.cdc.publication}: ${result.publicationDropped ? 'dropped' : 'did not exist'}\n`,
      );
  });
  return 0;
}

const SNAPSHOT_USAGE = 'parity cdc snapshot --spec FILE --table [SCHEMA.]TABLE [--chunk-rows N] [--no-wait] [--timeout SECONDS] [--json]';

/**
 * `parity cdc snapshot`: queues an on-demand re-snapshot of one captured table; the running
 * `parity cdc run` performs it with DBLog watermarks while streaming continues. Waits for it to finish
 * unless --no-wait.
 */
export async function cdcSnapshot(argv: string[]): Promise<number> {
  const { values } = parseOptions(
    argv,
    {
      spec: { type: 'string' },
      table: { type: 'string' },
      'chunk-rows': { type: 'string' },
      'no-wait': { type: 'boolean' },
      // The result on stdout is always one JSON line (progress goes to stderr); --json is accepted like on every reporting command.
      json: { type: 'boolean' },
      timeout: { type: 'string' },
    },
    SNAPSHOT_USAGE,
  );
  const { spec } = loadSpec(required(values.spec, '--spec', SNAPSHOT_USAGE));
  const tableArg = required(values.table, '--table', SNAPSHOT_USAGE);
  const name = tableArg.includes('.') ? tableArg : `${spec.source.schema}.${tableArg}`;
  const captured = capturedTables(spec).map((t) => `${t.schema}.${t.table}`);
  if (!captured.includes(name)) {
    throw new ParityError('PARITY_BAD_INPUT', `${name} is not captured by this spec (captured: ${captured.join(', ')})`, {
      hint: 'add it to cdc.tables, or name one of the captured tables',
    });
  }
  const chunkRows = values['chunk-rows'] === undefined ? spec.cdc.snapshotChunkRows : Number(values['chunk-rows']);
  if (!Number.isInteger(chunkRows) || chunkRows < 1)
    throw new ParityError('PARITY_BAD_INPUT', `--chunk-rows must be a positive integer`, { hint: `usage: ${SNAPSHOT_USAGE}` });
  const timeoutS = values.timeout === undefined ? 3600 : Number(values.timeout);
  if (!Number.isFinite(timeoutS) || timeoutS <= 0)
    throw new ParityError('PARITY_BAD_INPUT', `--timeout must be a positive number of seconds`, { hint: `usage: ${SNAPSHOT_USAGE}` });
  let exit = 0;
  await withPools(spec, async (_source, control) => {
    await ensureSnapshotTables(control, spec.control.schema);
    const request = await enqueueSnapshot(
      control,
      spec.control.schema,
      spec.cdc.slot,
      name,
      chunkRows,
      `requested by ${process.env.USER ?? 'unknown'}`,
    );
    const live = await readCdcStatus(control, spec.control.schema, spec.cdc.slot);
    const running = live !== null && Date.now() - live.updatedAt.getTime() < 20_000 && live.state !== 'stopped';
    process.stderr.write(
      `snapshot #${request.id} of ${name} queued${running ? '' : ' (no running `parity cdc run` reported recently: it starts when one runs)'}\n`,
    );
    if (values['no-wait']) {
      process.stdout.write(`${JSON.stringify({ id: request.id, table: name, state: request.state })}\n`);
      return;
    }
    const deadline = Date.now() + timeoutS * 1000;
    let last = '';
    for (;;) {
      const r = await getSnapshotRequest(control, spec.control.schema, request.id);
      if (!r) throw new ParityError('PARITY_INTERNAL', `snapshot request ${request.id} disappeared`);
      const line = `snapshot #${r.id} ${r.state}: ${r.rows} rows in ${r.chunks} chunks`;
      if (line !== last) process.stderr.write(`${line}\n`);
      last = line;
      if (r.state === 'done' || r.state === 'failed' || r.state === 'cancelled') {
        process.stdout.write(
          `${JSON.stringify({ id: r.id, table: name, state: r.state, rows: r.rows, chunks: r.chunks, error: r.error })}\n`,
        );
        exit = r.state === 'done' ? 0 : 1;
        return;
      }
      if (Date.now() > deadline) {
        process.stdout.write(
          `${JSON.stringify({ id: r.id, table: name, state: r.state, rows: r.rows, chunks: r.chunks, timedOut: true })}\n`,
        );
        exit = 1;
        return;
      }
      await sleep(1_000);
    }
  });
  return exit;
}

async function withPools(spec: Spec, fn: (source: import('pg').Pool, control: import('pg').Pool) => Promise<void>): Promise<void> {
  const source = createPgPool(spec.source.database, { applicationName: 'parity-cdc-cli', max: 2 });
  const controlUrl = controlDatabase(spec);
  const control = controlUrl === spec.source.database ? source : createPgPool(controlUrl, { applicationName: 'parity-cdc-cli', max: 2 });
  try {
    await fn(source, control);
  } catch (err) {
    if (err instanceof ParityError) throw err;
    const code = (err as { code?: string }).code;
    if (code === 'ECONNREFUSED' || code === '3D000' || code === '28000' || code === '28P01') {
      throw new ParityError('PARITY_CONNECTION', `cannot reach the database: ${(err as Error).message}`, {
        cause: err,
        hint: 'check source.database / control.database in the spec',
      });
    }
    throw err;
  } finally {
    await source.end().catch(() => undefined);
    if (control !== source) await control.end().catch(() => undefined);
  }
}
