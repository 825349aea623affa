/**
 * The deployment files, parsed (no cluster or Docker engine here): the status ports agree between
 * the code's fixed defaults, docker-compose.yml, deploy/k8s and deploy/prometheus/prometheus.yml;
 * probes use /livez and /readyz; pods run hardened; compose publishes on 127.0.0.1 only and has no
 * working default password. The Kubernetes API schema check is k8s-schema.test.ts.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, test } from 'vitest';
import { parse, parseAllDocuments } from 'yaml';
import { NODE_FLAGS } from '../../../services/cli/node-flags.js';
import { STATUS_PORTS } from '../../../services/core/http.js';
import { ROOT } from './promql-usage.js';

const k8sDir = join(ROOT, 'deploy/k8s');
const docs = readdirSync(k8sDir)
  .filter((f) => f.endsWith('.yaml'))
  .flatMap((f) =>
    parseAllDocuments(readFileSync(join(k8sDir, f), 'utf8')).map((d) => {
      expect(d.errors, f).toEqual([]);
      return { file: f, doc: d.toJS() as any };
    }),
  );
const kind = (k: string) => docs.filter((d) => d.doc?.kind === k);
const workloads = [...kind('Deployment'), ...kind('Job')];
const component = (d: any): string => d.metadata.labels['app.kubernetes.io/component'];
const compose = parse(readFileSync(join(ROOT, 'docker-compose.yml'), 'utf8'), { merge: true }) as { services: Record<string, any> };
const prometheus = parse(readFileSync(join(ROOT, 'deploy/prometheus/prometheus.yml'), 'utf8'));

describe('deploy/k8s', () => {
  test('every manifest has apiVersion, kind, metadata.name and the parity namespace', () => {
    expect(docs.length).toBeGreaterThan(10);
    for (const { file, doc } of docs.filter((d) => d.doc.kind !== 'Kustomization')) {
      expect(doc.apiVersion, file).toMatch(/^[a-z0-9.]*\/?v\d+(beta\d+)?$/);
      expect(doc.kind, file).toMatch(/^[A-Z]\w+$/);
      expect(doc.metadata?.name, file).toMatch(/^[a-z0-9-]+$/);
      if (doc.kind !== 'Namespace') expect(doc.metadata.namespace, file).toBe('parity');
    }
  });

  test('the long-running services are Deployments and backfill/verify are parallel Jobs', () => {
    expect(
      kind('Deployment')
        .map((d) => component(d.doc))
        .sort(),
    ).toEqual(['cache', 'cdc', 'reconcile', 'reverse-sync', 'serve']);
    // One slot, one fencing token each: never two at once.
    for (const d of kind('Deployment').filter((d) => ['cdc', 'reverse-sync'].includes(component(d.doc)))) {
      expect(d.doc.spec.replicas, d.file).toBeLessThanOrEqual(1);
      expect(d.doc.spec.strategy, d.file).toEqual({ type: 'Recreate' });
    }
    for (const job of kind('Job')) {
      expect(['backfill', 'verify']).toContain(component(job.doc));
      expect(job.doc.spec.parallelism, job.file).toBeGreaterThan(1);
      expect(job.doc.spec.template.spec.restartPolicy).toMatch(/^(OnFailure|Never)$/);
    }
    expect(kind('Job')).toHaveLength(2);
  });

  test('pods are hardened: non-root uid 10001, seccomp RuntimeDefault, all capabilities dropped, read-only root', () => {
    for (const { file, doc } of workloads) {
      const pod = doc.spec.template.spec;
      expect(pod.securityContext, file).toMatchObject({ runAsNonRoot: true, runAsUser: 10001, seccompProfile: { type: 'RuntimeDefault' } });
      for (const c of pod.containers) {
        expect(c.securityContext, file).toMatchObject({
          allowPrivilegeEscalation: false,
          readOnlyRootFilesystem: true,
          capabilities: { drop: ['ALL'] },
        });
        // The V8 flags are the one list every launch path uses (services/cli/node-flags.ts).
        expect(c.command, file).toEqual(['node', ...NODE_FLAGS, 'dist/services/cli/main.js']);
      }
    }
  });

  test('each container serves status on its fixed port, probed on /livez and /readyz (never /healthz)', () => {
    const expected: Record<string, number> = {
      cdc: STATUS_PORTS.cdc,
      cache: STATUS_PORTS.cache,
      reconcile: STATUS_PORTS.reconcile,
      serve: STATUS_PORTS.serve,
      backfill: STATUS_PORTS.backfill,
      verify: STATUS_PORTS.verify,
      'reverse-sync': STATUS_PORTS.reverse,
    };
    for (const { file, doc } of workloads) {
      const c = doc.spec.template.spec.containers[0];
      const port = expected[component(doc)];
      expect(c.ports, file).toEqual([{ name: 'http', containerPort: port }]);
      expect(c.env.find((e: any) => e.name === 'PARITY_STATUS_PORT')?.value, file).toBe(String(port));
      expect(c.livenessProbe.httpGet.path, file).toBe('/livez');
      expect(c.readinessProbe.httpGet.path, file).toBe('/readyz');
    }
    for (const { file, doc } of kind('Service')) {
      expect(doc.spec.ports[0].port, file).toBe(expected[component(doc)]);
    }
  });

  test('consumer groups have a PodDisruptionBudget; a PodMonitor scrapes every parity pod', () => {
    const pdbs = kind('PodDisruptionBudget').map((d) => d.doc.spec.selector.matchLabels['app.kubernetes.io/component']);
    expect(pdbs.sort()).toEqual(['cache', 'reconcile']);
    for (const d of kind('PodDisruptionBudget')) {
      expect(d.doc.spec.minAvailable).toBe(1);
      // A not-ready (lagging) pod may still be evicted, or lag readiness would block node drains.
      expect(d.doc.spec.unhealthyPodEvictionPolicy).toBe('AlwaysAllow');
    }
    const [monitor] = kind('PodMonitor');
    expect(monitor?.doc.spec.selector.matchLabels).toEqual({ 'app.kubernetes.io/name': 'parity' });
    expect(monitor?.doc.spec.podMetricsEndpoints[0]).toMatchObject({ port: 'http', path: '/metrics' });
  });

  test('kustomization lists every manifest file; the Secret ships no usable value', () => {
    const kustomization = parse(readFileSync(join(k8sDir, 'kustomization.yaml'), 'utf8'));
    const files = readdirSync(k8sDir).filter((f) => f.endsWith('.yaml') && f !== 'kustomization.yaml');
    expect([...kustomization.resources].sort()).toEqual(files.sort());
    for (const value of Object.values(kind('Secret')[0]!.doc.stringData)) expect(value).toBe('');
  });
});

describe('docker-compose.yml', () => {
  test('every published port is bound to 127.0.0.1', () => {
    for (const [name, service] of Object.entries(compose.services)) {
      for (const p of service.ports ?? []) expect(String(p), name).toMatch(/^127\.0\.0\.1:\d+:\d+$/);
    }
  });

  test('no password has a default: each comes from .env and compose refuses to start without it', () => {
    const text = readFileSync(join(ROOT, 'docker-compose.yml'), 'utf8');
    expect(text).not.toMatch(/\$\{[A-Z_]*(PASSWORD|TOKEN)[A-Z_]*:-/);
    for (const v of ['POSTGRES_PASSWORD', 'REDIS_PASSWORD', 'GRAFANA_ADMIN_PASSWORD', 'PARITY_CONTROL_TOKEN'])
      expect(text).toContain(`\${${v}:?`);
    const example = readFileSync(join(ROOT, '.env.example'), 'utf8');
    for (const line of example.split('\n').filter((l) => /^[A-Z_]+=/.test(l))) expect(line, 'placeholders are empty').toMatch(/^[A-Z_]+=$/);
  });

  test('parity services publish their fixed status port and allow their own name as Host', () => {
    const expected: Record<string, number> = {
      'parity-cdc': 9401,
      'parity-reconcile': 9402,
      'parity-cache': 9403,
      'parity-serve': 9400,
      'parity-backfill': 9404,
      'parity-verify': 9405,
      'parity-reverse-sync': 9406,
    };
    for (const [name, port] of Object.entries(expected)) {
      const service = compose.services[name];
      expect(service.ports, name).toEqual([`127.0.0.1:${port}:${port}`]);
      expect(service.environment.PARITY_STATUS_ALLOWED_HOSTS, name).toBe(name);
      expect(service.environment.PARITY_STATUS_HOST).toBe('0.0.0.0');
      if (!service.profiles) expect(service.healthcheck.test.join(' '), name).toContain(`http://127.0.0.1:${port}/livez`);
    }
  });
});

describe('deploy/prometheus/prometheus.yml', () => {
  test('one job per service, on the service name and its fixed port, as compose runs them', () => {
    const targets = Object.fromEntries(prometheus.scrape_configs.map((s: any) => [s.job_name, s.static_configs[0].targets[0]]));
    expect(targets).toEqual({
      'parity-cdc': `parity-cdc:${STATUS_PORTS.cdc}`,
      'parity-reconcile': `parity-reconcile:${STATUS_PORTS.reconcile}`,
      'parity-cache': `parity-cache:${STATUS_PORTS.cache}`,
      'parity-backfill': `parity-backfill:${STATUS_PORTS.backfill}`,
      'parity-verify': `parity-verify:${STATUS_PORTS.verify}`,
      'parity-reverse-sync': `parity-reverse-sync:${STATUS_PORTS.reverse}`,
      'parity-serve': `parity-serve:${STATUS_PORTS.serve}`,
    });
    for (const [job, target] of Object.entries(targets)) expect(Object.keys(compose.services)).toContain(String(target).split(':')[0]);
  });

  test('every alert has a promtool unit test where it fires and one where it does not', () => {
    const alerts = parse(readFileSync(join(ROOT, 'deploy/prometheus/alerts.yml'), 'utf8')).groups.flatMap((g: any) =>
      g.rules.map((r: any) => r.alert),
    );
    const cases = parse(readFileSync(join(ROOT, 'deploy/prometheus/alerts.test.yml'), 'utf8')).tests.flatMap((t: any) => t.alert_rule_test);
    for (const alert of alerts) {
      const mine = cases.filter((c: any) => c.alertname === alert);
      expect(
        mine.some((c: any) => (c.exp_alerts ?? []).length > 0),
        `${alert} fires in a test`,
      ).toBe(true);
      expect(
        mine.some((c: any) => (c.exp_alerts ?? []).length === 0),
        `${alert} has a case where it does not fire`,
      ).toBe(true);
    }
  });
});
