/**
 * The backfill frontier as one HTML page: `npm run bench:backfill -- --report FILE` writes it at the
 * end of a run, and `npm run bench:backfill-report -- RESULT [--out FILE]` renders it from a run's
 * saved stdout (its last line is the JSON). The settings in order of rows/s: a chart of the p99 ratio
 * (against the run's load-alone baseline, against the setting's own idle windows with that ratio's
 * 90% interval, and the 1.2x limit), a chart of rows/s, and the table. Charts are the project's
 * inline SVG (services/core/svg-chart.ts): no scripts, opens anywhere.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import { barChart, escapeXml, lineChart } from '../../services/core/svg-chart.js';

export interface FrontierPoint {
  setting: string;
  rows_per_s: number;
  oltp_p99_ms: number | null;
  oltp_p99_ratio: number | null;
  oltp_samples: number;
  wal_bytes_per_row: number | null;
  /** Absent in runs from before 2026-12-08. */
  oltp_p99_ratio_own_idle?: { ratio: number | null; ci90: [number, number] | null; pairs: number; verdict: string };
}

export interface FrontierResult {
  frontier: FrontierPoint[];
  rows_per_s: number;
  rows_per_s_at_1_2x: number | null;
  rows_per_s_at_1_2x_setting: string | null;
  rows_per_s_within_1_2x_shown?: number | null;
  rows_per_s_within_1_2x_shown_setting?: string | null;
  oltp_p99_ms_baseline: number | null;
  disturbed: boolean;
  load_alone_p99_ms_by_window: { median: number | null; max: number | null; windows: number };
  idle_commit_ms?: { before: { p50: number | null; p99: number | null }; after: { p50: number | null; p99: number | null } };
  target_oltp_p99_ratio: number;
}

/** Ratios above this are drawn at it (a stalled window can make one 27x); the table has the real figure. */
const CLIP = 4;

