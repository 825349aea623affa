/**
 * Everything the local stack needs that a fresh machine may lack: the Kafka and Apicurio artifacts
 * (from Maven Central through Maven), Debian's redis-server, and a Java runtime new enough for
 * Apicurio 3.3 (class files of Java 21).
 */
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { ParityError } from '../core/errors.js';
import { APICURIO_VERSION, kafkaLogging, PROJECT_ROOT, type StackConfig } from './config.js';
import { run } from './process.js';

const DEPENDENCY_PLUGIN = 'org.apache.maven.plugins:maven-dependency-plugin:3.8.1';

export function kafkaLibDir(config: StackConfig): string {
  return join(config.cacheDir, `kafka-${config.kafka.version}`, 'lib');
}

export function apicurioDir(config: StackConfig): string {
  return join(config.cacheDir, `apicurio-${APICURIO_VERSION}`, 'app');
}

/** `mvn dependency:copy-dependencies` of a project POM into `outputDir` (runtime scope). */
export function mavenCopy(pom: string, outputDir: string, what: string, extraArgs: string[] = []): void {
  const result = run('mvn', [
    '-B',
    '-q',
    '-f',
    pom,
    `${DEPENDENCY_PLUGIN}:copy-dependencies`,
    `-DoutputDirectory=${outputDir}`,
    '-DincludeScope=runtime',
    ...extraArgs,
  ]);
  if (result.status !== 0) {
    throw new ParityError(
      'PARITY_STACK_FAILED',
      `fetching ${what} with Maven failed:\n${(result.stdout + result.stderr).split('\n').slice(-15).join('\n')}`,
      {
        hint: 'Maven fetches from its remote repository (Maven Central unless ~/.m2/settings.xml names a mirror); check the network and that file',
      },
    );
  }
}

/**
 * Copies the configured Kafka version's jars (and its logging binding: log4j2 for 4.x, reload4j for
 * 3.x) into the cache once; later calls are instant.
 */
export function ensureKafka(config: StackConfig): string {
  const version = config.kafka.version;
  const lib = kafkaLibDir(config);
  const marker = join(lib, '.complete');
  if (!existsSync(marker)) {
    mkdirSync(lib, { recursive: true });
    mavenCopy(join(PROJECT_ROOT, 'deploy/local/kafka-pom.xml'), lib, `Apache Kafka ${version}`, [
      `-Dkafka.version=${version}`,
      '-P',
      kafkaLogging(version),
    ]);
    writeFileSync(marker, new Date().toISOString());
  }
  return lib;
}

/** Fetches and unpacks the Apicurio Registry distribution once. */
export function ensureApicurio(config: StackConfig): string {
  const app = apicurioDir(config);
  const marker = join(app, '.complete');
  if (!existsSync(marker)) {
    const download = join(config.cacheDir, `apicurio-${APICURIO_VERSION}`, 'dist');
    mkdirSync(download, { recursive: true });
    mkdirSync(app, { recursive: true });
    mavenCopy(join(PROJECT_ROOT, 'deploy/local/apicurio-pom.xml'), download, `Apicurio Registry ${APICURIO_VERSION}`);
    const archive = readdirSync(download).find((f) => f.endsWith('.tar.gz'));
    if (!archive) throw new ParityError('PARITY_STACK_FAILED', `no Apicurio archive in ${download}`);
    const untar = run('tar', ['xzf', join(download, archive), '-C', app]);
    if (untar.status !== 0) throw new ParityError('PARITY_STACK_FAILED', `unpacking Apicurio failed: ${untar.stderr}`);
    writeFileSync(marker, new Date().toISOString());
  }
  return app;
}

function javaMajor(javaHome: string): number | undefined {
  try {
    const release = readFileSync(join(javaHome, 'release'), 'utf8');
    const match = /JAVA_VERSION="(\d+)/.exec(release);
    return match ? Number(match[1]) : undefined;
  } catch {
    return undefined;
  }
}

/** A `java` binary of at least `major`: PARITY_JAVA_HOME, JAVA_HOME, then /usr/lib/jvm/*. */
export function findJava(major: number, why = `Apicurio Registry ${APICURIO_VERSION}`): string {
  const candidates = [process.env.PARITY_JAVA_HOME, process.env.JAVA_HOME].filter((c): c is string => !!c);
  if (existsSync('/usr/lib/jvm')) {
    for (const entry of readdirSync('/usr/lib/jvm').sort().reverse()) candidates.push(join('/usr/lib/jvm', entry));
  }
  for (const home of candidates) {
    const found = javaMajor(home);
    if (found !== undefined && found >= major && existsSync(join(home, 'bin/java'))) return join(home, 'bin/java');
  }
  throw new ParityError('PARITY_DEPENDENCY_MISSING', `no Java ${major}+ runtime found (${why} needs it)`, {
    hint: `install a JDK ${major} or newer (e.g. Temurin) and set PARITY_JAVA_HOME to its folder`,
  });
}

/** The redis-server binary, installed from Debian's packages when missing. */
export function ensureRedisServer(): string {
  const which = run('sh', ['-c', 'command -v redis-server']);
  if (which.status === 0) return which.stdout.trim();
  const script = 'apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq redis-server';
  const install = process.getuid?.() === 0 ? run('sh', ['-c', script]) : run('sudo', ['-n', 'sh', '-c', script]);
  const again = run('sh', ['-c', 'command -v redis-server']);
  if (install.status !== 0 || again.status !== 0) {
    throw new ParityError(
      'PARITY_DEPENDENCY_MISSING',
      `redis-server is missing and could not be installed: ${install.stderr.split('\n').slice(-5).join('\n')}`,
      {
        hint: 'run: sudo apt-get install redis-server',
      },
    );
  }
  return again.stdout.trim();
}

/** The PostgreSQL 15 server binaries (initdb, pg_ctl). */
export function ensurePostgres(config: StackConfig): void {
  if (!existsSync(join(config.pgBinDir, 'initdb')) || !existsSync(join(config.pgBinDir, 'pg_ctl'))) {
    throw new ParityError('PARITY_DEPENDENCY_MISSING', `PostgreSQL server binaries not found in ${config.pgBinDir}`, {
      hint: 'install Debian package postgresql-15, or set PARITY_PG_BINDIR to the folder `pg_config --bindir` prints',
    });
  }
}
