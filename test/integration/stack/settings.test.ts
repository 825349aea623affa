/**
 * Stack settings are applied or refused, never silently ignored (issue 17 item 9). Runs `parity stack`
 * as a user would, on a state dir and ports of its own:
 * - bad values (a port that is not a number, two services on one port, an unsupported broker count)
 *   exit 2 and start nothing;
 * - a PostgreSQL port changed while the cluster is stopped is applied at the next start; changed while
 *   it runs, it is refused (exit 2) and the cluster keeps running where it was;
 * - TCP connections to the stack's PostgreSQL need the generated password (scram-sha-256);
 * - a state dir's Kafka version and broker count are fixed when its data is formatted: asking for
 *   others is refused; its ports follow the settings at each start;
 * - once `stack up` returns, a fresh Kafka gives a producer id and a group coordinator answers at once.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Admin, Producer } from '@platformatic/kafka';
import pg from 'pg';
import { afterAll, describe, expect, it } from 'vitest';
import { DEFAULT_KAFKA_VERSION, LEGACY_KAFKA_VERSION, stackConfig } from '../../../services/stack/config.js';

const REPO_ROOT = new URL('../../../', import.meta.url).pathname;
const BASE = Number(process.env.PARITY_SETTINGS_TEST_PORT_BASE ?? 27400);
const stateDir = mkdtempSync(join(tmpdir(), 'parity-settings-'));

/** The test's own stack: nothing inherited from the shared one's settings. */
const baseEnv: NodeJS.ProcessEnv = Object.fromEntries(
  Object.entries(process.env).filter(([k]) => !/^PARITY_(.*_PORT|.*_URL|KAFKA_BROKERS?|STATE_DIR)$/.test(k)),
);
Object.assign(baseEnv, {
  PARITY_STATE_DIR: stateDir,
  PARITY_PG_SOURCE_PORT: String(BASE),
  PARITY_PG_TARGET_PORT: String(BASE + 1),
  PARITY_KAFKA_PORT: String(BASE + 10),
  PARITY_REGISTRY_PORT: String(BASE + 20),
  PARITY_REDIS_PORT: String(BASE + 30),
});

interface Run {
  status: number | null;
  stdout: string;
  stderr: string;
}

