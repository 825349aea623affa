/**
 * Gathers the throttle's and the health controller's signals: from the source database (replica
 * replay lag and bytes not replayed from pg_stat_replication, the CDC slot's position from
 * pg_replication_slots, active backends from pg_stat_activity, the server's WAL rate from
 * pg_current_wal_insert_lsn, requested checkpoints from pg_stat_bgwriter / pg_stat_checkpointer,
 * full-page images from pg_stat_wal) in one query, the HTTP health probe (GET, at most once a second, 2 s timeout),
 * and the flag file.
 *
 * Slot lag in seconds is estimated from bytes and the recent WAL rate (see slot-lag.ts), not from a
 * heartbeat table: it needs no writes to the source and works with any consumer of the slot.
 */
import { existsSync } from 'node:fs';
import type pg from 'pg';
import { displayUrl, redact } from '../core/secrets.js';
import { WalRate } from './slot-lag.js';
import { APPLICATION_NAME } from './databases.js';
import type { ThrottleSignals } from './throttle.js';

type Queryable = Pick<pg.ClientBase, 'query'>;

export interface SignalSettings {
  slot: string;
  httpProbe?: string;
  flagFile?: string;
  now: () => number;
}

export interface DatabaseSignals {
  /** Largest replay lag of a physical replica: replay_lag, or the bytes not replayed over the WAL rate, whichever is larger. */
  replicationLagSeconds: number;
  replicaLagBytes: number;
  /** WAL bytes/s of the whole server since the last reading (pg_current_wal_insert_lsn); absent on the first. */
  serverWalBytesPerSecond?: number;
  /** Checkpoints requested (WAL reached max_wal_size, or CHECKPOINT) since the last reading. */
  checkpointsRequested: number;
  /** Full-page images per WAL record since the last reading (pg_stat_wal): the cost of the pages first touched after a checkpoint. */
  fpiPerRecord?: number;
  /** The server's wal_compression setting (`off` makes every full-page image cost a whole page). */
  walCompression: string;
  slotLag?: { slot: string; bytes: number; seconds: number; active: boolean };
  activeBackends: number;
}

export class SignalReader {
  private readonly wal = new WalRate();
  private http: ThrottleSignals['http'];
  private httpInFlight = false;
  private httpLastMs = -Infinity;
  private serverVersion: number | undefined;
  private last: { atMs: number; insert: bigint; checkpoints: bigint; fpi: bigint; records: bigint } | undefined;

  constructor(private readonly settings: SignalSettings) {}

