/**
 * The five local services: how each starts, how we know it really answers, and how it stops.
 */
import { chmodSync, chownSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import pg from 'pg';
import { Kafka, logLevel } from 'kafkajs';
import { Redis } from 'ioredis';
import { ParityError } from '../core/errors.js';
import { stackEnv, type ServiceName, type StackConfig } from './config.js';
import { apicurioDir, ensureApicurio, ensureKafka, ensurePostgres, ensureRedisServer, findJava, kafkaLibDir } from './fetch.js';
import { isAlive, removeFile, run, runningPid, startDetached, stopPid, tail, waitFor } from './process.js';

export interface ServiceDef {
  name: ServiceName;
  port(config: StackConfig): number;
  logFile(config: StackConfig): string;
  /** Fetches or installs what the service needs (may download on a fresh machine). */
  prepare(config: StackConfig): void;
  /** PID of our running instance, if any. */
  pid(config: StackConfig): number | undefined;
  start(config: StackConfig): Promise<void>;
  /** A real request: a SQL query, a Kafka metadata call, an HTTP 200, a PING. */
  ready(config: StackConfig): Promise<boolean>;
  stop(config: StackConfig): Promise<boolean>;
  readyTimeoutMs: number;
}

const pidFile = (config: StackConfig, name: ServiceName) => join(config.stateDir, 'run', `${name}.pid`);
const logFile = (config: StackConfig, name: ServiceName) => join(config.stateDir, 'logs', `${name}.log`);

// ---------- PostgreSQL ----------

const PG_USER = 'postgres';
const asServerUser = () => (process.getuid?.() === 0 ? PG_USER : undefined);

function pgService(name: 'pg-source' | 'pg-target', portOf: (c: StackConfig) => number): ServiceDef {
  const dataDir = (c: StackConfig) => join(c.pgRoot, name, 'data');
  const socketDir = (c: StackConfig) => join(c.pgRoot, name, 'run');
  const pgLog = (c: StackConfig) => join(c.pgRoot, name, 'server.log');
  const url = (c: StackConfig) => `postgres://${c.pgUser}@127.0.0.1:${portOf(c)}/postgres`;

  function ownDirs(c: StackConfig): void {
    for (const dir of [c.pgRoot, join(c.pgRoot, name), dataDir(c), socketDir(c)]) {
      mkdirSync(dir, { recursive: true });
      if (asServerUser()) {
        const uid = Number(run('id', ['-u', PG_USER]).stdout.trim());
        const gid = Number(run('id', ['-g', PG_USER]).stdout.trim());
        chownSync(dir, uid, gid);
      }
    }
    chmodSync(dataDir(c), 0o700);
  }

  return {
    name,
    port: portOf,
    logFile: pgLog,
    readyTimeoutMs: 30_000,
    prepare: (c) => ensurePostgres(c),
    pid(c) {
      const file = join(dataDir(c), 'postmaster.pid');
      if (!existsSync(file)) return undefined;
      const pid = Number.parseInt(readFileSync(file, 'utf8').split('\n')[0] ?? '', 10);
      return Number.isInteger(pid) && isAlive(pid) ? pid : undefined;
    },
    async start(c) {
      ownDirs(c);
      if (!existsSync(join(dataDir(c), 'PG_VERSION'))) {
        const init = run(join(c.pgBinDir, 'initdb'), ['-D', dataDir(c), '-U', c.pgUser, '--auth=trust', '--encoding=UTF8', '--locale=C.UTF-8'], { asUser: asServerUser() });
        if (init.status !== 0) throw new ParityError('PARITY_STACK_FAILED', `${name}: initdb failed:\n${init.stderr}`);
        // The settings logical replication needs, plus room for the tests' many slots and connections.
        const conf = [
          `port = ${portOf(c)}`,
          `listen_addresses = '127.0.0.1'`,
          `unix_socket_directories = '${socketDir(c)}'`,
          'wal_level = logical',
          'max_replication_slots = 32',
          'max_wal_senders = 32',
          'max_connections = 300',
          'shared_buffers = 256MB',
          'max_wal_size = 4GB',
          'wal_sender_timeout = 60s',
          `timezone = 'UTC'`,
          'log_min_messages = warning',
          "log_line_prefix = '%m [%p] %q%u@%d '",
        ].join('\n');
        writeFileSync(join(dataDir(c), 'postgresql.auto.conf'), `${conf}\n`);
        if (asServerUser()) {
          const uid = Number(run('id', ['-u', PG_USER]).stdout.trim());
          const gid = Number(run('id', ['-g', PG_USER]).stdout.trim());
          chownSync(join(dataDir(c), 'postgresql.auto.conf'), uid, gid);
        }
        writeFileSync(join(dataDir(c), 'pg_hba.conf'), ['local all all trust', 'host all all 127.0.0.1/32 trust', 'host replication all 127.0.0.1/32 trust', 'local replication all trust', ''].join('\n'));
      }
      const started = run(join(c.pgBinDir, 'pg_ctl'), ['-D', dataDir(c), '-l', pgLog(c), '-w', '-t', '30', 'start'], { asUser: asServerUser() });
      if (started.status !== 0) {
        throw new ParityError('PARITY_STACK_FAILED', `${name}: pg_ctl start failed:\n${started.stdout}${started.stderr}\n--- ${pgLog(c)} ---\n${tail(pgLog(c))}`);
      }
      const pid = this.pid(c);
      if (pid) {
        mkdirSync(join(c.stateDir, 'run'), { recursive: true });
        writeFileSync(pidFile(c, name), `${pid}\n`);
      }
    },
    async ready(c) {
      const client = new pg.Client({ connectionString: url(c), connectionTimeoutMillis: 2000 });
      try {
        await client.connect();
        await client.query('SELECT 1');
        const exists = await client.query('SELECT 1 FROM pg_database WHERE datname = $1', [c.pgDatabase]);
        if (exists.rowCount === 0) await client.query(`CREATE DATABASE ${pg.escapeIdentifier(c.pgDatabase)}`);
        // The role shares its name with parity's control schema; with the default search_path
        // ("$user", public) unqualified tables would land in that schema once it exists.
        await client.query(`ALTER ROLE ${pg.escapeIdentifier(c.pgUser)} SET search_path TO public`);
        return true;
      } finally {
        await client.end().catch(() => undefined);
      }
    },
    async stop(c) {
      const pid = this.pid(c);
      if (!pid) return false;
      // pg_ctl signals the postmaster recorded in postmaster.pid: the process we started.
      const stopped = run(join(c.pgBinDir, 'pg_ctl'), ['-D', dataDir(c), '-m', 'fast', '-w', '-t', '60', 'stop'], { asUser: asServerUser() });
      if (stopped.status !== 0) await stopPid(pid);
      removeFile(pidFile(c, name));
      return true;
    },
  };
}

// ---------- Kafka ----------

const KAFKA_CLUSTER_ID = '4L6g3nShT-eMCtK--X86sw';

function kafkaFiles(c: StackConfig) {
  const dir = join(c.stateDir, 'kafka');
  return { dir, data: join(dir, 'data'), properties: join(dir, 'server.properties'), log4j: join(dir, 'log4j.properties'), logs: join(dir, 'logs') };
}

const kafka: ServiceDef = {
  name: 'kafka',
  port: (c) => c.ports.kafka,
  logFile: (c) => logFile(c, 'kafka'),
  readyTimeoutMs: 90_000,
  prepare: (c) => void ensureKafka(c),
  pid: (c) => runningPid(pidFile(c, 'kafka'), kafkaFiles(c).properties),
  async start(c) {
    const f = kafkaFiles(c);
    mkdirSync(f.data, { recursive: true });
    mkdirSync(f.logs, { recursive: true });
    const p = c.ports;
    writeFileSync(
      f.properties,
      [
        'process.roles=broker,controller',
        'node.id=1',
        `controller.quorum.voters=1@127.0.0.1:${p.kafkaController}`,
        `listeners=PLAINTEXT://127.0.0.1:${p.kafka},CONTROLLER://127.0.0.1:${p.kafkaController}`,
        `advertised.listeners=PLAINTEXT://127.0.0.1:${p.kafka}`,
        'inter.broker.listener.name=PLAINTEXT',
        'controller.listener.names=CONTROLLER',
        'listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT',
        `log.dirs=${f.data}`,
        'num.partitions=1',
        'default.replication.factor=1',
        'offsets.topic.replication.factor=1',
        'offsets.topic.num.partitions=1',
        'transaction.state.log.replication.factor=1',
        'transaction.state.log.min.isr=1',
        'transaction.state.log.num.partitions=1',
        'share.coordinator.state.topic.replication.factor=1',
        'group.initial.rebalance.delay.ms=0',
        'auto.create.topics.enable=true',
        'log.retention.hours=24',
        'log.segment.bytes=268435456',
        '',
      ].join('\n'),
    );
    writeFileSync(
      f.log4j,
      ['log4j.rootLogger=INFO, stdout', 'log4j.appender.stdout=org.apache.log4j.ConsoleAppender', 'log4j.appender.stdout.layout=org.apache.log4j.PatternLayout', 'log4j.appender.stdout.layout.ConversionPattern=[%d] %p %m (%c)%n', 'log4j.logger.kafka=INFO', 'log4j.logger.org.apache.kafka=INFO', 'log4j.logger.state.change.logger=WARN', ''].join('\n'),
    );
    const lib = kafkaLibDir(c);
    const java = findJava(17);
    const jvm = ['-Xms512m', '-Xmx512m', '-XX:+UseG1GC', '-XX:MaxGCPauseMillis=20', '-Djava.awt.headless=true', `-Dlog4j.configuration=file:${f.log4j}`, `-Dkafka.logs.dir=${f.logs}`, '-cp', `${lib}/*`];
    if (!existsSync(join(f.data, 'meta.properties'))) {
      const format = run(java, ['-Xmx128m', `-Dlog4j.configuration=file:${f.log4j}`, '-cp', `${lib}/*`, 'kafka.tools.StorageTool', 'format', '-t', KAFKA_CLUSTER_ID, '-c', f.properties, '--ignore-formatted']);
      if (format.status !== 0) throw new ParityError('PARITY_STACK_FAILED', `kafka: storage format failed:\n${format.stdout}${format.stderr}`);
    }
    startDetached({ command: java, args: [...jvm, 'kafka.Kafka', f.properties], logFile: logFile(c, 'kafka'), pidFile: pidFile(c, 'kafka') });
  },
  async ready(c) {
    const client = new Kafka({ clientId: 'parity-stack', brokers: [`127.0.0.1:${c.ports.kafka}`], logLevel: logLevel.NOTHING, retry: { retries: 0 }, connectionTimeout: 2000 });
    const admin = client.admin();
    try {
      await admin.connect();
      const cluster = await admin.describeCluster();
      return cluster.brokers.length > 0 && cluster.controller !== null;
    } finally {
      await admin.disconnect().catch(() => undefined);
    }
  },
  async stop(c) {
    const pid = kafka.pid(c);
    if (!pid) return false;
    await stopPid(pid, 30_000);
    removeFile(pidFile(c, 'kafka'));
    return true;
  },
};

// ---------- Apicurio Registry ----------

const registry: ServiceDef = {
  name: 'registry',
  port: (c) => c.ports.registry,
  logFile: (c) => logFile(c, 'registry'),
  readyTimeoutMs: 90_000,
  prepare: (c) => {
    ensureApicurio(c);
    findJava(21);
  },
  pid: (c) => runningPid(pidFile(c, 'registry'), `quarkus.http.port=${c.ports.registry}`),
  async start(c) {
    const app = apicurioDir(c);
    const java = findJava(21);
    const args = [
      '-Xms128m',
      '-Xmx384m',
      '-Dquarkus.http.host=127.0.0.1',
      `-Dquarkus.http.port=${c.ports.registry}`,
      // Quarkus's management interface binds 0.0.0.0:9000 by default; keep it on loopback and our own port.
      '-Dquarkus.management.host=127.0.0.1',
      `-Dquarkus.management.port=${c.ports.registryManagement}`,
      // Let tests and operators delete subjects and versions, as Confluent allows.
      '-Dapicurio.rest.deletion.artifact.enabled=true',
      '-Dapicurio.rest.deletion.artifact-version.enabled=true',
      '-Dapicurio.rest.deletion.group.enabled=true',
      '-jar',
      join(app, 'quarkus-run.jar'),
    ];
    startDetached({ command: java, args, cwd: app, logFile: logFile(c, 'registry'), pidFile: pidFile(c, 'registry') });
  },
  async ready(c) {
    const res = await fetch(`${stackEnv(c).PARITY_REGISTRY_URL}/subjects`, { signal: AbortSignal.timeout(2000) });
    return res.status === 200;
  },
  async stop(c) {
    const pid = registry.pid(c);
    if (!pid) return false;
    await stopPid(pid);
    removeFile(pidFile(c, 'registry'));
    return true;
  },
};

// ---------- Redis ----------

const redis: ServiceDef = {
  name: 'redis',
  port: (c) => c.ports.redis,
  logFile: (c) => logFile(c, 'redis'),
  readyTimeoutMs: 15_000,
  prepare: () => void ensureRedisServer(),
  pid: (c) => runningPid(pidFile(c, 'redis'), `:${c.ports.redis}`),
  async start(c) {
    const bin = ensureRedisServer();
    const dir = join(c.stateDir, 'redis');
    mkdirSync(dir, { recursive: true });
    // Positional address keeps the port in the command line, which is how we recognise our PID.
    startDetached({
      command: bin,
      args: [`--bind`, '127.0.0.1', '--port', String(c.ports.redis), '--dir', dir, '--save', '', '--appendonly', 'no', '--daemonize', 'no', '--protected-mode', 'yes'],
      logFile: logFile(c, 'redis'),
      pidFile: pidFile(c, 'redis'),
    });
  },
  async ready(c) {
    const client = new Redis({ host: '127.0.0.1', port: c.ports.redis, lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null, connectTimeout: 1000 });
    // A refused connection is the answer "not ready yet"; connect() reports it, the event must not.
    client.on('error', () => undefined);
    try {
      await client.connect();
      return (await client.ping()) === 'PONG';
    } finally {
      client.disconnect();
    }
  },
  async stop(c) {
    const pid = redis.pid(c);
    if (!pid) return false;
    await stopPid(pid);
    removeFile(pidFile(c, 'redis'));
    return true;
  },
};

export const SERVICE_DEFS: Record<ServiceName, ServiceDef> = {
  'pg-source': pgService('pg-source', (c) => c.ports.pgSource),
  'pg-target': pgService('pg-target', (c) => c.ports.pgTarget),
  kafka,
  registry,
  redis,
};
