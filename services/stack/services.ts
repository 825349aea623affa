/**
 * The five local services: how each starts, how we know it really answers, how it stops, and which
 * port and version the running instance really has. Kafka lives in kafka-cluster.ts.
 */
import { chmodSync, chownSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import pg from 'pg';
import { Redis } from 'ioredis';
import { ParityError } from '../core/errors.js';
import { stackEnv, type ServiceName, type StackConfig } from './config.js';
import { apicurioDir, ensureApicurio, ensurePostgres, ensureRedisServer, findJava } from './fetch.js';
import { kafka } from './kafka-cluster.js';
import { ensurePgPassword, PG_HBA, scramVerifier } from './pg-auth.js';
import { commandLine, isAlive, removeFile, run, runningPid, startDetached, stopPid, tail } from './process.js';
import { logFile, pidFile, type ServiceDef } from './service-def.js';
import {
  ensureCertificates,
  httpsGet,
  PG_HBA_SECURE,
  PG_SSL_SETTINGS,
  registryHttpsArgs,
  secureFiles,
  secureKafka,
  SECURE_USER,
  stackSecret,
  stackTls,
  writeRedisConf,
} from './secure.js';

export type { ServiceDef } from './service-def.js';

// ---------- PostgreSQL ----------

const PG_USER = 'postgres';
const asServerUser = () => (process.getuid?.() === 0 ? PG_USER : undefined);

function serverIds(): { uid: number; gid: number } {
  return { uid: Number(run('id', ['-u', PG_USER]).stdout.trim()), gid: Number(run('id', ['-g', PG_USER]).stdout.trim()) };
}

function pgService(name: 'pg-source' | 'pg-target', portOf: (c: StackConfig) => number, variable: string): ServiceDef {
  const dataDir = (c: StackConfig) => join(c.pgRoot, name, 'data');
  const socketDir = (c: StackConfig) => join(c.pgRoot, name, 'run');
  const pgLog = (c: StackConfig) => join(c.pgRoot, name, 'server.log');
  const autoConf = (c: StackConfig) => join(dataDir(c), 'postgresql.auto.conf');
  const tcp = (c: StackConfig) => ({
    host: '127.0.0.1',
    port: portOf(c),
    user: c.pgUser,
    password: c.pgPassword,
    database: 'postgres',
    connectionTimeoutMillis: 2000,
    ...(c.secure ? { ssl: stackTls(c) } : {}),
  });

  function ownDirs(c: StackConfig): void {
    for (const dir of [c.pgRoot, join(c.pgRoot, name), dataDir(c), socketDir(c)]) {
      mkdirSync(dir, { recursive: true });
      if (asServerUser()) {
        const { uid, gid } = serverIds();
        chownSync(dir, uid, gid);
      }
    }
    chmodSync(dataDir(c), 0o700);
  }

  /** Writes a file of the data dir, owned by the server user when we run as root. */
  function writeOwned(file: string, text: string): void {
    writeFileSync(file, text);
    if (asServerUser()) {
      const { uid, gid } = serverIds();
      chownSync(file, uid, gid);
    }
  }

  /** postmaster.pid: line 1 the PID, line 4 the port the running server listens on. */
  function postmaster(c: StackConfig): { pid: number; port: number } | undefined {
    const file = join(dataDir(c), 'postmaster.pid');
    if (!existsSync(file)) return undefined;
    const lines = readFileSync(file, 'utf8').split('\n');
    const pid = Number.parseInt(lines[0] ?? '', 10);
    if (!Number.isInteger(pid) || !isAlive(pid)) return undefined;
    return { pid, port: Number.parseInt(lines[3] ?? '', 10) };
  }

  /**
   * Settings applied at every start, so a later PARITY_*_PORT is not silently ignored: the port and
   * socket folder in postgresql.auto.conf, and scram-sha-256 for TCP in pg_hba.conf (which also moves
   * a cluster created before passwords existed).
   */
  function applySettings(c: StackConfig): void {
    const conf = readFileSync(autoConf(c), 'utf8')
      .split('\n')
      .filter((line) => !/^\s*(port|unix_socket_directories|password_encryption|ssl\w*)\s*=/.test(line) && line.trim() !== '');
    conf.unshift(`port = ${portOf(c)}`, `unix_socket_directories = '${socketDir(c)}'`, `password_encryption = 'scram-sha-256'`);
    if (c.secure) {
      // The secured stack (secure.ts): TLS with the stack's server certificate; the key must be the server user's, mode 600.
      const files = secureFiles(c);
      writeOwned(join(dataDir(c), 'server.crt'), readFileSync(files.serverCert, 'utf8'));
      writeOwned(join(dataDir(c), 'server.key'), readFileSync(files.serverKey, 'utf8'));
      chmodSync(join(dataDir(c), 'server.key'), 0o600);
      conf.push(...PG_SSL_SETTINGS);
    }
    writeOwned(autoConf(c), `${conf.join('\n')}\n`);
    writeOwned(join(dataDir(c), 'pg_hba.conf'), c.secure ? PG_HBA_SECURE : PG_HBA);
  }

  /** Sets the stack's password over the trusted socket, as a SCRAM verifier (the password itself never reaches the server). */
  async function setPassword(c: StackConfig): Promise<void> {
    const client = new pg.Client({ host: socketDir(c), port: portOf(c), user: c.pgUser, database: 'postgres' });
    await client.connect();
    try {
      const verifier = scramVerifier(ensurePgPassword(c.stateDir));
      await client.query(`ALTER ROLE ${pg.escapeIdentifier(c.pgUser)} PASSWORD ${pg.escapeLiteral(verifier)}`);
    } finally {
      await client.end().catch(() => undefined);
    }
  }

  return {
    name,
    port: portOf,
    logFile: pgLog,
    readyTimeoutMs: 30_000,
    prepare: (c) => {
      ensurePostgres(c);
      c.pgPassword = ensurePgPassword(c.stateDir);
      if (c.secure) ensureCertificates(c);
    },
    pid: (c) => postmaster(c)?.pid,
    runningPort: (c) => postmaster(c)?.port,
    conflict(c) {
      const live = postmaster(c);
      if (!live || live.port === portOf(c)) return undefined;
      return {
        message: `${name} runs on port ${live.port} (data in ${dataDir(c)}), but ${variable} asks for ${portOf(c)}`,
        hint: `stop it first (parity stack down ${name}); the next stack up starts it on ${portOf(c)}. Or keep it where it is with ${variable}=${live.port}`,
      };
    },
    async start(c) {
      ownDirs(c);
      if (!existsSync(join(dataDir(c), 'PG_VERSION'))) {
        const init = run(
          join(c.pgBinDir, 'initdb'),
          ['-D', dataDir(c), '-U', c.pgUser, '--auth=trust', '--encoding=UTF8', '--locale=C.UTF-8'],
          { asUser: asServerUser() },
        );
        if (init.status !== 0) throw new ParityError('PARITY_STACK_FAILED', `${name}: initdb failed:\n${init.stderr}`);
        // The settings logical replication needs, plus room for the tests' many slots and connections.
        const conf = [
          `listen_addresses = '127.0.0.1'`,
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
        writeOwned(autoConf(c), `${conf}\n`);
      }
      applySettings(c);
      const started = run(join(c.pgBinDir, 'pg_ctl'), ['-D', dataDir(c), '-l', pgLog(c), '-w', '-t', '30', 'start'], {
        asUser: asServerUser(),
      });
      if (started.status !== 0) {
        throw new ParityError(
          'PARITY_STACK_FAILED',
          `${name}: pg_ctl start failed:\n${started.stdout}${started.stderr}\n--- ${pgLog(c)} ---\n${tail(pgLog(c))}`,
        );
      }
      await setPassword(c);
      const pid = this.pid(c);
      if (pid) {
        mkdirSync(join(c.stateDir, 'run'), { recursive: true });
        writeFileSync(pidFile(c, name), `${pid}\n`);
      }
    },
    async ready(c) {
      const client = new pg.Client(tcp(c));
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
    async version(c) {
      const live = postmaster(c);
      if (!live) return undefined;
      const client = new pg.Client({ ...tcp(c), port: live.port });
      try {
        await client.connect();
        const { rows } = await client.query<{ v: string }>(`SELECT current_setting('server_version') AS v`);
        return rows[0]?.v;
      } catch {
        return undefined;
      } finally {
        await client.end().catch(() => undefined);
      }
    },
    async stop(c) {
      const pid = this.pid(c);
      if (!pid) return false;
      // pg_ctl signals the postmaster recorded in postmaster.pid: the process we started.
      const stopped = run(join(c.pgBinDir, 'pg_ctl'), ['-D', dataDir(c), '-m', 'fast', '-w', '-t', '60', 'stop'], {
        asUser: asServerUser(),
      });
      if (stopped.status !== 0) await stopPid(pid);
      removeFile(pidFile(c, name));
      return true;
    },
  };
}

// ---------- Apicurio Registry ----------

/** `-Dname=value` from a running process's command line. */
function systemProperty(pid: number, name: string): number | undefined {
  const m = new RegExp(`-D${name.replaceAll('.', '\\.')}=(\\d+)`).exec(commandLine(pid));
  return m ? Number(m[1]) : undefined;
}

/** The secured registry listens with HTTPS only (quarkus.http.ssl-port); the plaintext one with HTTP. */
const registryPortProperty = (c: StackConfig) => (c.secure ? 'quarkus.http.ssl-port' : 'quarkus.http.port');

const registryPid = (c: StackConfig) => runningPid(pidFile(c, 'registry'), 'quarkus-run.jar');

const registry: ServiceDef = {
  name: 'registry',
  port: (c) => c.ports.registry,
  logFile: (c) => logFile(c, 'registry'),
  readyTimeoutMs: 90_000,
  prepare: (c) => {
    ensureApicurio(c);
    findJava(21);
    if (c.secure) ensureCertificates(c);
  },
  pid: registryPid,
  runningPort(c) {
    const pid = registryPid(c);
    return pid ? systemProperty(pid, registryPortProperty(c)) : undefined;
  },
  conflict(c) {
    const pid = registryPid(c);
    if (!pid) return undefined;
    const http = systemProperty(pid, registryPortProperty(c));
    const management = systemProperty(pid, 'quarkus.management.port');
    if (http === c.ports.registry && management === c.ports.registryManagement) return undefined;
    return {
      message: `registry runs on ports ${http}/${management} (HTTP/management), but the settings ask for ${c.ports.registry}/${c.ports.registryManagement}`,
      hint: `stop it first (parity stack down registry); the next stack up starts it on the new ports. Or keep it with PARITY_REGISTRY_PORT=${http} PARITY_REGISTRY_MANAGEMENT_PORT=${management}`,
    };
  },
  async start(c) {
    const app = apicurioDir(c);
    const java = findJava(21);
    const args = [
      '-Xms128m',
      '-Xmx384m',
      '-Dquarkus.http.host=127.0.0.1',
      // Secured: HTTPS on the registry port and no plain HTTP listener at all (insecure-requests=disabled).
      ...(c.secure ? registryHttpsArgs(c) : [`-Dquarkus.http.port=${c.ports.registry}`]),
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
    if (c.secure) return (await httpsGet(c, `${stackEnv(c).PARITY_REGISTRY_URL}/subjects`)).status === 200;
    const res = await fetch(`${stackEnv(c).PARITY_REGISTRY_URL}/subjects`, { signal: AbortSignal.timeout(2000) });
    return res.status === 200;
  },
  async version(c) {
    const port = registry.runningPort(c);
    if (!port) return undefined;
    try {
      if (c.secure) {
        const r = await httpsGet(c, `https://127.0.0.1:${port}/apis/registry/v3/system/info`);
        return r.status === 200 ? (JSON.parse(r.body) as { version?: string }).version : undefined;
      }
      const res = await fetch(`http://127.0.0.1:${port}/apis/registry/v3/system/info`, { signal: AbortSignal.timeout(2000) });
      return res.ok ? ((await res.json()) as { version?: string }).version : undefined;
    } catch {
      return undefined;
    }
  },
  async stop(c) {
    const pid = registryPid(c);
    if (!pid) return false;
    await stopPid(pid);
    removeFile(pidFile(c, 'registry'));
    return true;
  },
};

// ---------- Redis ----------

const redisPid = (c: StackConfig) => runningPid(pidFile(c, 'redis'), 'redis-server');

async function withRedis<T>(c: StackConfig, port: number, use: (client: Redis) => Promise<T>): Promise<T> {
  // The secured Redis: TLS with the stack's CA, as the ACL user (the default user is off).
  const secured = c.secure ? { tls: stackTls(c), username: SECURE_USER, password: stackSecret(c, 'redis-password') } : {};
  const client = new Redis({
    host: '127.0.0.1',
    port,
    lazyConnect: true,
    maxRetriesPerRequest: 0,
    retryStrategy: () => null,
    connectTimeout: 1000,
    ...secured,
  });
  // A refused connection is the answer "not ready yet"; connect() reports it, the event must not.
  client.on('error', () => undefined);
  try {
    await client.connect();
    return await use(client);
  } finally {
    client.disconnect();
  }
}

const redis: ServiceDef = {
  name: 'redis',
  port: (c) => c.ports.redis,
  logFile: (c) => logFile(c, 'redis'),
  readyTimeoutMs: 15_000,
  prepare: (c) => {
    ensureRedisServer();
    if (c.secure) ensureCertificates(c);
  },
  pid: redisPid,
  runningPort(c) {
    const pid = redisPid(c);
    // redis-server shows its address in its process title ("redis-server 127.0.0.1:16379").
    const m = pid ? /:(\d+)/.exec(commandLine(pid)) : null;
    return m ? Number(m[1]) : undefined;
  },
  conflict(c) {
    const live = redis.runningPort(c);
    if (live === undefined || live === c.ports.redis) return undefined;
    return {
      message: `redis runs on port ${live}, but PARITY_REDIS_PORT asks for ${c.ports.redis}`,
      hint: `stop it first (parity stack down redis); the next stack up starts it on ${c.ports.redis}. Or keep it with PARITY_REDIS_PORT=${live}`,
    };
  },
  async start(c) {
    const bin = ensureRedisServer();
    const dir = join(c.stateDir, 'redis');
    mkdirSync(dir, { recursive: true });
    if (c.secure) {
      // TLS port only, ACL user: the settings (the password among them) in a mode-600 file, not on the command line.
      startDetached({ command: bin, args: [writeRedisConf(c, dir)], logFile: logFile(c, 'redis'), pidFile: pidFile(c, 'redis') });
      return;
    }
    startDetached({
      command: bin,
      args: [
        `--bind`,
        '127.0.0.1',
        '--port',
        String(c.ports.redis),
        '--dir',
        dir,
        '--save',
        '',
        '--appendonly',
        'no',
        '--daemonize',
        'no',
        '--protected-mode',
        'yes',
      ],
      logFile: logFile(c, 'redis'),
      pidFile: pidFile(c, 'redis'),
    });
  },
  ready: (c) => withRedis(c, c.ports.redis, async (client) => (await client.ping()) === 'PONG'),
  async version(c) {
    const port = redis.runningPort(c);
    if (!port) return undefined;
    return withRedis(c, port, async (client) => /redis_version:(\S+)/.exec(await client.info('server'))?.[1]).catch(() => undefined);
  },
  async stop(c) {
    const pid = redisPid(c);
    if (!pid) return false;
    await stopPid(pid);
    removeFile(pidFile(c, 'redis'));
    return true;
  },
};

/** The secured stack's Kafka is another process (secure.ts); every other service switches on `config.secure` itself. */
function plainOrSecured(plain: ServiceDef, secured: ServiceDef): ServiceDef {
  const pick = (c: StackConfig) => (c.secure ? secured : plain);
  return {
    name: plain.name,
    readyTimeoutMs: Math.max(plain.readyTimeoutMs, secured.readyTimeoutMs),
    port: (c) => pick(c).port(c),
    logFile: (c) => pick(c).logFile(c),
    prepare: (c) => pick(c).prepare(c),
    pid: (c) => pick(c).pid(c),
    start: (c) => pick(c).start(c),
    ready: (c) => pick(c).ready(c),
    stop: (c) => pick(c).stop(c),
    conflict: (c) => pick(c).conflict(c),
    runningPort: (c) => pick(c).runningPort(c),
    version: (c) => pick(c).version(c),
    nodes: (c) => pick(c).nodes?.(c) ?? [],
  };
}

export const SERVICE_DEFS: Record<ServiceName, ServiceDef> = {
  'pg-source': pgService('pg-source', (c) => c.ports.pgSource, 'PARITY_PG_SOURCE_PORT'),
  'pg-target': pgService('pg-target', (c) => c.ports.pgTarget, 'PARITY_PG_TARGET_PORT'),
  kafka: plainOrSecured(kafka, secureKafka),
  registry,
  redis,
};
