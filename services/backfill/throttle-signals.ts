/**
 * Gathers the throttle's signals: from the source database (standby replay lag from
 * pg_stat_replication, the CDC slot's position from pg_replication_slots, active backends from
 * pg_stat_activity) in one query, the HTTP health probe (GET, at most once a second, 2 s timeout),
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
  replicationLagSeconds: number;
  slotLag?: { slot: string; bytes: number; seconds: number; active: boolean };
  activeBackends: number;
}

export class SignalReader {
  private readonly wal = new WalRate();
  private http: ThrottleSignals['http'];
  private httpInFlight = false;
  private httpLastMs = -Infinity;

  constructor(private readonly settings: SignalSettings) {}

  async database(source: Queryable): Promise<DatabaseSignals> {
    const { rows } = await source.query(
      `SELECT
         coalesce((SELECT max(extract(epoch FROM r.replay_lag)) FROM pg_stat_replication r
                    WHERE NOT EXISTS (SELECT 1 FROM pg_replication_slots s WHERE s.active_pid = r.pid AND s.slot_type = 'logical')), 0)::float8 AS replica_lag,
         pg_wal_lsn_diff(pg_current_wal_lsn(), '0/0')::text AS wal_position,
         (SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), coalesce(s.confirmed_flush_lsn, s.restart_lsn))::text FROM pg_replication_slots s WHERE s.slot_name = $1) AS slot_lag_bytes,
         (SELECT s.active FROM pg_replication_slots s WHERE s.slot_name = $1) AS slot_active,
         (SELECT count(*) FROM pg_stat_activity a
           WHERE a.state = 'active' AND a.backend_type = 'client backend' AND a.pid <> pg_backend_pid()
             AND a.application_name NOT LIKE $2)::int AS active`,
      [this.settings.slot, `${APPLICATION_NAME}%`],
    );
    const r = rows[0] as { replica_lag: number; wal_position: string; slot_lag_bytes: string | null; slot_active: boolean | null; active: number };
    this.wal.add({ atMs: this.settings.now(), lsn: BigInt(r.wal_position.split('.')[0] ?? '0') });
    const out: DatabaseSignals = { replicationLagSeconds: Number(r.replica_lag), activeBackends: Number(r.active) };
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
