/**
 * The status page: one self-contained HTML document (inline CSS and SVG, no scripts from anywhere
 * else) that refreshes itself. Every value comes from `collectStatus`.
 */
import { PHASES } from '../coordinator/phases.js';
import type { StatusSnapshot } from './collect.js';
import { escapeXml as esc, lineChart } from '../core/svg-chart.js';

const time = (ms: number) => new Date(ms).toISOString().slice(11, 19);

function num(value: unknown): number | undefined {
  const n = typeof value === 'string' ? Number(value) : value;
  return typeof n === 'number' && Number.isFinite(n) ? n : undefined;
}

/** The cutover window (issue 23): live state, and the latest window check's evidence. */
function reverseWindowSection(s: StatusSnapshot): string {
  const w = s.reverseWindow;
  if (!w) return '';
  const e = w.evidence;
  const cohorts = w.cohorts.map((c) => `${esc(c.cohort)} ${esc(c.state)}`).join(', ') || 'none';
  const stream = w.stream
    ? `${w.stream.checked} keys checked, ${w.stream.matched} matched, ${w.stream.superseded} superseded, <b>${w.stream.confirmedDrift}</b> confirmed drift, ${w.stream.inFlight} in flight`
    : 'not run yet';
  const verdict = !e
    ? '<td class="state">—</td><td>no window check recorded yet (parity reverse-sync check, or reverse-sync run --verify-every)</td>'
    : `<td class="state">${e.clean ? 'clean' : 'NOT clean'}</td><td>${esc(e.summary)} (${esc(e.recordedAt)})</td>`;
  const rows = [
    `<tr class="gate ${!e ? 'missing' : e.clean ? 'pass' : 'fail'}" id="reverse-verdict" data-clean="${e ? String(e.clean) : ''}"><th>latest check</th>${verdict}</tr>`,
    `<tr><th>clean since</th><td colspan="2" id="reverse-clean-since">${esc(e?.cleanSince ?? '—')}</td></tr>`,
    `<tr><th>cohorts</th><td colspan="2">${cohorts}</td></tr>`,
    `<tr><th>reverse slot</th><td colspan="2" id="reverse-slot"><b>${esc(w.slot.name)}</b> lag ${w.slot.lagBytes === null ? 'unknown (no slot)' : `${w.slot.lagBytes} bytes`}${w.applied ? `, applied up to ${esc(w.applied.position)} (${w.applied.keys} keys${w.applied.at ? `, at ${esc(w.applied.at)}` : ''})` : ''}</td></tr>`,
    `<tr><th>segment verification</th><td colspan="2" id="reverse-segment">${e ? `confirmed drift <b>${e.segment.confirmedDrift}</b>, in flight ${e.segment.inFlight}${e.segment.runId === null ? '' : ` (run ${e.segment.runId})`}` : '—'}</td></tr>`,
    `<tr><th>stream check</th><td colspan="2" id="reverse-stream">${stream}${e?.stream ? `; ${e.stream.confirmedDriftSinceLast} confirmed since the check before the latest` : ''}</td></tr>`,
    `<tr><th>unrepresentable rows</th><td colspan="2" id="reverse-unrepresentable">${w.unrepresentable}</td></tr>`,
  ].join('');
  const history = s.history['reverse-window'] ?? [];
  const chart = lineChart({
    id: 'chart-reverse',
    title: 'reverse window: old-side drift per window check',
    labels: history.map((h) => time(Date.parse(h.recordedAt))),
    series: [
      { name: 'segment confirmed', color: '#dc2626', values: history.map((h) => num(h.value.confirmedDrift) ?? 0) },
      {
        name: 'stream confirmed',
        color: '#d97706',
        values: history.map((h) => num((h.value.stream as Record<string, unknown> | null)?.confirmedDriftSinceLast) ?? 0),
      },
      { name: 'unrepresentable', color: '#6b7280', values: history.map((h) => num(h.value.unrepresentable) ?? 0) },
    ],
    width: 520,
    height: 180,
    emptyLabel: 'no window check yet',
  });
  return `<h2>Cutover window</h2><p class="muted">window <b id="reverse-state">${esc(w.state)}</b> since ${esc(w.openedAt)}${w.closedAt ? `, closed ${esc(w.closedAt)}` : ''}</p><table id="reverse-window">${rows}</table><div class="charts">${chart}</div>`;
}

