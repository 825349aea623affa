/**
 * A Kafka Connect worker with Debezium's PostgreSQL source and JDBC sink connectors
 * (`parity stack up --with-connect`, or PARITY_STACK_CONNECT=1), for the conformance proof: Debezium
 * itself streams a table next to parity, and Debezium's own sink reads parity's topics.
 *
 * Standalone mode: the REST API (connectors created, inspected and deleted over HTTP) with offsets in
 * a file, so a worker needs no topics of its own in the shared Kafka. The jars come from Maven Central
 * through `mvn dependency:copy-dependencies` (deploy/local/connect-debezium-pom.xml on the classpath,
 * deploy/local/connect-avro-pom.xml — Apicurio's Avro converter — as an isolated plugin folder), once,
 * into the stack's cache. Debezium 3.x needs Java 21+.
 *
 * The same functions start a worker with other folders and ports: the conformance test starts its own.
 */
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { ParityError } from '../core/errors.js';
import { PROJECT_ROOT, type StackConfig } from './config.js';
import { findJava, mavenCopy } from './fetch.js';
import { commandLine, isAlive, removeFile, rssMb, startDetached, stopPid, tail, waitFor } from './process.js';

/** Kafka Connect's runtime and Debezium's connectors, as pinned in deploy/local/connect-debezium-pom.xml. */
export const CONNECT_VERSION = '4.3.0';
export const DEBEZIUM_VERSION = '3.6.0.Final';
const MAIN_CLASS = 'org.apache.kafka.connect.cli.ConnectStandalone';
const DEFAULT_PORT = 18083;

export interface ConnectSettings {
  /** `java` of 21+ (default: the newest found, see findJava). */
  java?: string;
  /** Worker and connector jars (the classpath). */
  libDir: string;
  /** Connect's plugin.path: one folder per isolated plugin (the Avro converter). */
  pluginPath: string;
  /** Folder of this worker: worker.properties, offsets, log4j2 config, connect.log, connect.pid. */
  root: string;
  /** REST port on 127.0.0.1. */
  port: number;
  /** Kafka bootstrap servers, host:port. */
  brokers: string[];
}

export interface ConnectStatus {
  service: 'connect';
  running: boolean;
  pid?: number;
  port: number;
  version?: string;
  action?: 'reused' | 'started';
  readySeconds?: number;
  rssMb?: number;
  nodes?: undefined;
}

/** `--with-connect` was not given but PARITY_STACK_CONNECT=1 (or true) asks for the worker. */
export function connectWanted(env: NodeJS.ProcessEnv = process.env): boolean {
  return env.PARITY_STACK_CONNECT === '1' || env.PARITY_STACK_CONNECT === 'true';
}

/** Where the jars live in the cache (nothing fetched). */
export function connectJarDirs(config: Pick<StackConfig, 'cacheDir'>): { base: string; libDir: string; pluginPath: string } {
  const base = join(config.cacheDir, `connect-${CONNECT_VERSION}-debezium-${DEBEZIUM_VERSION}`);
  return { base, libDir: join(base, 'lib'), pluginPath: join(base, 'plugins') };
}

/**
 * The jar folders in the cache, filled by Maven on first use and again whenever a POM changes (the
 * marker holds their hash); later calls are instant.
 */
export function ensureConnectJars(config: Pick<StackConfig, 'cacheDir'>): { libDir: string; pluginPath: string } {
  const { base, libDir, pluginPath } = connectJarDirs(config);
  const avroDir = join(pluginPath, 'apicurio-avro-converter');
  const poms = ['deploy/local/connect-debezium-pom.xml', 'deploy/local/connect-avro-pom.xml'].map((p) => join(PROJECT_ROOT, p));
  const hash = createHash('sha256');
  for (const pom of poms) hash.update(readFileSync(pom));
  const digest = hash.digest('hex');
  const marker = join(base, '.complete');
  if (!existsSync(marker) || readFileSync(marker, 'utf8').trim() !== digest) {
    rmSync(base, { recursive: true, force: true });
    mkdirSync(libDir, { recursive: true });
    mkdirSync(avroDir, { recursive: true });
    mavenCopy(poms[0]!, libDir, `Kafka Connect ${CONNECT_VERSION} with Debezium ${DEBEZIUM_VERSION}`);
    mavenCopy(poms[1]!, avroDir, "Apicurio's Avro converter for Kafka Connect");
    writeFileSync(marker, `${digest}\n`);
  }
  return { libDir, pluginPath };
}

