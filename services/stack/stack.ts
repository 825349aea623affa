/**
 * `parity stack up | down | status`: the local stack as one unit. `up` is idempotent (a running
 * service is reused), waits until every service really answers, and names the service that failed
 * with the tail of its log. Settings a running service or its state dir cannot take are refused
 * before anything starts (exit 2), never silently ignored.
 */
import { ParityError } from '../core/errors.js';
import { SERVICES, stackConfig, type ServiceName, type StackConfig } from './config.js';
import { rssMb, tail, waitFor } from './process.js';
import type { NodeStatus } from './service-def.js';
import { SERVICE_DEFS } from './services.js';
import { replicaStatus, replicaWanted, stackReplicaSettings, startReplica, stopReplica, type ReplicaStatus } from './replica.js';
import {
  type ConnectStatus,
  connectStatus,
  connectWanted,
  ensureConnectJars,
  stackConnectSettings,
  startConnect,
  stopConnect,
} from './connect.js';

export interface ServiceStatus {
  service: ServiceName;
  running: boolean;
  pid?: number;
  port: number;
  rssMb?: number;
  /** The running server's version (Kafka: of the jars it runs; the others: as the server reports it). */
  version?: string;
  /** Kafka: each node of the cluster. */
  nodes?: NodeStatus[];
  /** For `up`: reused a running instance, or started it now; and how long until it answered. */
  action?: 'reused' | 'started';
  readySeconds?: number;
}

export interface UpOptions {
  services?: ServiceName[];
  /** Also start the streaming replica of pg-source (replica.ts); default PARITY_STACK_REPLICA=1. */
  replica?: boolean;
  /** Also start the Kafka Connect worker with Debezium's connectors (connect.ts); default PARITY_STACK_CONNECT=1. */
  connect?: boolean;
  onProgress?: (line: string) => void;
}

async function upOne(name: ServiceName, config: StackConfig, t0: number, progress: (line: string) => void): Promise<ServiceStatus> {
  const def = SERVICE_DEFS[name];
  const existing = def.pid(config);
  if (existing && (await def.ready(config).catch(() => false))) {
    return {
      service: name,
      running: true,
      pid: existing,
      port: def.port(config),
      action: 'reused',
      readySeconds: (Date.now() - t0) / 1000,
    };
  }
  if (!existing) await def.start(config);
  const ok = await waitFor(() => def.ready(config), def.readyTimeoutMs);
  const pid = def.pid(config);
  if (!ok) {
    const state = pid ? 'is running but did not answer' : 'exited';
    throw new ParityError(
      'PARITY_STACK_FAILED',
      `${name} ${state} within ${def.readyTimeoutMs / 1000}s (port ${def.port(config)}).\n--- last lines of ${def.logFile(config)} ---\n${tail(def.logFile(config))}`,
      {
        hint: `check ${def.logFile(config)}; another process may hold port ${def.port(config)}`,
        details: { service: name },
      },
    );
  }
  const readySeconds = (Date.now() - t0) / 1000;
  progress(`${name}: ready on 127.0.0.1:${def.port(config)} (pid ${pid}, ${readySeconds.toFixed(1)}s)`);
  return { service: name, running: true, pid, port: def.port(config), action: 'started', readySeconds };
}

/** Refuses (exit 2) when a running service or a state dir cannot take the configured settings; changes nothing. */
export function checkSettings(names: ServiceName[], config: StackConfig): void {
  const conflicts = names.map((name) => ({ name, conflict: SERVICE_DEFS[name].conflict(config) })).filter((c) => c.conflict !== undefined);
  if (conflicts.length === 0) return;
  throw new ParityError('PARITY_BAD_INPUT', conflicts.map((c) => `${c.name}: ${c.conflict!.message}`).join('\n'), {
    hint: conflicts.map((c) => c.conflict!.hint).join('\n  hint: '),
    details: { services: conflicts.map((c) => c.name) },
  });
}

