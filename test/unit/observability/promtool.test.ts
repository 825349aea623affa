/**
 * The Prometheus linters on parity's own files: `promtool check metrics` on every service's
 * /metrics text, `promtool check config` on deploy/prometheus/prometheus.yml, `promtool check rules`
 * and `promtool test rules` on the alert rules. promtool comes from Debian's prometheus package,
 * installed when missing (services/stack/prometheus.ts).
 */
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { beforeAll, describe, expect, test } from 'vitest';
import { ensurePrometheus } from '../../../services/stack/prometheus.js';
import { ROOT } from './promql-usage.js';
import { SERVICE_REGISTRIES, serviceRegistry } from './registries.js';

let promtool: string;

function run(args: string[], input?: string): { code: number | null; out: string } {
  const r = spawnSync(promtool, args, { cwd: ROOT, input, encoding: 'utf8' });
  return { code: r.status, out: `${r.stdout}${r.stderr}` };
}

beforeAll(() => {
  promtool = ensurePrometheus().promtool;
}, 300_000);

describe('promtool', () => {
  test.each(Object.keys(SERVICE_REGISTRIES))('check metrics: the %s registry is lint-clean', async (service) => {
    const text = await serviceRegistry(service).metrics();
    expect(text).toContain('process_cpu_seconds_total');
    expect(text).not.toMatch(/parity_process_/);
    const r = run(['check', 'metrics'], text);
    expect(r.out.trim()).toBe('');
    expect(r.code).toBe(0);
  });

  test('check metrics does fail on a lint problem (the check is live)', () => {
    const r = run(['check', 'metrics'], '# HELP x_active_total a gauge\n# TYPE x_active_total gauge\nx_active_total 1\n');
    expect(r.code).not.toBe(0);
    expect(r.out).toMatch(/non-counter metrics should not have "_total" suffix/);
  });

  test('no gauge and counter share a family name (x and x_total)', () => {
    for (const service of Object.keys(SERVICE_REGISTRIES)) {
      const names = new Set(
        serviceRegistry(service)
          .getMetricsAsArray()
          .map((m) => (m as unknown as { name: string }).name),
      );
      for (const name of names)
        if (name.endsWith('_total')) expect(names, `${service}: ${name}`).not.toContain(name.slice(0, -'_total'.length));
    }
  });

  test('check config: deploy/prometheus/prometheus.yml', () => {
    const r = run(['check', 'config', join('deploy', 'prometheus', 'prometheus.yml')]);
    expect(r.out).toMatch(/SUCCESS/);
    expect(r.code, r.out).toBe(0);
  });

  test('check rules and test rules: deploy/prometheus/alerts.yml', () => {
    const check = run(['check', 'rules', join('deploy', 'prometheus', 'alerts.yml')]);
    expect(check.code, check.out).toBe(0);
    const tests = run(['test', 'rules', join('deploy', 'prometheus', 'alerts.test.yml')]);
    expect(tests.code, tests.out).toBe(0);
    expect(tests.out).toMatch(/SUCCESS/);
  });
});