/**
 * The stack's worker: `<stateDir>/connect`, port PARITY_CONNECT_PORT (default 18083), the stack's
 * Kafka. Fetches nothing: `ensureConnectJars` before `startConnect`.
 */
export function stackConnectSettings(config: StackConfig, env: NodeJS.ProcessEnv = process.env): ConnectSettings {
  const raw = env.PARITY_CONNECT_PORT;
  const port = raw === undefined ? DEFAULT_PORT : Number(raw);
  if (!Number.isInteger(port) || port < 1 || port > 65535) {
    throw new ParityError('PARITY_BAD_INPUT', `PARITY_CONNECT_PORT=${raw} is not a TCP port`, {
      hint: `use a free port from 1 to 65535, or unset it for ${DEFAULT_PORT}`,
    });
  }
  const { libDir, pluginPath } = connectJarDirs(config);
  return {
    libDir,
    pluginPath,
    root: join(config.stateDir, 'connect'),
    port,
    brokers: [`127.0.0.1:${config.ports.kafka}`],
  };
}

const pidPath = (s: ConnectSettings) => join(s.root, 'connect.pid');
/** The worker's log (Connect's and the connectors' lines, INFO and up). */
export const connectLogFile = (s: ConnectSettings) => join(s.root, 'connect.log');
/** The worker's REST base URL. */
export const connectUrl = (s: ConnectSettings) => `http://127.0.0.1:${s.port}`;

/** PID of our worker (recorded PID, alive, and its command line is Connect's standalone main). */
export function connectPid(s: ConnectSettings): number | undefined {
  const file = pidPath(s);
  if (!existsSync(file)) return undefined;
  const pid = Number.parseInt(readFileSync(file, 'utf8').split('\n')[0] ?? '', 10);
  if (!Number.isInteger(pid) || pid <= 0 || !isAlive(pid)) return undefined;
  return commandLine(pid).includes(MAIN_CLASS) && commandLine(pid).includes(s.root) ? pid : undefined;
}

/** The worker properties: JsonConverter with schemas (what `schemas.enable=true` Debezium users run), file offsets, REST on 127.0.0.1. */
export function workerProperties(s: ConnectSettings): string {
  return [
    `bootstrap.servers=${s.brokers.join(',')}`,
    'key.converter=org.apache.kafka.connect.json.JsonConverter',
    'value.converter=org.apache.kafka.connect.json.JsonConverter',
    'key.converter.schemas.enable=true',
    'value.converter.schemas.enable=true',
    `offset.storage.file.filename=${join(s.root, 'offsets')}`,
    'offset.flush.interval.ms=1000',
    `listeners=http://127.0.0.1:${s.port}`,
    `plugin.path=${s.pluginPath}`,
    // Connectors come and go over REST; a standalone worker keeps none across restarts.
    '',
  ].join('\n');
}

const LOG4J2 = [
  'status = warn',
  'appender.out.type = Console',
  'appender.out.name = out',
  'appender.out.layout.type = PatternLayout',
  'appender.out.layout.pattern = [%d] %p %m (%c{1})%n',
  'rootLogger.level = info',
  'rootLogger.appenderRef.out.ref = out',
  // The worker's per-record and config dumps drown what matters (connector state, errors).
  'logger.config.name = org.apache.kafka.common.config.AbstractConfig',
  'logger.config.level = warn',
  '',
].join('\n');

/** Answers on REST: GET / returns the worker's version. */
export async function connectVersion(s: ConnectSettings): Promise<string | undefined> {
  try {
    const res = await fetch(`${connectUrl(s)}/`, { signal: AbortSignal.timeout(2_000) });
    if (!res.ok) return undefined;
    return ((await res.json()) as { version?: string }).version;
  } catch {
    return undefined;
  }
}

