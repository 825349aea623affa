import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, test } from 'vitest';
import { parse } from 'yaml';
import { COMMANDS } from '../../../services/cli/commands.js';

const root = fileURLToPath(new URL('../../..', import.meta.url));
const compose = parse(readFileSync(join(root, 'docker-compose.yml'), 'utf8'), { merge: true }) as {
  services: Record<string, any>;
};
const services = compose.services;
const names = Object.keys(services);

/** Container port a service listens on, from its healthcheck/ports mapping "host:container". */
function containerPorts(service: any): number[] {
  return (service.ports ?? []).map((p: string) => Number(String(p).split(':').pop()));
}

describe('docker-compose.yml (parsed, not run: no Docker engine here)', () => {
  test('has the whole topology', () => {
    for (const required of [
      'postgres-source',
      'postgres-target',
      'kafka',
      'schema-registry',
      'redis',
      'prometheus',
      'grafana',
      'parity-cdc',
      'parity-reconcile',
      'parity-cache',
      'parity-serve',
    ]) {
      expect(names).toContain(required);
    }
  });

  test('third-party images are pinned, parity services build from deploy/docker/Dockerfile', () => {
    for (const [name, service] of Object.entries(services)) {
      if (name.startsWith('parity-')) {
        expect(service.build.dockerfile).toBe('deploy/docker/Dockerfile');
        expect(existsSync(join(root, service.build.context, service.build.dockerfile))).toBe(true);
      } else {
        expect(service.image, name).toMatch(/^[\w./-]+:[\w.-]+$/);
        expect(service.image, name).not.toMatch(/:latest$/);
      }
    }
  });

  test('every service has a healthcheck and every dependency exists and is waited on by health', () => {
    for (const [name, service] of Object.entries(services)) {
      if (!name.startsWith('parity-')) expect(service.healthcheck?.test, `${name} healthcheck`).toBeDefined();
      for (const [dep, condition] of Object.entries(service.depends_on ?? {})) {
        expect(names, `${name} depends on ${dep}`).toContain(dep);
        expect((condition as any).condition).toBe('service_healthy');
        expect(services[dep].healthcheck, `${dep} must have a healthcheck`).toBeDefined();
      }
    }
  });

  test('published host ports do not collide', () => {
    // "127.0.0.1:HOST:CONTAINER": the host port is the second field from the end.
    const hostPorts = Object.values(services).flatMap((s: any) => (s.ports ?? []).map((p: string) => String(p).split(':').slice(-2)[0]));
    expect(new Set(hostPorts).size).toBe(hostPorts.length);
  });

  test('PostgreSQL runs with logical WAL', () => {
    for (const name of ['postgres-source', 'postgres-target']) {
      expect(services[name].command.join(' ')).toContain('wal_level=logical');
    }
  });

  test('connection settings point at services and ports that exist', () => {
    const env = services['parity-cdc'].environment as Record<string, string>;
    for (const value of Object.values(env)) {
      const match = /^(?:[a-z]+:\/\/)?(?:[^@/]*@)?([a-z][a-z0-9-]*):(\d+)/.exec(String(value));
      if (!match) continue;
      const [, host, port] = match;
      expect(names, `${value} names a service`).toContain(host);
      const listening = containerPorts(services[host!]);
      expect(listening, `${host} listens on ${port}`).toContain(Number(port));
    }
  });

  test('parity services run real parity commands and mounted files exist', () => {
    const commandNames = COMMANDS.map((c) => c.name);
    for (const [name, service] of Object.entries(services)) {
      for (const volume of service.volumes ?? []) {
        const source = String(volume).split(':')[0]!;
        if (source.startsWith('./')) expect(existsSync(join(root, source)), `${name} mounts ${source}`).toBe(true);
      }
      if (!name.startsWith('parity-')) continue;
      const words = (service.command as string[]).filter((w) => !w.startsWith('-'));
      const matched = commandNames.find((c) => c.split(' ').every((w, i) => words[i] === w));
      expect(matched, `${name}: ${words.join(' ')}`).toBeDefined();
    }
  });

  test('the image is multi-stage and runs as a non-root user', () => {
    const dockerfile = readFileSync(join(root, 'deploy/docker/Dockerfile'), 'utf8');
    expect(dockerfile.match(/^FROM /gm)?.length).toBeGreaterThanOrEqual(2);
    const user = /^USER (\S+)/m.exec(dockerfile)?.[1];
    expect(user).toBeDefined();
    expect(user).not.toBe('root');
  });
});
