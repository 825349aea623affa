/**
 * A streaming physical replica of the source cluster (`parity stack up --with-replica`, or
 * PARITY_STACK_REPLICA=1): `pg_basebackup -R` copies pg-source over its trusted Unix socket (so no
 * password is written into the copy's primary_conninfo), the copy gets its own port and socket
 * folder, and starts as a hot standby streaming from the source. It is what the backfill's
 * `replica_lag` throttle watches (pg_stat_replication on the source), and what a test pauses with
 * `pg_wal_replay_pause()` to see the backfill hold.
 *
 * The same functions start a replica of any local cluster with other folders and ports (the
 * integration test starts its own when the stack has none).
 */
import { chmodSync, chownSync, existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import pg from 'pg';
import { ParityError } from '../core/errors.js';
import type { StackConfig } from './config.js';
import { isAlive, run, stopPid, tail, waitFor } from './process.js';

export interface ReplicaSettings {
  /** PostgreSQL's bin folder (pg_basebackup, pg_ctl). */
  pgBinDir: string;
  /** Folder of the replica: data/, run/ (its socket) and server.log. */
  root: string;
  /** TCP port of the replica (127.0.0.1). */
  port: number;
  /** The primary's Unix socket folder and port: the base backup and the stream use the trusted socket. */
  primarySocketDir: string;
  primaryPort: number;
  /** Role and password for TCP connections to the replica (the primary's, copied with the cluster). */
  user: string;
  password?: string;
  database: string;
  /** Run the server as this OS user (when we are root: PostgreSQL refuses to run as root). */
  asUser?: string;
}

export interface ReplicaStatus {
  service: 'pg-source-replica';
  running: boolean;
  pid?: number;
  port: number;
  /** pg_stat_wal_receiver.status on the replica (`streaming` when healthy). */
  receiver?: string;
  /** Seconds since the last transaction the replica replayed was committed on the primary (null before any). */
  replayDelaySeconds?: number | null;
  action?: 'reused' | 'started';
  readySeconds?: number;
  /** Shaped like the other services' status for `stack status` (a replica has no version or RSS line of its own, no nodes). */
  version?: string;
  rssMb?: number;
  nodes?: undefined;
}

/** The stack's replica of pg-source: `<pgRoot>/pg-source-replica`, port PARITY_PG_REPLICA_PORT (default pg-source's + 2). */
export function stackReplicaSettings(c: StackConfig, env: NodeJS.ProcessEnv = process.env): ReplicaSettings {
  const raw = env.PARITY_PG_REPLICA_PORT;
  const port = raw === undefined ? c.ports.pgSource + 2 : Number(raw);
  if (!Number.isInteger(port) || port < 1 || port > 65535) {
    throw new ParityError('PARITY_BAD_INPUT', `PARITY_PG_REPLICA_PORT=${raw} is not a TCP port`, {
      hint: 'use a free port from 1 to 65535, or unset it for pg-source + 2',
    });
  }
  return {
    pgBinDir: c.pgBinDir,
    root: join(c.pgRoot, 'pg-source-replica'),
    port,
    primarySocketDir: join(c.pgRoot, 'pg-source', 'run'),
    primaryPort: c.ports.pgSource,
    user: c.pgUser,
    ...(c.pgPassword ? { password: c.pgPassword } : {}),
    database: c.pgDatabase,
    ...(process.getuid?.() === 0 ? { asUser: 'postgres' } : {}),
  };
}

/** `--with-replica` was not given but PARITY_STACK_REPLICA=1 (or true) asks for the replica. */
export function replicaWanted(env: NodeJS.ProcessEnv = process.env): boolean {
  return env.PARITY_STACK_REPLICA === '1' || env.PARITY_STACK_REPLICA === 'true';
}

const dataDir = (s: ReplicaSettings) => join(s.root, 'data');
const socketDir = (s: ReplicaSettings) => join(s.root, 'run');
const logPath = (s: ReplicaSettings) => join(s.root, 'server.log');

/** The replica's connection URL (read-only: it is a hot standby). */
export function replicaUrl(s: ReplicaSettings): string {
  const auth = s.password ? `${encodeURIComponent(s.user)}:${encodeURIComponent(s.password)}` : encodeURIComponent(s.user);
  return `postgres://${auth}@127.0.0.1:${s.port}/${s.database}`;
}

/** PARITY_SOURCE_REPLICA_URL while the stack's replica runs (nothing otherwise), for `stack env`. */
export function replicaEnv(c: StackConfig): { PARITY_SOURCE_REPLICA_URL?: string } {
  const s = stackReplicaSettings(c);
  return replicaPid(s) ? { PARITY_SOURCE_REPLICA_URL: replicaUrl(s) } : {};
}

/** The postmaster's PID from postmaster.pid, when it is alive. */
export function replicaPid(s: ReplicaSettings): number | undefined {
  const file = join(dataDir(s), 'postmaster.pid');
  if (!existsSync(file)) return undefined;
  const pid = Number.parseInt(readFileSync(file, 'utf8').split('\n')[0] ?? '', 10);
  return Number.isInteger(pid) && isAlive(pid) ? pid : undefined;
}

function own(s: ReplicaSettings, path: string): void {
  if (!s.asUser) return;
  const uid = Number(run('id', ['-u', s.asUser]).stdout.trim());
  const gid = Number(run('id', ['-g', s.asUser]).stdout.trim());
  chownSync(path, uid, gid);
}

/** Replays and streams: in recovery, and its WAL receiver is streaming from the primary. */
export async function replicaReady(s: ReplicaSettings): Promise<boolean> {
  const st = await probe(s);
  return st !== undefined && st.inRecovery && st.receiver === 'streaming';
}

async function probe(
  s: ReplicaSettings,
): Promise<{ inRecovery: boolean; receiver: string | undefined; replayDelaySeconds: number | null } | undefined> {
  const client = new pg.Client({
    host: '127.0.0.1',
    port: s.port,
    user: s.user,
    ...(s.password ? { password: s.password } : {}),
    database: s.database,
    connectionTimeoutMillis: 2000,
  });
  try {
    await client.connect();
    const { rows } = await client.query(
      `SELECT pg_is_in_recovery() AS r, (SELECT status FROM pg_stat_wal_receiver) AS receiver,
              extract(epoch FROM now() - pg_last_xact_replay_timestamp())::float8 AS delay`,
    );
    const r = rows[0] as { r: boolean; receiver: string | null; delay: number | null };
    return { inRecovery: r.r, receiver: r.receiver ?? undefined, replayDelaySeconds: r.delay };
  } catch {
    return undefined;
  } finally {
    await client.end().catch(() => undefined);
  }
}

/**
 * Starts the replica, taking the base backup first when its data folder is empty; reuses a running
 * one. Resolves once it streams; a failure names the step and shows the log's tail.
 */
export async function startReplica(s: ReplicaSettings, progress: (line: string) => void = () => undefined): Promise<ReplicaStatus> {
  const t0 = Date.now();
  const running = replicaPid(s);
  if (running && (await replicaReady(s)))
    return {
      service: 'pg-source-replica',
      running: true,
      pid: running,
      port: s.port,
      receiver: 'streaming',
      action: 'reused',
      readySeconds: 0,
    };
  if (!running) {
    for (const dir of [s.root, socketDir(s)]) {
      mkdirSync(dir, { recursive: true });
      own(s, dir);
    }
    if (!existsSync(join(dataDir(s), 'PG_VERSION'))) {
      rmSync(dataDir(s), { recursive: true, force: true });
      progress(`pg-source-replica: base backup of 127.0.0.1:${s.primaryPort} (pg_basebackup -R)`);
      const backup = run(
        join(s.pgBinDir, 'pg_basebackup'),
        ['-D', dataDir(s), '-R', '-X', 'stream', '-c', 'fast', '-h', s.primarySocketDir, '-p', String(s.primaryPort), '-U', s.user, '-w'],
        { ...(s.asUser ? { asUser: s.asUser } : {}) },
      );
      if (backup.status !== 0) {
        rmSync(dataDir(s), { recursive: true, force: true });
        throw new ParityError('PARITY_STACK_FAILED', `pg-source-replica: pg_basebackup failed:\n${backup.stderr}`, {
          hint: 'is pg-source running (parity stack up pg-source)?',
        });
      }
      // The copy carries the primary's port and socket folder; give it its own, and report replay often.
      const auto = join(dataDir(s), 'postgresql.auto.conf');
      const kept = readFileSync(auto, 'utf8')
        .split('\n')
        .filter((l) => !/^\s*(port|unix_socket_directories|hot_standby|wal_receiver_status_interval)\s*=/.test(l) && l.trim() !== '');
      kept.unshift(
        `port = ${s.port}`,
        `unix_socket_directories = '${socketDir(s)}'`,
        'hot_standby = on',
        'wal_receiver_status_interval = 1s',
      );
      writeFileSync(auto, `${kept.join('\n')}\n`);
      own(s, auto);
      chmodSync(dataDir(s), 0o700);
    }
    const started = run(join(s.pgBinDir, 'pg_ctl'), ['-D', dataDir(s), '-l', logPath(s), '-w', '-t', '60', 'start'], {
      ...(s.asUser ? { asUser: s.asUser } : {}),
    });
    if (started.status !== 0) {
      throw new ParityError(
        'PARITY_STACK_FAILED',
        `pg-source-replica: pg_ctl start failed:\n${started.stdout}${started.stderr}\n--- ${logPath(s)} ---\n${tail(logPath(s))}`,
      );
    }
  }
  if (!(await waitFor(() => replicaReady(s), 60_000))) {
    throw new ParityError(
      'PARITY_STACK_FAILED',
      `pg-source-replica did not reach streaming within 60s (port ${s.port}).\n--- ${logPath(s)} ---\n${tail(logPath(s))}`,
      {
        hint: `check ${logPath(s)}; another process may hold port ${s.port} (PARITY_PG_REPLICA_PORT)`,
      },
    );
  }
  const pid = replicaPid(s);
  const readySeconds = (Date.now() - t0) / 1000;
  progress(`pg-source-replica: streaming on 127.0.0.1:${s.port} (pid ${pid}, ${readySeconds.toFixed(1)}s)`);
  return {
    service: 'pg-source-replica',
    running: true,
    ...(pid ? { pid } : {}),
    port: s.port,
    receiver: 'streaming',
    action: 'started',
    readySeconds,
  };
}

/** Stops the replica (fast shutdown) if it runs; true when it did. Its data folder stays for the next start. */
export async function stopReplica(s: ReplicaSettings): Promise<boolean> {
  const pid = replicaPid(s);
  if (!pid) return false;
  const stopped = run(join(s.pgBinDir, 'pg_ctl'), ['-D', dataDir(s), '-m', 'fast', '-w', '-t', '60', 'stop'], {
    ...(s.asUser ? { asUser: s.asUser } : {}),
  });
  if (stopped.status !== 0) await stopPid(pid);
  return true;
}

/** For `stack status`: undefined when no replica was ever set up here. */
export async function replicaStatus(s: ReplicaSettings): Promise<ReplicaStatus | undefined> {
  if (!existsSync(join(dataDir(s), 'PG_VERSION'))) return undefined;
  const pid = replicaPid(s);
  if (!pid) return { service: 'pg-source-replica', running: false, port: s.port };
  const p = await probe(s);
  return {
    service: 'pg-source-replica',
    running: true,
    pid,
    port: s.port,
    ...(p ? { receiver: p.receiver ?? 'none', replayDelaySeconds: p.replayDelaySeconds } : {}),
  };
}
