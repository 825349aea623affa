/**
 * A Kafka broker with a SASL_SSL listener only (no plaintext client listener), for tests of parity's
 * Kafka security: a generated CA and broker certificate (openssl; the broker reads PEM directly,
 * ssl.keystore.type=PEM, so no JKS or keytool is needed), SCRAM-SHA-256 and SCRAM-SHA-512 users
 * created when the storage is formatted (StorageTool --add-scram), PLAIN users in the listener's
 * JAAS settings, and on request (`unsecuredOauthBearer`) OAUTHBEARER with Kafka's unsecured-token
 * validator (unsigned JWTs; tests of the client only). One combined KRaft node on its own ports and state dir, started from the same Maven
 * jars as the local stack (fetch.ts), stopped by `stop()`.
 *
 * The default local stack stays plaintext; this is a separate broker a test starts and stops.
 */
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Admin } from '@platformatic/kafka';
import { ParityError } from '../core/errors.js';
import { kafkaLogging, stackConfig } from './config.js';
import { ensureKafka, findJava } from './fetch.js';
import { run, runAsync, startDetached, stopPid, tail, waitFor } from './process.js';

/** Any valid base64 UUID. */
const CLUSTER_ID = 'pUrGn3sQTvyq0dSeCuReKw';

export interface SecureKafkaUser {
  name: string;
  password: string;
}

export interface SecureKafkaOptions {
  /** Folder for certificates, configuration, data and logs (created). */
  stateDir: string;
  /** SASL_SSL listener port. */
  port: number;
  /** Controller listener port (loopback, never advertised to clients). */
  controllerPort: number;
  /** Users known to SCRAM-SHA-256, SCRAM-SHA-512 and PLAIN alike. */
  users: SecureKafkaUser[];
  /** Kafka version (default: the local stack's, PARITY_KAFKA_VERSION honoured). */
  version?: string;
  /**
   * Also enable OAUTHBEARER with Kafka's unsecured-token validator (default false). It accepts any
   * unsigned token for any subject: for tests of the OAUTHBEARER client only, never a secured stack.
   */
  unsecuredOauthBearer?: boolean;
}

export interface Certificates {
  /** PEM of the CA that signed the broker certificate. */
  ca: string;
  /** PEM of a second CA that signed nothing this broker presents (for "untrusted certificate" tests). */
  otherCa: string;
  /** A client certificate and key signed by the CA (mTLS). */
  clientCert: string;
  clientKey: string;
  /** Broker key and certificate chain in one PEM file (ssl.keystore.type=PEM). */
  brokerKeystore: string;
}

export interface SecureKafka {
  /** host:port of the SASL_SSL listener. */
  brokers: string[];
  certificates: Certificates;
  /** The internal admin user (PLAIN), for setting up topics. */
  admin: SecureKafkaUser;
  pid: number;
  logFile: string;
  stop(): Promise<void>;
}

function openssl(args: string[], what: string): void {
  const r = run('openssl', args);
  if (r.status !== 0)
    throw new ParityError('PARITY_STACK_FAILED', `openssl (${what}) failed: ${r.stderr.trim()}`, {
      hint: 'install openssl (apt-get install openssl)',
    });
}

/** Certificates a state dir keeps: still valid for this long, they are reused rather than made anew. */
const REUSE_MIN_VALID_SECONDS = 7 * 24 * 3600;

/**
 * True when `dir` holds a complete set from an earlier call whose certificates are all valid for at
 * least a week and whose broker and client certificates are signed by its CA.
 */
function reusableCertificates(dir: string, files: Certificates): boolean {
  const f = (name: string) => join(dir, name);
  const all = [
    files.ca,
    files.otherCa,
    files.clientCert,
    files.clientKey,
    files.brokerKeystore,
    f('ca.key'),
    f('broker.pem'),
    f('broker.key'),
  ];
  if (!all.every((file) => existsSync(file))) return false;
  for (const cert of [files.ca, files.otherCa, f('broker.pem'), files.clientCert]) {
    if (run('openssl', ['x509', '-in', cert, '-noout', '-checkend', String(REUSE_MIN_VALID_SECONDS)]).status !== 0) return false;
  }
  return run('openssl', ['verify', '-CAfile', files.ca, f('broker.pem'), files.clientCert]).status === 0;
}

/**
 * A CA, a broker certificate for 127.0.0.1 and localhost signed by it, a client certificate, and an
 * unrelated second CA; all PEM files in `dir`. Keys are unencrypted PKCS#8 (test material only).
 *
 * A set already in `dir` that is complete, valid for another week and signed by its CA is kept as it
 * is: clients hold the CA, so a broker restart must not replace it (`fresh: true` forces a new set).
 */
