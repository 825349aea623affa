/**
 * What the Grafana dashboard and the alert rules ask of the metrics: every `parity_` metric they
 * select, with the labels they match on or group by. A small reading of PromQL, enough for the
 * expressions in deploy/ (selectors, `by (...)` clauses); `job` and `instance` come from the scrape.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parse } from 'yaml';

export const ROOT = fileURLToPath(new URL('../../..', import.meta.url));
/** Labels Prometheus adds to every scraped series, or that every parity series has. */
export const TARGET_LABELS = new Set(['job', 'instance', 'component', 'service', '__name__']);

export interface Usage {
  /** Where it is used: the panel title or alert name. */
  where: string;
  /** The metric family (histogram suffixes removed). */
  metric: string;
  /** Labels the expression needs on this metric. */
  labels: string[];
  /** The name as written (with _bucket etc.), for a Prometheus query. */
  written: string;
}

/** Expressions of the dashboard's panels and of the alert rules, with where they are used. */
export function expressions(): { where: string; expr: string }[] {
  const dashboard = JSON.parse(readFileSync(join(ROOT, 'deploy/grafana/dashboards/parity.json'), 'utf8'));
  // Row panels ("Cutover window") group panels and have no queries.
  const panels = dashboard.panels.flatMap((p: any) =>
    (p.targets ?? []).map((t: any) => ({ where: `panel "${p.title}"`, expr: t.expr as string })),
  );
  const rules = parse(readFileSync(join(ROOT, 'deploy/prometheus/alerts.yml'), 'utf8')).groups.flatMap((g: any) => g.rules);
  return [...panels, ...rules.map((r: any) => ({ where: `alert ${r.alert}`, expr: r.expr as string }))];
}

export function usages(): Usage[] {
  const out: Usage[] = [];
  for (const { where, expr } of expressions()) {
    const grouped = [...expr.matchAll(/\b(?:by|on|without|ignoring)\s*\(([^)]*)\)/g)].flatMap((m) =>
      m[1]!
        .split(',')
        .map((l) => l.trim())
        .filter(Boolean),
    );
    for (const m of expr.matchAll(/\b(parity_[a-z0-9_]+)(\{([^}]*)\})?/g)) {
      const written = m[1]!;
      const isBucket = written.endsWith('_bucket');
      const metric = written.replace(/_(bucket|sum|count)$/, '');
      const matched = [...(m[3] ?? '').matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)\s*(=~|!~|!=|=)/g)].map((x) => x[1]!);
      const labels = [...new Set([...matched, ...grouped])].filter((l) => !TARGET_LABELS.has(l) && !(l === 'le' && isBucket));
      out.push({ where, metric, labels, written });
    }
  }
  return out;
}
