/**
 * The secured local stack (`parity stack up --secure`, PARITY_STACK_SECURE=1): every service with TLS
 * and authentication and no plaintext door, on its own state dir (.parity-secure) and ports (config.ts).
 *
 * - a CA and a server certificate for 127.0.0.1/localhost, generated once per state dir with the same
 *   openssl code as the test broker (secure-kafka.ts generateCertificates);
 * - PostgreSQL: ssl=on, `hostssl` lines only (scram-sha-256), every TCP connection without TLS rejected;
 * - Redis: TLS port only (`port 0`), the default user off, an ACL user `parity` with a generated password;
 * - Apicurio: HTTPS only (Quarkus `insecure-requests=disabled`) and HTTP basic auth for its APIs
 *   (Apicurio's `basic` mechanism over Quarkus' embedded users: no OIDC server needed);
 * - Kafka: a SASL_SSL-only broker with SCRAM users (secure-kafka.ts startSecureKafka).
 *
 * Passwords are generated into `<state>/secrets` (mode 600) and printed only by `parity stack env`.
 */
import { randomBytes } from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { request as httpsRequest } from 'node:https';
import { dirname, join } from 'node:path';
import type { ConnectionOptions as TlsOptions } from 'node:tls';
import { Admin } from '@platformatic/kafka';
import { ParityError } from '../core/errors.js';
import { caBundleFile, stackSecretFile, type StackConfig, type StackSecretName } from './config.js';
import { ensureKafka, findJava } from './fetch.js';
import { removeFile, rssMb, runningPid, stopPid } from './process.js';
import { generateCertificates, startSecureKafka } from './secure-kafka.js';
import type { ServiceDef } from './service-def.js';

/** The ACL / SCRAM user of the secured stack's Redis and Kafka. */
export const SECURE_USER = 'parity';
/** The SASL mechanism `stack env` prints for the secured Kafka (the broker also takes SCRAM-SHA-256 and PLAIN). */
export const SECURE_KAFKA_MECHANISM = 'SCRAM-SHA-512';

export interface SecureFiles {
  /** The stack's CA (signs the PostgreSQL, Redis and registry certificate). */
  ca: string;
  /** The stack's CA and the Kafka broker's CA in one file: the one file clients need. */
  caBundle: string;
  /** Server certificate and key for 127.0.0.1 and localhost. */
  serverCert: string;
  serverKey: string;
}

export function secureFiles(c: StackConfig): SecureFiles {
  const dir = join(c.stateDir, 'certs');
  return {
    ca: join(dir, 'ca.pem'),
    caBundle: caBundleFile(c.stateDir),
    serverCert: join(dir, 'broker.pem'),
    serverKey: join(dir, 'broker.key'),
  };
}

/** A generated password of the state dir (`<state>/secrets/<name>`, mode 600), created on first use. */
export function stackSecret(c: StackConfig, name: StackSecretName): string {
  const file = stackSecretFile(c.stateDir, name);
  if (existsSync(file)) return readFileSync(file, 'utf8').trim();
  mkdirSync(dirname(file), { recursive: true, mode: 0o700 });
  const password = randomBytes(18).toString('hex');
  writeFileSync(file, `${password}\n`, { mode: 0o600 });
  chmodSync(file, 0o600);
  return password;
}

/** The CA and server certificate, generated once (a second `stack up` keeps them: clients hold the CA). */
export function ensureCertificates(c: StackConfig): SecureFiles {
  const files = secureFiles(c);
  // Kept while valid (generateCertificates reuses a complete, valid set); remade only when expiring.
  generateCertificates(dirname(files.ca));
  writeCaBundle(c);
  return files;
}

/** The secured Kafka's own files (secure-kafka.ts keeps its state, certificates included, there). */
const kafkaDir = (c: StackConfig) => join(c.stateDir, 'kafka-secure');
const kafkaCa = (c: StackConfig) => join(kafkaDir(c), 'certs', 'ca.pem');

/**
 * ca-bundle.pem = the stack's CA + the Kafka broker's CA (when generated). Clients read it on every
 * new connection (libpq's sslrootcert, psql), also while the broker restarts: the file is replaced
 * atomically (rename) and only when its content changes, so no reader ever sees it empty or half written.
 */