export function generateCertificates(dir: string, options: { fresh?: boolean } = {}): Certificates {
  mkdirSync(dir, { recursive: true });
  const f = (name: string) => join(dir, name);
  const files: Certificates = {
    ca: f('ca.pem'),
    otherCa: f('other-ca.pem'),
    clientCert: f('client.pem'),
    clientKey: f('client.key'),
    brokerKeystore: f('broker-keystore.pem'),
  };
  if (!options.fresh && reusableCertificates(dir, files)) return files;
  const days = '3650';
  for (const ca of ['ca', 'other-ca']) {
    openssl(
      [
        'req',
        '-x509',
        '-newkey',
        'rsa:2048',
        '-nodes',
        '-keyout',
        f(`${ca}.key`),
        '-out',
        f(`${ca}.pem`),
        '-days',
        days,
        '-subj',
        `/CN=parity test ${ca}`,
      ],
      `${ca} certificate`,
    );
  }
  const sign = (name: string, cn: string, ext: string) => {
    openssl(
      ['req', '-newkey', 'rsa:2048', '-nodes', '-keyout', f(`${name}.key`), '-out', f(`${name}.csr`), '-subj', `/CN=${cn}`],
      `${name} key`,
    );
    writeFileSync(f(`${name}.ext`), `${ext}\n`);
    openssl(
      [
        'x509',
        '-req',
        '-in',
        f(`${name}.csr`),
        '-CA',
        f('ca.pem'),
        '-CAkey',
        f('ca.key'),
        '-CAcreateserial',
        '-out',
        f(`${name}.pem`),
        '-days',
        days,
        '-extfile',
        f(`${name}.ext`),
      ],
      `${name} certificate`,
    );
  };
  sign('broker', '127.0.0.1', 'subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth,clientAuth');
  sign('client', 'parity-client', 'extendedKeyUsage=clientAuth');
  writeFileSync(f('broker-keystore.pem'), readFileSync(f('broker.key'), 'utf8') + readFileSync(f('broker.pem'), 'utf8'));
  return files;
}

/**
 * An unsigned JWT (alg "none") for `sub`, valid from now for `lifetimeSeconds` (negative: already
 * expired), as the broker's unsecured OAUTHBEARER validator accepts. Test material only.
 */
export function unsecuredToken(sub: string, lifetimeSeconds = 3600): string {
  const b64 = (o: unknown) => Buffer.from(JSON.stringify(o)).toString('base64url');
  const now = Math.floor(Date.now() / 1000);
  const iat = lifetimeSeconds < 0 ? now + 2 * lifetimeSeconds : now;
  return `${b64({ alg: 'none' })}.${b64({ sub, iat, exp: now + lifetimeSeconds })}.`;
}

/** JAAS option values are double-quoted strings. */
const jaasQuote = (s: string) => `"${s.replace(/\\/g, '\\\\').replace(/"/g, '\\"')}"`;

function serverProperties(o: SecureKafkaOptions, certs: Certificates, admin: SecureKafkaUser, dataDir: string): string {
  const plainUsers = [admin, ...o.users].map((u) => `user_${u.name}=${jaasQuote(u.password)}`).join(' ');
  return [
    'process.roles=broker,controller',
    'node.id=1',
    `controller.quorum.voters=1@127.0.0.1:${o.controllerPort}`,
    `listeners=SASL_SSL://127.0.0.1:${o.port},CONTROLLER://127.0.0.1:${o.controllerPort}`,
    `advertised.listeners=SASL_SSL://127.0.0.1:${o.port}`,
    'inter.broker.listener.name=SASL_SSL',
    'controller.listener.names=CONTROLLER',
    'listener.security.protocol.map=CONTROLLER:PLAINTEXT,SASL_SSL:SASL_SSL',
    `sasl.enabled.mechanisms=PLAIN,SCRAM-SHA-256,SCRAM-SHA-512${o.unsecuredOauthBearer ? ',OAUTHBEARER' : ''}`,
    'sasl.mechanism.inter.broker.protocol=PLAIN',
    `listener.name.sasl_ssl.plain.sasl.jaas.config=org.apache.kafka.common.security.plain.PlainLoginModule required username=${jaasQuote(admin.name)} password=${jaasQuote(admin.password)} ${plainUsers};`,
    'listener.name.sasl_ssl.scram-sha-256.sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required;',
    'listener.name.sasl_ssl.scram-sha-512.sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required;',
    // OAUTHBEARER with Kafka's unsecured-token validator (tests only: tokens are unsigned JWTs, see unsecuredToken).
    ...(o.unsecuredOauthBearer
      ? [
          'listener.name.sasl_ssl.oauthbearer.sasl.jaas.config=org.apache.kafka.common.security.oauthbearer.OAuthBearerLoginModule required unsecuredLoginStringClaim_sub="parity-admin";',
        ]
      : []),
    'ssl.keystore.type=PEM',
    `ssl.keystore.location=${certs.brokerKeystore}`,
    'ssl.truststore.type=PEM',
    `ssl.truststore.location=${certs.ca}`,
    // Client certificates are checked when offered (mTLS), not required: SASL is the authentication.
    'ssl.client.auth=requested',
    `log.dirs=${dataDir}`,
    'num.partitions=1',
    'default.replication.factor=1',
    'offsets.topic.replication.factor=1',
    'offsets.topic.num.partitions=1',
    'transaction.state.log.replication.factor=1',
    'transaction.state.log.min.isr=1',
    'transaction.state.log.num.partitions=1',
    'share.coordinator.state.topic.replication.factor=1',
    'share.coordinator.state.topic.min.isr=1',
    'group.initial.rebalance.delay.ms=0',
    'auto.create.topics.enable=false',
    'num.network.threads=2',
    'num.io.threads=2',
    '',
  ].join('\n');
}

