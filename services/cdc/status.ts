/**
 * `parity cdc status`: the slot as PostgreSQL sees it (lag bytes and seconds, state, WAL safety), the
 * running connector's last report, and the snapshots. Works whether or not a connector is running.
 */
import type pg from 'pg';
import { formatLsn, parseLsn } from '../core/lsn.js';
import { sleep } from '../core/retry.js';
import type { Spec } from '../core/spec.js';
import { type SlotInfo, slotInfo, slotLag } from '../../connectors/postgres-source/slot.js';
import {
  type CdcStatusRow,
  type SnapshotTableState,
  ensureSnapshotTables,
  initialSnapshotState,
  readCdcStatus,
  snapshotRequestsTable,
} from '../../connectors/postgres-source/snapshot-store.js';

type Queryable = Pick<pg.ClientBase, 'query'>;

/** A connector report older than this is not trusted as live. */
const FRESH_MS = 20_000;

export interface CdcStatus {
  slot: string;
  exists: boolean;
  active: boolean;
  activePid: number | null;
  walStatus: string | null;
  safeWalSizeBytes: number | null;
  currentLsn: string | null;
  confirmedFlushLsn: string | null;
  restartLsn: string | null;
  lagBytes: number | null;
  retainedBytes: number | null;
  /**
   * Seconds behind: the live connector's figure (age of its oldest change not yet durable) when its
   * report is fresh; otherwise lag bytes divided by the WAL write rate sampled over one second (an
   * estimate); null when no WAL was written during the sample.
   */
  lagSeconds: number | null;
  lagSecondsSource: 'connector' | 'wal-rate-estimate' | 'none';
  connector: (CdcStatusRow & { fresh: boolean }) | null;
  initialSnapshot: InitialSnapshotStatus[];
  snapshotRequests: {
    id: number;
    table: string;
    state: string;
    rows: number;
    chunks: number;
    reason: string;
    requestedAt: Date;
    finishedAt: Date | null;
  }[];
}

/**
 * One table of the initial snapshot, and whether it is finished whichever way it finished: read
 * whole inside the slot's exported snapshot (`state: done`), or handed over to an incremental
 * snapshot after an interruption (`state: handed-over`), which is done when that request is.
 */
export interface InitialSnapshotStatus extends SnapshotTableState {
  done: boolean;
  /** How it finished (or is finishing): 'initial' (exported snapshot) or 'incremental' (hand-over). */
  via: 'initial' | 'incremental';
  /** The incremental snapshot request that continues a handed-over table, with its state. */
  continuedBy: { id: number; state: string; rows: number } | null;
}

/** The reason the connector gives the request that continues an interrupted initial snapshot. */
export const RESUME_INITIAL_REASON = 'resume initial snapshot';

async function initialSnapshotStatus(control: Queryable, spec: Spec): Promise<InitialSnapshotStatus[]> {
  const tables = await initialSnapshotState(control, spec.control.schema, spec.cdc.slot);
  const out: InitialSnapshotStatus[] = [];
  for (const t of tables) {
    if (t.state !== 'handed-over') {
      out.push({ ...t, done: t.state === 'done', via: 'initial', continuedBy: null });
      continue;
    }
    const { rows } = await control.query(
      `SELECT id, state, rows FROM ${snapshotRequestsTable(spec.control.schema)} WHERE slot = $1 AND table_name = $2 AND reason = $3 ORDER BY id DESC LIMIT 1`,
      [spec.cdc.slot, t.tableName, RESUME_INITIAL_REASON],
    );
    const r = rows[0] as { id: string; state: string; rows: string } | undefined;
    const continuedBy = r ? { id: Number(r.id), state: r.state, rows: Number(r.rows) } : null;
    out.push({ ...t, done: continuedBy?.state === 'done', via: 'incremental', continuedBy });
  }
  return out;
}