export function writeCaBundle(c: StackConfig): void {
  const files = secureFiles(c);
  const parts = [readFileSync(files.ca, 'utf8')];
  if (existsSync(kafkaCa(c))) parts.push(readFileSync(kafkaCa(c), 'utf8'));
  const bundle = parts.join('');
  if (existsSync(files.caBundle) && readFileSync(files.caBundle, 'utf8') === bundle) return;
  const next = `${files.caBundle}.${process.pid}.tmp`;
  writeFileSync(next, bundle);
  renameSync(next, files.caBundle);
}

/** node:tls options trusting the stack's CAs. */
export function stackTls(c: StackConfig): TlsOptions {
  return { ca: readFileSync(secureFiles(c).caBundle), rejectUnauthorized: true };
}

// ---------- PostgreSQL ----------

/** postgresql.conf lines of a secured cluster (files copied into the data dir: the server owns them). */
export const PG_SSL_SETTINGS = [
  'ssl = on',
  "ssl_cert_file = 'server.crt'",
  "ssl_key_file = 'server.key'",
  "ssl_min_protocol_version = 'TLSv1.2'",
];

/** pg_hba.conf of a secured cluster: socket trusted (the stack sets the password through it), TCP only with TLS and SCRAM. */
export const PG_HBA_SECURE = [
  'local all all trust',
  'local replication all trust',
  'hostnossl all all 0.0.0.0/0 reject',
  'hostnossl replication all 0.0.0.0/0 reject',
  'hostssl all all 127.0.0.1/32 scram-sha-256',
  'hostssl replication all 127.0.0.1/32 scram-sha-256',
  '',
].join('\n');

// ---------- Redis ----------

/**
 * redis.conf of the secured Redis (mode 600: it holds the ACL password, which therefore never
 * appears on a command line or in the process title).
 */
export function writeRedisConf(c: StackConfig, dir: string): string {
  const files = secureFiles(c);
  const file = join(dir, 'redis-secure.conf');
  const lines = [
    'bind 127.0.0.1',
    'port 0',
    `tls-port ${c.ports.redis}`,
    `tls-cert-file ${files.serverCert}`,
    `tls-key-file ${files.serverKey}`,
    `tls-ca-cert-file ${files.ca}`,
    // Clients prove themselves with the ACL password, not with a certificate.
    'tls-auth-clients no',
    `dir ${dir}`,
    'save ""',
    'appendonly no',
    'protected-mode yes',
    'user default off',
    `user ${SECURE_USER} on >${stackSecret(c, 'redis-password')} ~* &* +@all`,
    '',
  ];
  writeFileSync(file, lines.join('\n'), { mode: 0o600 });
  chmodSync(file, 0o600);
  return file;
}

// ---------- Apicurio Registry ----------

/**
 * The registry's basic-auth settings, in a mode-600 file Quarkus reads at start
 * (`quarkus.config.locations`), so the password is never on the command line or in the process
 * title. Apicurio 3 authenticates its APIs with the `basic` mechanism against Quarkus' embedded
 * users (built in); `system/info` stays open (the stack's readiness probe).
 */
export function writeRegistryAuth(c: StackConfig): string {
  const file = join(c.stateDir, 'secrets', 'registry-auth.properties');
  mkdirSync(dirname(file), { recursive: true, mode: 0o700 });
  const lines = [
    'quarkus.http.auth.basic=true',
    'apicurio.authn.mechanism.priority=basic',
    'quarkus.security.users.embedded.enabled=true',
    'quarkus.security.users.embedded.plain-text=true',
    `quarkus.security.users.embedded.users.${SECURE_USER}=${stackSecret(c, 'registry-password')}`,
    `quarkus.security.users.embedded.roles.${SECURE_USER}=sr-admin`,
    '',
  ];
  writeFileSync(file, lines.join('\n'), { mode: 0o600 });
  chmodSync(file, 0o600);
  return file;
}

/** Quarkus settings that serve the registry over HTTPS only, on the stack's registry port, with basic auth. */
export function registryHttpsArgs(c: StackConfig): string[] {
  const files = secureFiles(c);
  return [
    `-Dquarkus.http.ssl-port=${c.ports.registry}`,
    `-Dquarkus.http.ssl.certificate.files=${files.serverCert}`,
    `-Dquarkus.http.ssl.certificate.key-files=${files.serverKey}`,
    '-Dquarkus.http.insecure-requests=disabled',
    `-Dquarkus.config.locations=${writeRegistryAuth(c)}`,
  ];
}

