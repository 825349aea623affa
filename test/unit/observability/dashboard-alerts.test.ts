/**
 * Every metric and label the Grafana dashboard and the alert rules use is registered in the code
 * with that label set (the integration test in test/integration/observability checks the same
 * against what a real Prometheus scraped).
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, test } from 'vitest';
import { registeredFamilies } from './registries.js';
import { ROOT, usages } from './promql-usage.js';

describe('dashboard and alerts use registered metrics and labels', () => {
  const families = registeredFamilies();
  const used = usages();

  test('every metric used exists, with every label it is matched on or grouped by', () => {
    expect(used.length).toBeGreaterThan(20);
    for (const u of used) {
      const family = families.get(u.metric);
      expect(family, `${u.where}: ${u.metric} is not registered by any service`).toBeDefined();
      for (const label of u.labels) expect([...family!.labels], `${u.where}: ${u.metric} has no label "${label}"`).toContain(label);
      if (u.written !== u.metric) expect(family!.type, `${u.where}: ${u.written} needs a histogram`).toBe('histogram');
    }
  });

  test('the throttle panel groups by a label the metric has (the fixed panel)', () => {
    const throttle = used.filter((u) => u.where === 'panel "Throttle state by reason"');
    expect(throttle.map((u) => u.metric)).toEqual(['parity_backfill_throttle_active']);
    expect(throttle[0]!.labels).toEqual(['reason']);
  });

  test('the dashboard takes its data source and job/instance from variables, no hard-coded uid', () => {
    const text = readFileSync(join(ROOT, 'deploy/grafana/dashboards/parity.json'), 'utf8');
    const dashboard = JSON.parse(text);
    const variables = dashboard.templating.list.map((v: any) => [v.name, v.type]);
    expect(variables).toEqual(
      expect.arrayContaining([
        ['datasource', 'datasource'],
        ['job', 'query'],
        ['instance', 'query'],
      ]),
    );
    const uids = [...text.matchAll(/"uid":\s*"([^"]*)"/g)].map((m) => m[1]).filter((uid) => uid !== dashboard.uid);
    expect(uids.length).toBeGreaterThan(0);
    for (const uid of uids) expect(uid).toBe('${datasource}');
    for (const panel of dashboard.panels) {
      for (const t of panel.targets ?? []) {
        for (const m of t.expr.matchAll(/\bparity_[a-z0-9_]+(\{[^}]*\})?/g))
          expect(m[1] ?? '', `${panel.title}: ${t.expr}`).toContain('job=~"$job", instance=~"$instance"');
      }
    }
  });
});
