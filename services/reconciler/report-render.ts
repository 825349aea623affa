/**
 * Renders a verification report as JSON (for machines), Markdown (for tickets and pull requests)
 * or one self-contained HTML page with inline SVG charts (for people). Everything printed passes
 * through `redact`: no secret can leak through a key or a value.
 */
import { redact } from '../core/secrets.js';
import type { ReportModel } from './report.js';
import { barChart, escapeXml, lineChart } from '../core/svg-chart.js';

export type ReportFormat = 'json' | 'md' | 'html';

export const REPORT_FORMATS: readonly ReportFormat[] = ['json', 'md', 'html'];

function keyText(k: string[] | null, open: 'lo' | 'hi'): string {
  if (k === null) return open === 'lo' ? '−∞' : '+∞';
  return k.length === 1 ? k[0]! : `(${k.join(', ')})`;
}

function valuesText(v: Record<string, string | null> | null): string {
  if (v === null) return '(no row)';
  return Object.entries(v)
    .map(([c, x]) => `${c}=${x === null ? 'NULL' : JSON.stringify(x)}`)
    .join(', ');
}

export function renderJson(r: ReportModel): string {
  return `${redact(JSON.stringify(r, null, 2))}\n`;
}

/**
 * Text from the database or the spec inside a Markdown table cell: HTML is escaped (a value such as
 * `<img onerror=...>` would otherwise be raw HTML in every Markdown renderer), as are backslashes,
 * backticks, `|` and line breaks, which would end the cell, the row or a code span.
 */