function logConfig(version: string): { file: string; flag: (path: string) => string; text: string } {
  if (kafkaLogging(version) === 'log4j2') {
    return {
      file: 'log4j2.properties',
      flag: (p) => `-Dlog4j2.configurationFile=${p}`,
      text: [
        'status = warn',
        'appender.stdout.type = Console',
        'appender.stdout.name = STDOUT',
        'appender.stdout.layout.type = PatternLayout',
        'appender.stdout.layout.pattern = [%d] %p %m (%c)%n',
        'rootLogger.level = INFO',
        'rootLogger.appenderRef.stdout.ref = STDOUT',
        '',
      ].join('\n'),
    };
  }
  return {
    file: 'log4j.properties',
    flag: (p) => `-Dlog4j.configuration=file:${p}`,
    text: [
      'log4j.rootLogger=INFO, stdout',
      'log4j.appender.stdout=org.apache.log4j.ConsoleAppender',
      'log4j.appender.stdout.layout=org.apache.log4j.PatternLayout',
      'log4j.appender.stdout.layout.ConversionPattern=[%d] %p %m (%c)%n',
      '',
    ].join('\n'),
  };
}

/**
 * Generates certificates (or keeps the valid ones of an earlier start in the state dir), formats the
 * storage with the SCRAM users, starts the broker and waits until an authenticated admin client
 * (SASL_SSL, PLAIN) reads its metadata.
 */
export async function startSecureKafka(o: SecureKafkaOptions): Promise<SecureKafka> {
  const config = stackConfig({ ...process.env, PARITY_STATE_DIR: o.stateDir, ...(o.version ? { PARITY_KAFKA_VERSION: o.version } : {}) });
  const version = config.kafka.version;
  const lib = ensureKafka(config);
  const java = findJava(17, `Apache Kafka ${version}`);
  const certs = generateCertificates(join(o.stateDir, 'certs'));
  const admin: SecureKafkaUser = { name: 'parity-admin', password: `admin-${Math.random().toString(36).slice(2)}` };
  const dataDir = join(o.stateDir, 'data');
  const properties = join(o.stateDir, 'server.properties');
  const log = logConfig(version);
  const logConfigFile = join(o.stateDir, log.file);
  mkdirSync(dataDir, { recursive: true });
  writeFileSync(properties, serverProperties(o, certs, admin, dataDir), { mode: 0o600 });
  writeFileSync(logConfigFile, log.text);
  if (!existsSync(join(dataDir, 'meta.properties'))) {
    const scram = o.users.flatMap((u) =>
      ['SCRAM-SHA-256', 'SCRAM-SHA-512'].flatMap((m) => ['--add-scram', `${m}=[name=${u.name},password=${u.password}]`]),
    );
    const format = await runAsync(java, [
      '-Xmx128m',
      log.flag(logConfigFile),
      '-cp',
      `${lib}/*`,
      'kafka.tools.StorageTool',
      'format',
      '-t',
      CLUSTER_ID,
      '-c',
      properties,
      '--ignore-formatted',
      ...scram,
    ]);
    if (format.status !== 0)
      throw new ParityError('PARITY_STACK_FAILED', `secure kafka: storage format failed:\n${format.stdout}${format.stderr}`);
  }
  const logFile = join(o.stateDir, 'kafka.log');
  const pid = startDetached({
    command: java,
    args: [
      '-Xms256m',
      '-Xmx512m',
      '-XX:+UseSerialGC',
      '-Djava.awt.headless=true',
      log.flag(logConfigFile),
      `-Dkafka.logs.dir=${join(o.stateDir, 'logs')}`,
      '-cp',
      `${lib}/*`,
      'kafka.Kafka',
      properties,
    ],
    logFile,
    pidFile: join(o.stateDir, 'kafka.pid'),
  });
  const brokers = [`127.0.0.1:${o.port}`];
  const stop = () => stopPid(pid, 30_000);
  const ready = await waitFor(
    async () => {
      const probe = new Admin({
        clientId: 'parity-secure-stack',
        bootstrapBrokers: brokers,
        retries: 0,
        connectTimeout: 2_000,
        timeout: 5_000,
        tls: { ca: readFileSync(certs.ca) },
        sasl: { mechanism: 'PLAIN', username: admin.name, password: admin.password },
      });
      try {
        const m = await probe.metadata({ topics: [], forceUpdate: true });
        return m.brokers.size === 1;
      } finally {
        await probe.close().catch(() => undefined);
      }
    },
    120_000,
    500,
  );
  if (!ready) {
    await stop();
    throw new ParityError(
      'PARITY_STACK_FAILED',
      `secure kafka did not become ready on ${brokers[0]} within 120 s; its log ends:\n${tail(logFile, 30)}`,
    );
  }
  return { brokers, certificates: certs, admin, pid, logFile, stop };
}