export async function cdcStatus(
  source: Queryable,
  control: Queryable,
  spec: Spec,
  options: { sampleMs?: number } = {},
): Promise<CdcStatus> {
  const slot = spec.cdc.slot;
  await ensureSnapshotTables(control, spec.control.schema);
  const info: SlotInfo | null = await slotInfo(source, slot);
  const lag = info ? await slotLag(source, slot) : null;
  const connectorRow = await readCdcStatus(control, spec.control.schema, slot);
  const connector = connectorRow ? { ...connectorRow, fresh: Date.now() - connectorRow.updatedAt.getTime() < FRESH_MS } : null;
  let lagSeconds: number | null = null;
  let lagSecondsSource: CdcStatus['lagSecondsSource'] = 'none';
  if (lag) {
    if (connector?.fresh && info?.active && connector.lagSeconds !== null) {
      lagSeconds = connector.lagSeconds;
      lagSecondsSource = 'connector';
    } else if (lag.lagBytes === 0) {
      lagSeconds = 0;
      lagSecondsSource = 'wal-rate-estimate';
    } else {
      const sampleMs = options.sampleMs ?? 1_000;
      const before = await source.query<{ lsn: string }>('SELECT pg_current_wal_lsn()::text AS lsn');
      await sleep(sampleMs);
      const after = await source.query<{ lsn: string }>('SELECT pg_current_wal_lsn()::text AS lsn');
      const rate = Number(parseLsn(after.rows[0]!.lsn) - parseLsn(before.rows[0]!.lsn)) / (sampleMs / 1000);
      if (rate > 0) {
        lagSeconds = lag.lagBytes / rate;
        lagSecondsSource = 'wal-rate-estimate';
      }
    }
  }
  const requests = await control.query(
    `SELECT id, table_name, state, rows, chunks, reason, requested_at, finished_at FROM ${snapshotRequestsTable(spec.control.schema)}
      WHERE slot = $1 ORDER BY id DESC LIMIT 10`,
    [slot],
  );
  return {
    slot,
    exists: info !== null,
    active: info?.active ?? false,
    activePid: info?.activePid ?? null,
    walStatus: info?.walStatus ?? null,
    safeWalSizeBytes: info?.safeWalSize ?? null,
    currentLsn: lag ? formatLsn(lag.currentLsn) : null,
    confirmedFlushLsn: info?.confirmedFlushLsn ? formatLsn(info.confirmedFlushLsn) : null,
    restartLsn: info?.restartLsn ? formatLsn(info.restartLsn) : null,
    lagBytes: lag?.lagBytes ?? null,
    retainedBytes: lag?.retainedBytes ?? null,
    lagSeconds,
    lagSecondsSource,
    connector,
    initialSnapshot: await initialSnapshotStatus(control, spec),
    snapshotRequests: requests.rows.map((r) => ({
      id: Number(r.id),
      table: r.table_name,
      state: r.state,
      rows: Number(r.rows),
      chunks: Number(r.chunks),
      reason: r.reason,
      requestedAt: r.requested_at,
      finishedAt: r.finished_at,
    })),
  };
}

function bytes(n: number | null): string {
  if (n === null) return '-';
  if (n < 1024) return `${n} B`;
  if (n < 1024 * 1024) return `${(n / 1024).toFixed(1)} KiB`;
  if (n < 1024 ** 3) return `${(n / 1024 / 1024).toFixed(1)} MiB`;
  return `${(n / 1024 ** 3).toFixed(2)} GiB`;
}

/** The human-readable form printed by `parity cdc status`. */
export function formatStatus(s: CdcStatus): string {
  const lines: string[] = [];
  if (!s.exists) {
    lines.push(`slot ${s.slot}: missing (run \`parity cdc run --spec FILE\` to create it)`);
  } else {
    lines.push(
      `slot ${s.slot}: ${s.active ? `active (pid ${s.activePid})` : 'inactive'}, wal_status ${s.walStatus ?? '-'}, safe_wal_size ${bytes(s.safeWalSizeBytes)}`,
    );
    lines.push(`  current ${s.currentLsn}  confirmed ${s.confirmedFlushLsn}  restart ${s.restartLsn}`);
    lines.push(
      `  lag ${bytes(s.lagBytes)}, ${s.lagSeconds === null ? 'unknown' : `${s.lagSeconds.toFixed(1)} s`} (${s.lagSecondsSource})  retained ${bytes(s.retainedBytes)}`,
    );
  }
  if (s.connector) {
    const c = s.connector;
    lines.push(
      `connector: ${c.state}${c.fresh ? '' : ' (stale report)'} pid ${c.pid} on ${c.host}, ${c.events} events, reported ${c.updatedAt.toISOString()}${c.reason ? `\n  reason: ${c.reason}` : ''}`,
    );
  } else lines.push('connector: never reported');
  for (const t of s.initialSnapshot) {
    const how = !t.continuedBy
      ? t.via === 'incremental'
        ? ' (handed over; its incremental snapshot is not queued yet)'
        : ''
      : ` (interrupted after ${t.rows} rows, ${t.done ? 'finished' : 'continued'} by incremental snapshot #${t.continuedBy.id}: ${t.continuedBy.state}, ${t.continuedBy.rows} rows)`;
    lines.push(
      `initial snapshot ${t.tableName}: ${t.done ? 'done' : t.state === 'handed-over' ? 'in progress' : t.state}${t.via === 'initial' ? `, ${t.rows} rows` : ''}${how}`,
    );
  }
  for (const r of s.snapshotRequests)
    lines.push(`snapshot #${r.id} ${r.table}: ${r.state}, ${r.rows} rows in ${r.chunks} chunks${r.reason ? ` (${r.reason})` : ''}`);
  return `${lines.join('\n')}\n`;
}