export function mdCell(s: string): string {
  return s
    .replace(/&/g, '&amp;')
    .replace(/</g, '&lt;')
    .replace(/>/g, '&gt;')
    .replace(/`/g, '&#96;')
    .replace(/\\/g, '\\\\')
    .replace(/\|/g, '\\|')
    .replace(/\r\n|\r|\n/g, ' ');
}

export function renderMarkdown(r: ReportModel): string {
  const L: string[] = [];
  L.push(`# Verification report: ${mdCell(r.migration)}`);
  L.push('');
  L.push(`**Verdict: ${r.verdict.passed ? 'PASS' : 'FAIL'}** (${mdCell(r.verdict.text)})`);
  L.push('');
  L.push(
    `Run ${r.run.id}, ${r.run.startedAt} to ${r.run.finishedAt ?? '(unfinished)'}; parity ${r.tool.version}; config hash \`${r.configHash}\`${r.runConfigHash !== r.configHash ? ` (the run used \`${r.runConfigHash}\`: the spec changed since)` : ''}.`,
  );
  L.push('');
  L.push('| | source (old, mapped) | target (new) |');
  L.push('|---|---|---|');
  L.push(`| database | ${mdCell(r.source.database)} | ${mdCell(r.target.database)} |`);
  L.push(`| table | ${mdCell(r.source.table)} | ${mdCell(r.target.table)} |`);
  L.push(`| rows | ${r.source.rows} | ${r.target.rows} |`);
  L.push(`| exclusive rows (confirmed) | ${r.source.exclusive} | ${r.target.exclusive} |`);
  L.push(
    `| snapshot positions | ${r.source.snapshotPositions.min ?? '-'} .. ${r.source.snapshotPositions.max ?? '-'} | ${r.target.snapshotPositions.min ?? '-'} .. ${r.target.snapshotPositions.max ?? '-'} |`,
  );
  L.push('');
  L.push('| figure | value |');
  L.push('|---|---|');
  L.push(`| unchanged rows | ${r.unchanged} |`);
  L.push(`| updated rows (confirmed) | ${r.updated} |`);
  L.push(`| confirmed drift (rows) | ${r.confirmedDrift} |`);
  L.push(`| in flight (rows) | ${r.inFlight} |`);
  L.push(`| in flight (unsettled) (keys) | ${r.inFlightUnsettled} |`);
  L.push(`| resolved on recheck (keys) | ${r.resolvedOnRecheck} |`);
  L.push(
    `| repairs | ${
      Object.entries(r.repairs)
        .map(([k, n]) => `${k} ${n}`)
        .join(', ') || 'none'
    } |`,
  );
  L.push('');
  L.push(`## Sample keys (at most ${r.samples.limit})`);
  L.push('');
  if (r.samples.keys.length === 0) L.push('None.');
  else {
    L.push('| key | status | kind | expected (old, mapped) | actual (new) |');
    L.push('|---|---|---|---|---|');
    for (const s of r.samples.keys)
      L.push(
        `| ${mdCell(keyText(s.key, 'lo'))} | ${s.status} | ${s.kind} | ${mdCell(valuesText(s.expected))} | ${mdCell(valuesText(s.actual))} |`,
      );
  }
  L.push('');
  L.push('## Thresholds');
  L.push('');
  L.push('```json');
  L.push(JSON.stringify(r.thresholds, null, 2));
  L.push('```');
  L.push('');
  if (r.reverseWindow) {
    const w = r.reverseWindow;
    const c = w.latest;
    L.push('## Reverse window');
    L.push('');
    L.push(
      `Latest window check ${c.recordedAt}: **${c.clean ? 'clean' : 'NOT clean'}**${c.cleanSince ? ` since ${c.cleanSince}` : ''}; the contract gate requires ${w.requiredCleanMinutes} min clean.`,
    );
    L.push('');
    L.push('| figure | value |');
    L.push('|---|---|');
    L.push(
      `| segment verification: confirmed drift / in flight (rows) | ${c.segment.confirmedDrift} / ${c.segment.inFlight}${c.segment.runId === null ? '' : ` (run ${c.segment.runId})`} |`,
    );
    L.push(
      `| stream check: confirmed drift since the previous check / in all / in flight (keys) | ${c.stream ? `${c.stream.confirmedDriftSinceLast} / ${c.stream.confirmedDrift} / ${c.stream.inFlight} (${c.stream.checked} keys checked)` : 'not run'} |`,
    );
    L.push(`| unrepresentable rows | ${c.unrepresentable} |`);
    L.push(`| reverse slot lag (bytes) | ${c.lagBytes ?? 'unknown (no slot)'} |`);
    L.push('');
    L.push(`${w.history.length} window checks recorded; ${w.history.filter((h) => !h.clean).length} not clean.`);
    L.push('');
  }
  L.push('## Segments');
  L.push('');
  L.push('| # | from | to | source rows | target rows | source sums | target sums | equal | confirmed drift |');
  L.push('|---|---|---|---|---|---|---|---|---|');
  for (const s of r.segments) {
    L.push(
      `| ${s.no} | ${mdCell(keyText(s.lo, 'lo'))} | ${mdCell(keyText(s.hi, 'hi'))} | ${s.source.rows} | ${s.target.rows} | ${s.source.sum1} / ${s.source.sum2} | ${s.target.sum1} / ${s.target.sum2} | ${s.checksumsEqual ? 'yes' : 'no'} | ${s.confirmedDrift} |`,
    );
  }
  L.push('');
  return redact(`${L.join('\n')}\n`);
}

export function renderHtml(r: ReportModel): string {
  const e = escapeXml;
  const rangeChart = barChart({
    title: 'Drift over the key range (per segment)',
    labels: r.segments.map((s) => `#${s.no} ${keyText(s.lo, 'lo')} .. ${keyText(s.hi, 'hi')}`),
    series: [
      { name: 'confirmed drift (rows)', color: '#c0392b', values: r.segments.map((s) => s.confirmedDrift) },
      { name: 'differed at first look', color: '#f0b27a', values: r.segments.map((s) => Math.max(0, s.differingKeys - s.confirmedDrift)) },
    ],
    yLabel: 'rows',
  });
  const timeChart = lineChart({
    title: 'Drift over time (per finished run)',
    labels: r.history.map((h) => `${h.finishedAt.replace('T', ' ').slice(0, 19)} (run ${h.runId})`),
    series: [
      { name: 'confirmed drift', color: '#c0392b', values: r.history.map((h) => h.confirmedDrift) },
      { name: 'in flight', color: '#2e86c1', values: r.history.map((h) => h.inFlight) },
    ],
    yLabel: 'rows',
  });
  const row = (cells: string[], tag = 'td'): string => `<tr>${cells.map((c) => `<${tag}>${c}</${tag}>`).join('')}</tr>`;
  const samples = r.samples.keys.length
    ? `<table><thead>${row(['key', 'status', 'kind', 'expected (old, mapped)', 'actual (new)', 'why'], 'th')}</thead><tbody>${r.samples.keys
        .map((s) =>
          row([e(keyText(s.key, 'lo')), e(s.status), e(s.kind), e(valuesText(s.expected)), e(valuesText(s.actual)), e(s.reason ?? '')]),
        )
        .join('')}</tbody></table>`
    : '<p>None.</p>';
  const segments = `<table><thead>${row(['#', 'from', 'to', 'source rows', 'target rows', 'source sums', 'target sums', 'equal', 'confirmed drift'], 'th')}</thead><tbody>${r.segments
    .map((s) =>
      row([
        String(s.no),
        e(keyText(s.lo, 'lo')),
        e(keyText(s.hi, 'hi')),
        String(s.source.rows),
        String(s.target.rows),
        `<code>${e(s.source.sum1)}<br>${e(s.source.sum2)}</code>`,
        `<code>${e(s.target.sum1)}<br>${e(s.target.sum2)}</code>`,
        s.checksumsEqual ? 'yes' : '<b>no</b>',
        String(s.confirmedDrift),
      ]),
    )
    .join('')}</tbody></table>`;
  const reverse = r.reverseWindow
    ? (() => {
        const w = r.reverseWindow;
        const c = w.latest;
        const chart = lineChart({
          title: 'Reverse window: old-side drift per window check',
          labels: w.history.map((h) => h.recordedAt.replace('T', ' ').slice(0, 19)),
          series: [
            { name: 'segment confirmed drift', color: '#c0392b', values: w.history.map((h) => h.segment.confirmedDrift) },
            { name: 'stream confirmed drift', color: '#d68910', values: w.history.map((h) => h.stream?.confirmedDriftSinceLast ?? 0) },
            { name: 'unrepresentable', color: '#7f8c8d', values: w.history.map((h) => h.unrepresentable) },
          ],
          yLabel: 'rows',
        });
        return `<h2 id="reverse-window">Reverse window</h2>
<p class="${c.clean ? 'pass' : 'fail'}">Latest window check ${e(c.recordedAt)}: <b>${c.clean ? 'clean' : 'NOT clean'}</b>${c.cleanSince ? ` since ${e(c.cleanSince)}` : ''}; the contract gate requires ${w.requiredCleanMinutes} min clean.</p>
<table class="figures">
${row(['segment verification: confirmed drift / in flight (rows)', `${c.segment.confirmedDrift} / ${c.segment.inFlight}${c.segment.runId === null ? '' : ` (run ${c.segment.runId})`}`])}
${row(['stream check: confirmed drift since the previous check / in all / in flight (keys)', c.stream ? `${c.stream.confirmedDriftSinceLast} / ${c.stream.confirmedDrift} / ${c.stream.inFlight} (${c.stream.checked} keys checked)` : 'not run'])}
${row(['unrepresentable rows', String(c.unrepresentable)])}
${row(['reverse slot lag (bytes)', c.lagBytes === null ? 'unknown (no slot)' : String(c.lagBytes)])}
</table>
<div>${chart}</div>`;
      })()
    : '';
  const html = `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>parity verification: ${e(r.migration)}</title>
<style>
body{font-family:system-ui,sans-serif;margin:2em;color:#222;max-width:1100px}
table{border-collapse:collapse;margin:1em 0;font-size:13px}td,th{border:1px solid #ccc;padding:4px 8px;text-align:left;vertical-align:top}
th{background:#f4f4f4}.pass{color:#1e8449}.fail{color:#c0392b}code{font-size:11px}
.figures td:nth-child(2){text-align:right;font-variant-numeric:tabular-nums}
</style></head><body>
<h1>Verification report: ${e(r.migration)}</h1>
<p class="${r.verdict.passed ? 'pass' : 'fail'}"><b>Verdict: ${r.verdict.passed ? 'PASS' : 'FAIL'}</b>: ${e(r.verdict.text)}</p>
<p>Run ${r.run.id}, ${e(r.run.startedAt)} to ${e(r.run.finishedAt ?? '(unfinished)')}; parity ${e(r.tool.version)}; config hash <code>${e(r.configHash)}</code>${
    r.runConfigHash !== r.configHash ? ` (the run used <code>${e(r.runConfigHash)}</code>: the spec changed since)` : ''
  }; generated ${e(r.generatedAt)}.</p>
<table>${row(['', 'source (old, mapped)', 'target (new)'], 'th')}
${row(['database', e(r.source.database), e(r.target.database)])}
${row(['table', e(r.source.table), e(r.target.table)])}
${row(['rows', String(r.source.rows), String(r.target.rows)])}
${row(['exclusive rows (confirmed)', String(r.source.exclusive), String(r.target.exclusive)])}
${row(['snapshot positions', e(`${r.source.snapshotPositions.min ?? '-'} .. ${r.source.snapshotPositions.max ?? '-'}`), e(`${r.target.snapshotPositions.min ?? '-'} .. ${r.target.snapshotPositions.max ?? '-'}`)])}
</table>
<table class="figures">
${row(['unchanged rows', String(r.unchanged)])}
${row(['updated rows (confirmed)', String(r.updated)])}
${row(['confirmed drift (rows)', String(r.confirmedDrift)])}
${row(['in flight (rows)', String(r.inFlight)])}
${row(['in flight (unsettled) (keys)', String(r.inFlightUnsettled)])}
${row(['resolved on recheck (keys)', String(r.resolvedOnRecheck)])}
${row([
  'repairs',
  e(
    Object.entries(r.repairs)
      .map(([k, n]) => `${k} ${n}`)
      .join(', ') || 'none',
  ),
])}
</table>
<div>${rangeChart}</div>
<div>${timeChart}</div>
${reverse}
<h2>Sample keys (at most ${r.samples.limit})</h2>
${samples}
<h2>Thresholds</h2>
<pre>${e(JSON.stringify(r.thresholds, null, 2))}</pre>
<h2>Segments</h2>
${segments}
</body></html>
`;
  return redact(html);
}

export function renderReport(r: ReportModel, format: ReportFormat): string {
  return format === 'json' ? renderJson(r) : format === 'md' ? renderMarkdown(r) : renderHtml(r);
}