  async database(source: Queryable): Promise<DatabaseSignals> {
    if (this.serverVersion === undefined) {
      const v = await source.query(`SELECT current_setting('server_version_num')::int AS v`);
      this.serverVersion = Number((v.rows[0] as { v: number }).v);
    }
    // PostgreSQL 17 moved the checkpoint counters from pg_stat_bgwriter to pg_stat_checkpointer.
    const requested =
      this.serverVersion >= 170_000 ? '(SELECT num_requested FROM pg_stat_checkpointer)' : '(SELECT checkpoints_req FROM pg_stat_bgwriter)';
    const { rows } = await source.query(
      `WITH physical AS (
         SELECT r.replay_lag, r.replay_lsn FROM pg_stat_replication r
          WHERE NOT EXISTS (SELECT 1 FROM pg_replication_slots s WHERE s.active_pid = r.pid AND s.slot_type = 'logical'))
       SELECT
         coalesce((SELECT max(extract(epoch FROM p.replay_lag)) FROM physical p), 0)::float8 AS replica_lag,
         coalesce((SELECT max(pg_wal_lsn_diff(pg_current_wal_lsn(), p.replay_lsn)) FROM physical p), 0)::text AS replica_lag_bytes,
         pg_wal_lsn_diff(pg_current_wal_lsn(), '0/0')::text AS wal_position,
         pg_wal_lsn_diff(pg_current_wal_insert_lsn(), '0/0')::text AS insert_position,
         ${requested}::text AS checkpoints_requested,
         (SELECT wal_fpi FROM pg_stat_wal)::text AS wal_fpi,
         (SELECT wal_records FROM pg_stat_wal)::text AS wal_records,
         current_setting('wal_compression') AS wal_compression,
         (SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), coalesce(s.confirmed_flush_lsn, s.restart_lsn))::text FROM pg_replication_slots s WHERE s.slot_name = $1) AS slot_lag_bytes,
         (SELECT s.active FROM pg_replication_slots s WHERE s.slot_name = $1) AS slot_active,
         (SELECT count(*) FROM pg_stat_activity a
           WHERE a.state = 'active' AND a.backend_type = 'client backend' AND a.pid <> pg_backend_pid()
             AND a.application_name NOT LIKE $2)::int AS active`,
      [this.settings.slot, `${APPLICATION_NAME}%`],
    );
    const r = rows[0] as {
      replica_lag: number;
      replica_lag_bytes: string;
      wal_position: string;
      insert_position: string;
      checkpoints_requested: string | null;
      wal_fpi: string | null;
      wal_records: string | null;
      wal_compression: string;
      slot_lag_bytes: string | null;
      slot_active: boolean | null;
      active: number;
    };
    const big = (t: string | null): bigint => BigInt((t ?? '0').split('.')[0] ?? '0');
    const atMs = this.settings.now();
    this.wal.add({ atMs, lsn: big(r.wal_position) });
    const replicaBytes = big(r.replica_lag_bytes);
    // replay_lag is only updated when replay moves past a sampled position, so a replica whose replay
    // stopped can show a small replay_lag for a long time; the bytes it has not replayed cannot hide.
    const replicaSeconds = Math.max(Number(r.replica_lag), replicaBytes > 0n ? this.wal.lagSeconds(replicaBytes) : 0);
    const out: DatabaseSignals = {
      replicationLagSeconds: replicaSeconds,
      replicaLagBytes: Number(replicaBytes),
      activeBackends: Number(r.active),
      checkpointsRequested: 0,
      walCompression: r.wal_compression,
    };
    const insert = big(r.insert_position);
    const ckpt = big(r.checkpoints_requested);
    const fpi = big(r.wal_fpi);
    const records = big(r.wal_records);
    const prev = this.last;
    if (prev) {
      const seconds = (atMs - prev.atMs) / 1000;
      if (seconds > 0) out.serverWalBytesPerSecond = Number(insert - prev.insert) / seconds;
      out.checkpointsRequested = Number(ckpt - prev.checkpoints);
      const dRecords = Number(records - prev.records);
      if (dRecords > 0) out.fpiPerRecord = Number(fpi - prev.fpi) / dRecords;
    }
    this.last = { atMs, insert, checkpoints: ckpt, fpi, records };
    if (r.slot_lag_bytes !== null) {
      const bytes = BigInt(r.slot_lag_bytes.split('.')[0] ?? '0');
      out.slotLag = { slot: this.settings.slot, bytes: Number(bytes), seconds: this.wal.lagSeconds(bytes), active: Boolean(r.slot_active) };
    }
    return out;
  }

  /** The last HTTP probe answer; starts a new probe in the background at most once a second. */
  httpProbe(): ThrottleSignals['http'] {
    const url = this.settings.httpProbe;
    if (!url) return undefined;
    const now = this.settings.now();
    if (!this.httpInFlight && now - this.httpLastMs >= 1_000) {
      this.httpInFlight = true;
      this.httpLastMs = now;
      const shown = displayUrl(url);
      fetch(url, { method: 'GET', signal: AbortSignal.timeout(2_000) })
        .then(
          async (res) => {
            await res.body?.cancel().catch(() => undefined);
            this.http = { url: shown, status: res.status };
          },
          (err: unknown) => {
            this.http = { url: shown, error: redact((err instanceof Error ? err.message : String(err)).split(url).join(shown)) };
          },
        )
        .finally(() => {
          this.httpInFlight = false;
        });
    }
    // Until the first answer arrives, pause: an unknown health is not a healthy one.
    return this.http ?? { url: displayUrl(url), error: 'no answer yet' };
  }

  flagFile(): ThrottleSignals['flagFile'] {
    const path = this.settings.flagFile;
    return path ? { path, exists: existsSync(path) } : undefined;
  }
}
