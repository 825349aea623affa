import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, test } from 'vitest';
import { parse } from 'yaml';

const root = fileURLToPath(new URL('../../..', import.meta.url));

function sources(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    return statSync(path).isDirectory() ? sources(path) : path.endsWith('.ts') ? [path] : [];
  });
}

/** Every metric name the code registers. */
const defined = new Set(
  [...sources(join(root, 'services')), ...sources(join(root, 'connectors'))].flatMap((file) =>
    [...readFileSync(file, 'utf8').matchAll(/'(parity_[a-z0-9_]+)'/g)].map((m) => m[1]!),
  ),
);

/** Metric names used in a PromQL text, with histogram suffixes folded back to the metric. */
function used(promql: string): string[] {
  return [...promql.matchAll(/\b(parity_[a-z0-9_]+)/g)].map((m) => m[1]!.replace(/_(bucket|sum|count)$/, ''));
}

describe('dashboard and alerts speak of metrics that exist', () => {
  test('every Grafana panel query uses registered metrics', () => {
    const dashboard = JSON.parse(readFileSync(join(root, 'deploy/grafana/dashboards/parity.json'), 'utf8'));
    const names = dashboard.panels.flatMap((p: any) => (p.targets ?? []).flatMap((t: any) => used(t.expr)));
    expect(names.length).toBeGreaterThan(10);
    for (const name of names) expect(defined, name).toContain(name);
    const titles = dashboard.panels.map((p: any) => p.title.toLowerCase()).join(' | ');
    for (const needed of [
      'slot lag',
      'events per second',
      'commit to kafka',
      'backfill rows',
      'checkpoint',
      'throttle',
      'drift',
      'repairs',
      'stale skips',
      'lock renewals',
      'cutover window',
      'reverse sync lag',
      'reverse slot lag',
      'old-side drift',
      'unrepresentable rows',
      'reverse window clean',
    ]) {
      expect(titles).toContain(needed);
    }
  });

  test('every alert rule uses registered metrics and the required alerts exist', () => {
    const rules = parse(readFileSync(join(root, 'deploy/prometheus/alerts.yml'), 'utf8')).groups.flatMap((g: any) => g.rules);
    for (const rule of rules) for (const name of used(rule.expr)) expect(defined, `${rule.alert}: ${name}`).toContain(name);
    const alerts = rules.map((r: any) => r.alert);
    for (const needed of [
      'ParitySlotLagGrowing',
      'ParityCdcLagHigh',
      'ParityConfirmedDrift',
      'ParityBackfillStalled',
      'ParityLockLost',
      'ParityReverseSyncDown',
      'ParityReverseSyncLagging',
      'ParityReverseDrift',
      'ParityReverseUnrepresentableGrowing',
    ])
      expect(alerts).toContain(needed);
  });

  test('metric names follow Prometheus practice: counters end in _total, no unit-less durations', () => {
    for (const name of defined) {
      if (/_seconds_total$|_total$/.test(name)) continue;
      expect(name, name).not.toMatch(/_(ms|millis|milliseconds)$/);
    }
  });
});