/** Starts the worker unless ours already runs, and waits until its REST API answers. */
export async function startConnect(s: ConnectSettings, progress: (line: string) => void = () => undefined): Promise<ConnectStatus> {
  const t0 = Date.now();
  const existing = connectPid(s);
  if (existing && (await connectVersion(s)))
    return { service: 'connect', running: true, pid: existing, port: s.port, action: 'reused', readySeconds: 0 };
  if (!existing) {
    mkdirSync(s.root, { recursive: true });
    const props = join(s.root, 'worker.properties');
    const log4j = join(s.root, 'log4j2.properties');
    writeFileSync(props, workerProperties(s));
    writeFileSync(log4j, LOG4J2);
    startDetached({
      command: s.java ?? findJava(21, `Debezium ${DEBEZIUM_VERSION}`),
      args: [
        '-Xms128m',
        '-Xmx768m',
        '-Duser.timezone=UTC',
        `-Dlog4j2.configurationFile=${log4j}`,
        '-cp',
        join(s.libDir, '*'),
        MAIN_CLASS,
        props,
      ],
      logFile: connectLogFile(s),
      pidFile: pidPath(s),
      cwd: s.root,
    });
  }
  const ok = await waitFor(async () => (await connectVersion(s)) !== undefined || connectPid(s) === undefined, 120_000, 500);
  const pid = connectPid(s);
  if (!ok || pid === undefined) {
    throw new ParityError(
      'PARITY_STACK_FAILED',
      `Kafka Connect ${pid ? 'is running but did not answer' : 'exited'} within 120s (port ${s.port}).\n--- last lines of ${connectLogFile(s)} ---\n${tail(connectLogFile(s))}`,
      { hint: `check ${connectLogFile(s)}; another process may hold port ${s.port}` },
    );
  }
  const readySeconds = (Date.now() - t0) / 1000;
  progress(`connect: ready on ${connectUrl(s)} (pid ${pid}, ${readySeconds.toFixed(1)}s)`);
  return { service: 'connect', running: true, pid, port: s.port, version: await connectVersion(s), action: 'started', readySeconds };
}

/** Stops our worker by its PID (SIGTERM: Connect stops its connectors and flushes offsets); false when none ran. */
export async function stopConnect(s: ConnectSettings): Promise<boolean> {
  const pid = connectPid(s);
  if (pid === undefined) return false;
  await stopPid(pid, 30_000);
  removeFile(pidPath(s));
  return true;
}

/** For `stack status`: the worker's line while it runs (it is optional: a stopped worker is no failure of the stack). */
export async function connectStatus(s: ConnectSettings): Promise<ConnectStatus | undefined> {
  const pid = connectPid(s);
  if (pid === undefined) return undefined;
  return { service: 'connect', running: true, pid, port: s.port, version: await connectVersion(s), rssMb: rssMb(pid) };
}

/** A connector's state as the worker's REST API reports it. */
export interface ConnectorState {
  connector: { state: string; trace?: string };
  tasks: { id: number; state: string; trace?: string }[];
}

/** The worker's REST API: create, inspect and delete connectors. */
export class ConnectRest {
  constructor(private readonly base: string) {}

  private async call(method: string, path: string, body?: unknown): Promise<unknown> {
    const res = await fetch(`${this.base}${path}`, {
      method,
      headers: body === undefined ? {} : { 'content-type': 'application/json' },
      body: body === undefined ? undefined : JSON.stringify(body),
      signal: AbortSignal.timeout(60_000),
    });
    const text = await res.text();
    if (!res.ok) throw new ParityError('PARITY_STACK_FAILED', `Kafka Connect ${method} ${path}: HTTP ${res.status} ${text}`);
    return text ? JSON.parse(text) : undefined;
  }

  /** Creates (or reconfigures) connector `name` with `config` (every value a string, as Connect wants). */
  async put(name: string, config: Record<string, string>): Promise<void> {
    await this.call('PUT', `/connectors/${encodeURIComponent(name)}/config`, config);
  }

  async status(name: string): Promise<ConnectorState> {
    return (await this.call('GET', `/connectors/${encodeURIComponent(name)}/status`)) as ConnectorState;
  }

  async delete(name: string): Promise<void> {
    await this.call('DELETE', `/connectors/${encodeURIComponent(name)}`);
  }

  /** Waits until the connector and all its tasks run; a FAILED one ends the wait with its stack trace. */
  async waitRunning(name: string, timeoutMs = 120_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    let last: ConnectorState | undefined;
    while (Date.now() < deadline) {
      last = await this.status(name).catch(() => undefined);
      const failed = last && [last.connector, ...last.tasks].find((t) => t.state === 'FAILED');
      if (failed) throw new ParityError('PARITY_STACK_FAILED', `connector ${name} failed: ${failed.trace ?? '(no trace)'}`);
      if (last && last.connector.state === 'RUNNING' && last.tasks.length > 0 && last.tasks.every((t) => t.state === 'RUNNING')) return;
      await new Promise((r) => setTimeout(r, 500));
    }
    throw new ParityError('PARITY_STACK_FAILED', `connector ${name} not running within ${timeoutMs / 1000}s: ${JSON.stringify(last)}`);
  }
}