export async function stackUp(
  options: UpOptions = {},
  config: StackConfig = stackConfig(),
): Promise<(ServiceStatus | ReplicaStatus | ConnectStatus)[]> {
  const names = options.services ?? SERVICES;
  const progress = options.onProgress ?? (() => undefined);
  checkSettings(names, config);
  // Fetching is sequential and may download on a fresh machine; starting is parallel.
  for (const name of names) {
    try {
      SERVICE_DEFS[name].prepare(config);
    } catch (err) {
      if (err instanceof ParityError) throw new ParityError(err.code, `${name}: ${err.message}`, { hint: err.hint, cause: err });
      throw err;
    }
  }
  const t0 = Date.now();
  const results = await Promise.allSettled(names.map((name) => upOne(name, config, t0, progress)));
  const failures = results.filter((r): r is PromiseRejectedResult => r.status === 'rejected');
  if (failures.length > 0) {
    const messages = failures.map((f) => (f.reason instanceof Error ? f.reason.message : String(f.reason)));
    throw new ParityError('PARITY_STACK_FAILED', messages.join('\n\n'), { hint: (failures[0]?.reason as ParityError | undefined)?.hint });
  }
  const up: (ServiceStatus | ReplicaStatus | ConnectStatus)[] = results.map((r) => (r as PromiseFulfilledResult<ServiceStatus>).value);
  if ((options.replica ?? replicaWanted()) && names.includes('pg-source'))
    up.push(await startReplica(stackReplicaSettings(config), progress));
  if ((options.connect ?? connectWanted()) && names.includes('kafka')) {
    ensureConnectJars(config);
    up.push(await startConnect(stackConnectSettings(config), progress));
  }
  return up;
}

export async function stackDown(services: ServiceName[] = SERVICES, config: StackConfig = stackConfig()): Promise<ServiceName[]> {
  const stopped: ServiceName[] = [];
  // Consumers of the others stop first: registry and Redis, then Kafka, then the databases.
  const order: ServiceName[] = ['registry', 'redis', 'kafka', 'pg-target', 'pg-source'];
  // The replica of pg-source stops with it (first: a primary stopping under it makes it log errors).
  if (services.includes('pg-source')) await stopReplica(stackReplicaSettings(config));
  // The Connect worker (if one runs) stops before the Kafka it writes to.
  if (services.includes('kafka')) await stopConnect(stackConnectSettings(config));
  for (const name of order.filter((n) => services.includes(n))) {
    if (await SERVICE_DEFS[name].stop(config)) stopped.push(name);
  }
  return stopped;
}

/** Each service: running or not, PID, the port it really listens on, RSS, version, and Kafka's nodes. */
export async function stackStatus(config: StackConfig = stackConfig()): Promise<(ServiceStatus | ReplicaStatus | ConnectStatus)[]> {
  const replica = await replicaStatus(stackReplicaSettings(config));
  const connect = await connectStatus(stackConnectSettings(config));
  const services = await Promise.all(
    SERVICES.map(async (name) => {
      const def = SERVICE_DEFS[name];
      const pid = def.pid(config);
      const nodes = def.nodes?.(config);
      const anyRunning = pid !== undefined || (nodes ?? []).some((n) => n.running);
      const rss = nodes ? nodes.reduce((sum, n) => sum + (n.rssMb ?? 0), 0) : pid ? rssMb(pid) : undefined;
      const status: ServiceStatus = {
        service: name,
        running: pid !== undefined,
        pid,
        port: def.runningPort(config) ?? def.port(config),
        rssMb: anyRunning ? rss : undefined,
        version: anyRunning ? await def.version(config).catch(() => undefined) : undefined,
      };
      if (nodes) status.nodes = nodes;
      return status;
    }),
  );
  return [...services, ...(replica ? [replica] : []), ...(connect ? [connect] : [])];
}