function parity(args: string[], env: NodeJS.ProcessEnv = {}): Run {
  const r = spawnSync(process.execPath, [join(REPO_ROOT, 'services/cli/bin/parity.js'), ...args], {
    cwd: REPO_ROOT,
    env: { ...baseEnv, ...env },
    encoding: 'utf8',
    timeout: 240_000,
  });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

function status(env: NodeJS.ProcessEnv = {}): Array<{ service: string; running: boolean; port: number; version?: string; pid?: number }> {
  return JSON.parse(parity(['stack', 'status', '--json'], env).stdout);
}

const service = (name: string, env: NodeJS.ProcessEnv = {}) => status(env).find((s) => s.service === name)!;

function stackEnvOf(env: NodeJS.ProcessEnv = {}): Record<string, string> {
  const out = parity(['stack', 'env'], env).stdout;
  return Object.fromEntries([...out.matchAll(/^export (\w+)=(.*)$/gm)].map((m) => [m[1]!, m[2]!]));
}

afterAll(() => {
  parity(['stack', 'down']);
  rmSync(stateDir, { recursive: true, force: true });
  rmSync(stackConfig(baseEnv).pgRoot, { recursive: true, force: true });
}, 180_000);

describe('stack settings: applied or refused', () => {
  it('refuses bad values with exit 2 and starts nothing', () => {
    const notANumber = parity(['stack', 'up', 'redis'], { PARITY_REDIS_PORT: 'six' });
    expect(notANumber.status).toBe(2);
    expect(notANumber.stderr).toContain('PARITY_REDIS_PORT=six');

    const clash = parity(['stack', 'up', 'redis'], { PARITY_REDIS_PORT: String(BASE) });
    expect(clash.status).toBe(2);
    expect(clash.stderr).toMatch(/port \d+ is wanted by both pg-source and redis/);

    const brokers = parity(['stack', 'up', '--brokers', '2', 'kafka']);
    expect(brokers.status).toBe(2);
    expect(brokers.stderr).toContain('--brokers 2');

    const version = parity(['stack', 'up', 'kafka'], { PARITY_KAFKA_VERSION: 'latest' });
    expect(version.status).toBe(2);
    expect(version.stderr).toContain('PARITY_KAFKA_VERSION=latest');

    expect(existsSync(join(stateDir, 'run'))).toBe(false);
    expect(existsSync(join(stateDir, 'kafka'))).toBe(false);
  });

  it('applies a new PostgreSQL port at the next start, refuses one while the cluster runs, and wants the password on TCP', async () => {
    expect(parity(['stack', 'up', 'pg-source']).status).toBe(0);
    expect(service('pg-source').port).toBe(BASE);
    expect(parity(['stack', 'down', 'pg-source']).status).toBe(0);

    // Stopped: the new port is written into the cluster's configuration and used.
    const moved = { PARITY_PG_SOURCE_PORT: String(BASE + 5) };
    expect(parity(['stack', 'up', 'pg-source'], moved).status).toBe(0);
    const running = service('pg-source', moved);
    expect(running.running).toBe(true);
    expect(running.port).toBe(BASE + 5);
    const url = stackEnvOf(moved).PARITY_SOURCE_URL!;
    expect(new URL(url).port).toBe(String(BASE + 5));
    const ok = new pg.Client({ connectionString: url });
    await ok.connect();
    expect((await ok.query('SELECT 1 AS one')).rows[0].one).toBe(1);
    await ok.end();

    // Running: another port is refused, with the reason and the fix; the cluster stays where it is.
    const refused = parity(['stack', 'up', 'pg-source'], { PARITY_PG_SOURCE_PORT: String(BASE + 6) });
    expect(refused.status).toBe(2);
    expect(refused.stderr).toContain(`pg-source runs on port ${BASE + 5}`);
    expect(refused.stderr).toContain('parity stack down pg-source');
    expect(service('pg-source', moved)).toMatchObject({ running: true, port: BASE + 5, pid: running.pid });

    // scram-sha-256 on TCP: no password or a wrong one is refused; the password file is private.
    const noPassword = new URL(url);
    noPassword.password = '';
    await expect(new pg.Client({ connectionString: noPassword.toString(), password: '' }).connect()).rejects.toThrow(/password/);
    const wrong = new URL(url);
    wrong.password = 'not-the-password';
    await expect(new pg.Client({ connectionString: wrong.toString() }).connect()).rejects.toThrow(/password authentication failed/);
    const passwordFile = join(stateDir, 'secrets', 'pg-password');
    expect(statSync(passwordFile).mode & 0o077).toBe(0);
    const password = readFileSync(passwordFile, 'utf8').trim();
    expect(decodeURIComponent(new URL(url).password)).toBe(password);
    // The stack sets a SCRAM verifier, never the password itself: the server's log never sees it.
    const serverLog = join(stackConfig(baseEnv).pgRoot, 'pg-source', 'server.log');
    expect(readFileSync(serverLog, 'utf8')).not.toContain(password);
  });

  it('moves Redis only when it is stopped', () => {
    expect(parity(['stack', 'up', 'redis']).status).toBe(0);
    const before = service('redis');
    expect(before).toMatchObject({ running: true, port: BASE + 30 });
    const moved = { PARITY_REDIS_PORT: String(BASE + 31) };
    const refused = parity(['stack', 'up', 'redis'], moved);
    expect(refused.status).toBe(2);
    expect(refused.stderr).toContain(`redis runs on port ${BASE + 30}`);
    expect(service('redis')).toMatchObject({ running: true, pid: before.pid, port: BASE + 30 });
    expect(parity(['stack', 'down', 'redis']).status).toBe(0);
    expect(parity(['stack', 'up', 'redis'], moved).status).toBe(0);
    expect(service('redis', moved)).toMatchObject({ running: true, port: BASE + 31 });
  });

  it('keeps the Kafka version and broker count of a formatted state dir, and moves its ports only when stopped', async () => {
    const version = process.env.PARITY_KAFKA_VERSION ?? DEFAULT_KAFKA_VERSION;
    const other = version === DEFAULT_KAFKA_VERSION ? LEGACY_KAFKA_VERSION : DEFAULT_KAFKA_VERSION;
    expect(parity(['stack', 'up', 'kafka'], { PARITY_KAFKA_VERSION: version }).status).toBe(0);
    // Ready means usable (issue 17 item 7): a brand-new broker gives a producer id and answers a group's
    // offset fetch on the first try, without COORDINATOR_LOAD_IN_PROGRESS.
    const firstTry = { clientId: 'settings-test', bootstrapBrokers: [`127.0.0.1:${BASE + 10}`], retries: 0 };
    const producer = new Producer({ ...firstTry, idempotent: true });
    const admin = new Admin(firstTry);
    try {
      expect((await producer.initIdempotentProducer({})).producerId).toBeGreaterThanOrEqual(0n);
      await expect(admin.listConsumerGroupOffsets({ groups: ['settings-test-group'] })).resolves.toBeDefined();
    } finally {
      await Promise.allSettled([producer.close(), admin.close()]);
    }
    const kafka = service('kafka');
    expect(kafka).toMatchObject({ running: true, port: BASE + 10, version });
    // Later commands know the version without being told.
    expect(JSON.parse(readFileSync(join(stateDir, 'kafka', 'cluster.json'), 'utf8'))).toMatchObject({ version, brokers: 1 });

    const otherVersion = parity(['stack', 'up', 'kafka'], { PARITY_KAFKA_VERSION: other });
    expect(otherVersion.status).toBe(2);
    expect(otherVersion.stderr).toContain(`formatted by Kafka ${version}`);
    const threeBrokers = parity(['stack', 'up', '--brokers', '3', 'kafka']);
    expect(threeBrokers.status).toBe(2);
    expect(threeBrokers.stderr).toContain('formatted with 1 broker');
    const busyPort = parity(['stack', 'up', 'kafka'], { PARITY_KAFKA_PORT: String(BASE + 12) });
    expect(busyPort.status).toBe(2);
    expect(busyPort.stderr).toContain(`runs on ports ${BASE + 10}/${BASE + 11}`);
    expect(service('kafka')).toMatchObject({ running: true, pid: kafka.pid, port: BASE + 10 });

    // Stopped, the new ports are applied (server.properties is rewritten at each start).
    expect(parity(['stack', 'down', 'kafka']).status).toBe(0);
    const moved = { PARITY_KAFKA_PORT: String(BASE + 12) };
    expect(parity(['stack', 'up', 'kafka'], moved).status).toBe(0);
    expect(service('kafka', moved)).toMatchObject({ running: true, port: BASE + 12, version });
    expect(stackEnvOf(moved).PARITY_KAFKA_BROKERS).toBe(`127.0.0.1:${BASE + 12}`);
  });
});