/** GET over HTTPS trusting the stack's CA, as the registry's basic-auth user: status and body. */
export function httpsGet(c: StackConfig, url: string, timeoutMs = 2_000): Promise<{ status: number; body: string }> {
  const authorization = `Basic ${Buffer.from(`${SECURE_USER}:${stackSecret(c, 'registry-password')}`).toString('base64')}`;
  return new Promise((resolve, reject) => {
    const options = { ...stackTls(c), method: 'GET', headers: { authorization }, signal: AbortSignal.timeout(timeoutMs) };
    const req = httpsRequest(url, options, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (d: Buffer) => chunks.push(d));
      res.on('error', reject);
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8') }));
    });
    req.on('error', reject);
    req.end();
  });
}

// ---------- Kafka ----------

const secureKafkaPid = (c: StackConfig) => runningPid(join(kafkaDir(c), 'kafka.pid'), 'kafka.Kafka');

/** An admin client of the secured Kafka, as the stack's SCRAM user. */
function secureAdmin(c: StackConfig, port: number): Admin {
  return new Admin({
    clientId: 'parity-stack',
    bootstrapBrokers: [`127.0.0.1:${port}`],
    retries: 0,
    connectTimeout: 2_000,
    timeout: 5_000,
    tls: stackTls(c),
    sasl: { mechanism: SECURE_KAFKA_MECHANISM, username: SECURE_USER, password: stackSecret(c, 'kafka-password') },
  });
}

/**
 * The secured stack's Kafka: one KRaft node with a SASL_SSL listener only (secure-kafka.ts), the user
 * `parity` known to SCRAM-SHA-256/512 and PLAIN. A single node: `--brokers 3` is refused with --secure.
 */
export const secureKafka: ServiceDef = {
  name: 'kafka',
  port: (c) => c.ports.kafka,
  logFile: (c) => join(kafkaDir(c), 'kafka.log'),
  readyTimeoutMs: 120_000,
  prepare: (c) => {
    ensureKafka(c);
    findJava(17, `Apache Kafka ${c.kafka.version}`);
  },
  pid: secureKafkaPid,
  runningPort(c) {
    const pid = secureKafkaPid(c);
    if (!pid) return undefined;
    const props = join(kafkaDir(c), 'server.properties');
    const m = existsSync(props) ? /^advertised\.listeners=SASL_SSL:\/\/[^:]+:(\d+)/m.exec(readFileSync(props, 'utf8')) : null;
    return m ? Number(m[1]) : undefined;
  },
  conflict(c) {
    if (c.kafka.brokers !== 1)
      return { message: `the secured stack runs one Kafka node, not ${c.kafka.brokers}`, hint: 'leave out --brokers with --secure' };
    const live = secureKafka.runningPort(c);
    if (live === undefined || live === c.ports.kafka) return undefined;
    return {
      message: `kafka runs on port ${live}, but PARITY_KAFKA_PORT asks for ${c.ports.kafka}`,
      hint: `stop it first (parity stack down --secure kafka), or keep it with PARITY_KAFKA_PORT=${live}`,
    };
  },
  async start(c) {
    await startSecureKafka({
      stateDir: kafkaDir(c),
      port: c.ports.kafka,
      controllerPort: c.ports.kafkaController,
      users: [{ name: SECURE_USER, password: stackSecret(c, 'kafka-password') }],
      version: c.kafka.version,
    });
    // The broker's CA is generated with it: clients get it in the bundle.
    writeCaBundle(c);
  },
  async ready(c) {
    const admin = secureAdmin(c, c.ports.kafka);
    try {
      const m = await admin.metadata({ topics: [], forceUpdate: true });
      return m.brokers.size === 1;
    } finally {
      await admin.close().catch(() => undefined);
    }
  },
  async version(c) {
    return secureKafkaPid(c) ? c.kafka.version : undefined;
  },
  async stop(c) {
    const pid = secureKafkaPid(c);
    if (!pid) return false;
    await stopPid(pid, 30_000);
    removeFile(join(kafkaDir(c), 'kafka.pid'));
    return true;
  },
  nodes(c) {
    const pid = secureKafkaPid(c);
    return [
      {
        id: 1,
        port: c.ports.kafka,
        controllerPort: c.ports.kafkaController,
        running: pid !== undefined,
        ...(pid ? { pid, rssMb: rssMb(pid) } : {}),
      },
    ];
  },
};

/** Refuses what the secured stack does not run. */
export function checkSecureOptions(c: StackConfig, options: { replica?: boolean }): void {
  if (options.replica)
    throw new ParityError('PARITY_BAD_INPUT', 'the secured stack runs no streaming replica', {
      hint: 'leave out --with-replica (and PARITY_STACK_REPLICA) with --secure',
    });
}