export function renderStatusPage(s: StatusSnapshot, refreshSeconds = 5): string {
  const phaseCells = s.phases
    .map((p) => {
      const steps = PHASES.map((name) => {
        const state =
          PHASES.indexOf(name) < PHASES.indexOf(p.phase as (typeof PHASES)[number]) ? 'done' : name === p.phase ? 'current' : 'todo';
        return `<li class="phase ${state}">${esc(name)}</li>`;
      }).join('');
      return `<tr><th>${esc(p.cohort)}</th><td><ol class="phases" data-cohort="${esc(p.cohort)}" data-phase="${esc(p.phase)}">${steps}</ol></td><td>${esc(p.enteredAt)}</td></tr>`;
    })
    .join('');
  const gateRows = (['backfill', 'verify', 'reconcile', 'compat', 'cache-inspect', 'repair'] as const)
    .map((kind) => {
      const e = s.latest[kind];
      if (!e) return `<tr class="gate missing"><th>${kind}</th><td class="state">—</td><td>no evidence recorded yet</td><td></td></tr>`;
      return `<tr class="gate ${e.passed ? 'pass' : 'fail'}"><th>${kind}</th><td class="state">${e.passed ? 'pass' : 'FAIL'}</td><td>${esc(e.summary)}</td><td>${esc(e.recordedAt)}</td></tr>`;
    })
    .join('');
  const verify = s.history.verify ?? [];
  const driftChart = lineChart({
    id: 'chart-drift',
    title: 'confirmed drift per verification run',
    labels: verify.map((e) => time(Date.parse(e.recordedAt))),
    series: [{ name: 'confirmed drift', color: '#dc2626', values: verify.map((e) => num(e.value.confirmedDrift) ?? 0) }],
    width: 520,
    height: 180,
    emptyLabel: 'no verification run yet',
  });
  const backfill = s.history.backfill ?? [];
  const backfillChart = lineChart({
    id: 'chart-backfill',
    title: 'backfill rows written',
    labels: backfill.map((e) => time(Date.parse(e.recordedAt))),
    series: [{ name: 'rows', color: '#2563eb', values: backfill.map((e) => num(e.value.rows) ?? 0) }],
    width: 520,
    height: 180,
    emptyLabel: 'no backfill run yet',
  });
  const flags = s.flags
    ? `<table class="flags"><tr><th>dual-write</th><td>${s.flags.flags.dualWrite ? 'on' : 'off'}</td></tr><tr><th>read path</th><td>${esc(s.flags.flags.read)} ${s.flags.flags.readPercent}%</td></tr><tr><th>kill switches</th><td>backfill ${s.flags.flags.killBackfill ? 'ON' : 'off'}, repair ${s.flags.flags.killRepair ? 'ON' : 'off'}</td></tr></table>`
    : `<p class="muted">flags unavailable${s.flagsError ? `: ${esc(s.flagsError)}` : ''}</p>`;
  const slot = s.slot.exists
    ? `slot <b>${esc(s.slot.name)}</b> ${s.slot.active ? 'active' : 'inactive'}, lag ${s.slot.lagBytes ?? '?'} bytes, confirmed ${esc(String(s.slot.confirmedFlushLsn ?? '-'))}`
    : `slot <b>${esc(s.slot.name)}</b> does not exist`;
  const reverse = reverseWindowSection(s);
  const audit = s.audit
    .map(
      (a) =>
        `<tr><td>${esc(a.at)}</td><td>${esc(a.cohort)}</td><td>${esc(a.action)}</td><td>${esc(a.from ?? '')} → ${esc(a.to ?? '')}</td><td>${esc(a.actor)}</td><td>${esc(a.reason)}</td></tr>`,
    )
    .join('');
  const verdict = s.verdict.ok
    ? `<div id="verdict" class="verdict ok" data-ok="true">All recorded checks pass</div>`
    : `<div id="verdict" class="verdict bad" data-ok="false">Not ready: ${s.verdict.reasons.map(esc).join('; ')}</div>`;
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta http-equiv="refresh" content="${refreshSeconds}">
<title>parity · ${esc(s.migration)}</title>
<style>
body{font:14px/1.4 system-ui,sans-serif;margin:24px;color:#111}h1{font-size:20px;margin:0 0 4px}h2{font-size:15px;margin:20px 0 6px}
table{border-collapse:collapse}th,td{padding:4px 8px;text-align:left;border-bottom:1px solid #e5e7eb;vertical-align:top}
.verdict{padding:10px 12px;border-radius:6px;font-weight:600}.ok{background:#dcfce7;color:#166534}.bad{background:#fee2e2;color:#991b1b}
ol.phases{display:flex;gap:4px;list-style:none;margin:0;padding:0}.phase{padding:2px 8px;border-radius:10px;background:#f3f4f6;color:#6b7280}
.phase.done{background:#dbeafe;color:#1e40af}.phase.current{background:#1d4ed8;color:#fff;font-weight:600}
.gate.pass .state{color:#166534;font-weight:600}.gate.fail .state{color:#991b1b;font-weight:600}.muted,.gate.missing{color:#6b7280}
.charts{display:flex;flex-wrap:wrap;gap:16px}.chart{border:1px solid #e5e7eb;border-radius:6px;background:#fff}
.chart-title{font-size:12px;font-weight:600}.tick{font-size:10px;fill:#6b7280}.axis{stroke:#9ca3af}.chart-empty{fill:#9ca3af;font-size:12px}
</style></head><body>
<h1>parity · ${esc(s.migration)}</h1><p class="muted">updated ${esc(s.generatedAt)}, refreshes every ${refreshSeconds}s · <a href="/api/status">JSON</a> · <a href="/metrics">metrics</a></p>
${verdict}
<h2>Phases</h2><table><tr><th>cohort</th><th>phase</th><th>since</th></tr>${phaseCells}</table>
<h2>Gates (latest evidence)</h2><table><tr><th>check</th><th></th><th>summary</th><th>recorded</th></tr>${gateRows}</table>
<h2>Flags</h2>${flags}
<h2>CDC</h2><p id="slot">${slot}</p>
${reverse}
<h2>Trends</h2><div class="charts">${driftChart}${backfillChart}</div>
<h2>Audit</h2><table><tr><th>at</th><th>cohort</th><th>action</th><th>phase</th><th>who</th><th>why</th></tr>${audit}</table>
</body></html>`;
}