export function renderFrontierHtml(r: FrontierResult, title = 'parity backfill frontier'): string {
  const e = escapeXml;
  const points = [...r.frontier].sort((a, b) => a.rows_per_s - b.rows_per_s);
  const labels = points.map((p) => `${p.setting} ${(p.rows_per_s / 1000).toFixed(1)}k`);
  // A figure the run does not have (no pairs, no interval) is a gap in its line, not a zero.
  const clip = (v: number | null | undefined): number => (v === null || v === undefined ? Number.NaN : Math.min(CLIP, v));
  const limit = r.target_oltp_p99_ratio;
  const ratioChart = lineChart({
    id: 'frontier-ratio',
    title: `Foreground p99 ratio by setting, in order of rows/s (limit ${limit}x; drawn up to ${CLIP}x)`,
    labels,
    series: [
      { name: 'vs the load-alone baseline', color: '#2e86c1', values: points.map((p) => clip(p.oltp_p99_ratio)) },
      { name: 'vs its own idle windows', color: '#1e8449', values: points.map((p) => clip(p.oltp_p99_ratio_own_idle?.ratio)) },
      { name: '90% interval, high', color: '#a9dfbf', values: points.map((p) => clip(p.oltp_p99_ratio_own_idle?.ci90?.[1])) },
      { name: '90% interval, low', color: '#d5f5e3', values: points.map((p) => clip(p.oltp_p99_ratio_own_idle?.ci90?.[0])) },
      { name: `limit ${limit}x`, color: '#c0392b', values: points.map(() => limit) },
    ],
    yLabel: 'p99 ratio',
  });
  const rowsChart = barChart({
    id: 'frontier-rows',
    title: 'Backfill rows/s while running, by setting',
    labels,
    series: [{ name: 'rows/s', color: '#2e86c1', values: points.map((p) => p.rows_per_s) }],
    yLabel: 'rows/s',
  });
  const n = (v: number | null | undefined, digits = 2): string => (v === null || v === undefined ? '-' : v.toFixed(digits));
  const count = (v: number | null | undefined): string => (v === null || v === undefined ? 'none' : v.toLocaleString('en-US'));
  const row = (cells: string[], tag = 'td'): string => `<tr>${cells.map((c) => `<${tag}>${c}</${tag}>`).join('')}</tr>`;
  const table = `<table><thead>${row(['setting', 'rows/s', 'p99 ms', 'ratio vs baseline', 'ratio vs own idle', '90% interval', 'pairs', 'verdict', 'transactions', 'WAL bytes/row'], 'th')}</thead><tbody>${points
    .map((p) => {
      const o = p.oltp_p99_ratio_own_idle;
      return row([
        e(p.setting),
        count(p.rows_per_s),
        n(p.oltp_p99_ms),
        n(p.oltp_p99_ratio),
        n(o?.ratio),
        o?.ci90 ? `${n(o.ci90[0])}-${n(o.ci90[1])}` : '-',
        o ? String(o.pairs) : '-',
        e(o?.verdict ?? '-'),
        count(p.oltp_samples),
        p.wal_bytes_per_row === null ? '-' : String(p.wal_bytes_per_row),
      ]);
    })
    .join('')}</tbody></table>`;
  const idle = r.idle_commit_ms;
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>${e(title)}</title>
<style>
body{font-family:system-ui,sans-serif;margin:2em;color:#222;max-width:1100px}
table{border-collapse:collapse;margin:1em 0;font-size:13px}td,th{border:1px solid #ccc;padding:4px 8px;text-align:left}
th{background:#f4f4f4}td:nth-child(n+2){text-align:right;font-variant-numeric:tabular-nums}.warn{color:#c0392b}
</style></head><body>
<h1>${e(title)}</h1>
<p>Unthrottled on its own table: <b>${count(r.rows_per_s)}</b> rows/s. Highest rows/s within ${limit}x of the load-alone baseline: <b>${count(r.rows_per_s_at_1_2x)}</b>${r.rows_per_s_at_1_2x_setting ? ` (${e(r.rows_per_s_at_1_2x_setting)})` : ''}; shown within ${limit}x of its own idle windows with 90% confidence: <b>${count(r.rows_per_s_within_1_2x_shown)}</b>${r.rows_per_s_within_1_2x_shown_setting ? ` (${e(r.rows_per_s_within_1_2x_shown_setting)})` : ''}.</p>
<p${r.disturbed ? ' class="warn"' : ''}>Load alone: baseline p99 ${n(r.oltp_p99_ms_baseline)} ms; p99 by window median ${n(r.load_alone_p99_ms_by_window.median)}, max ${n(r.load_alone_p99_ms_by_window.max)} ms over ${r.load_alone_p99_ms_by_window.windows} windows${r.disturbed ? ': a DISTURBED run (a load-alone window over twice the median), its ratios are the machine&#39;s' : ''}.${
    idle
      ? ` Idle server commit latency p50 / p99: ${n(idle.before.p50, 3)} / ${n(idle.before.p99, 3)} ms before the load, ${n(idle.after.p50, 3)} / ${n(idle.after.p99, 3)} ms after.`
      : ''
  }</p>
<div>${ratioChart}</div>
<div>${rowsChart}</div>
${table}
</body></html>
`;
}

/** The JSON result of a bench:backfill run: its output's last non-empty line. */
export function lastJsonLine(text: string): FrontierResult {
  const line = text
    .trim()
    .split('\n')
    .filter((l) => l.trim() !== '')
    .pop();
  if (!line) throw new Error('no JSON line: give the saved stdout of a bench:backfill run (its last line is the result)');
  let parsed: Partial<FrontierResult>;
  try {
    parsed = JSON.parse(line) as Partial<FrontierResult>;
  } catch {
    throw new Error(
      'its last line is not JSON: give the saved stdout of a bench:backfill run (its last line is the result), not its stderr',
    );
  }
  if (!Array.isArray(parsed.frontier))
    throw new Error(
      'the last line has no `frontier`: give the saved stdout of a bench:backfill run (not --quick of an old build, not another bench)',
    );
  return parsed as FrontierResult;
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  const { values, positionals } = parseArgs({ options: { out: { type: 'string' } }, allowPositionals: true });
  const input = positionals[0];
  if (!input) {
    process.stderr.write(
      'usage: npm run bench:backfill-report -- RESULT.json [--out FILE.html] (RESULT: the saved stdout of a bench:backfill run)\n',
    );
    process.exit(2);
  }
  let html: string;
  try {
    html = renderFrontierHtml(lastJsonLine(readFileSync(input, 'utf8')));
  } catch (err) {
    process.stderr.write(`bench:backfill-report: ${input}: ${(err as Error).message}\n`);
    process.exit(2);
  }
  if (values.out) writeFileSync(values.out, html);
  else process.stdout.write(html);
}
