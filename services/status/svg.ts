/**
 * Tiny inline-SVG charts for the status page: no external assets, so the page works offline and
 * in a locked-down browser.
 */

export interface Point {
  x: number;
  y: number;
}

const esc = (s: string) => s.replace(/[&<>"]/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;' })[c] ?? c);

/** A line chart with axes labels; `emptyLabel` is drawn when there are no points. */
export function lineChart(options: { title: string; points: Point[]; xLabel: (x: number) => string; yLabel: (y: number) => string; width?: number; height?: number; color?: string; emptyLabel?: string; id: string }): string {
  const width = options.width ?? 520;
  const height = options.height ?? 180;
  const pad = { left: 56, right: 12, top: 24, bottom: 28 };
  const points = options.points;
  const header = `<svg class="chart" id="${esc(options.id)}" data-points="${points.length}" viewBox="0 0 ${width} ${height}" width="${width}" height="${height}" role="img" aria-label="${esc(options.title)}">`;
  const title = `<text x="${pad.left}" y="16" class="chart-title">${esc(options.title)}</text>`;
  if (points.length === 0) {
    return `${header}${title}<text x="${width / 2}" y="${height / 2}" text-anchor="middle" class="chart-empty">${esc(options.emptyLabel ?? 'no data yet')}</text></svg>`;
  }
  const xs = points.map((p) => p.x);
  const ys = points.map((p) => p.y);
  const [x0, x1] = [Math.min(...xs), Math.max(...xs)];
  const [y0, y1] = [0, Math.max(1, ...ys)];
  const sx = (x: number) => pad.left + ((x - x0) / (x1 - x0 || 1)) * (width - pad.left - pad.right);
  const sy = (y: number) => height - pad.bottom - ((y - y0) / (y1 - y0 || 1)) * (height - pad.top - pad.bottom);
  const path = points.map((p, i) => `${i === 0 ? 'M' : 'L'}${sx(p.x).toFixed(1)},${sy(p.y).toFixed(1)}`).join(' ');
  const dots = points.map((p) => `<circle cx="${sx(p.x).toFixed(1)}" cy="${sy(p.y).toFixed(1)}" r="2.5" fill="${options.color ?? '#2563eb'}"/>`).join('');
  const axes = `<line x1="${pad.left}" y1="${height - pad.bottom}" x2="${width - pad.right}" y2="${height - pad.bottom}" class="axis"/><line x1="${pad.left}" y1="${pad.top}" x2="${pad.left}" y2="${height - pad.bottom}" class="axis"/>`;
  const labels = [
    `<text x="${pad.left - 6}" y="${sy(y1) + 4}" text-anchor="end" class="tick">${esc(options.yLabel(y1))}</text>`,
    `<text x="${pad.left - 6}" y="${sy(0) + 4}" text-anchor="end" class="tick">${esc(options.yLabel(0))}</text>`,
    `<text x="${pad.left}" y="${height - 8}" class="tick">${esc(options.xLabel(x0))}</text>`,
    `<text x="${width - pad.right}" y="${height - 8}" text-anchor="end" class="tick">${esc(options.xLabel(x1))}</text>`,
  ].join('');
  return `${header}${title}${axes}${labels}<path d="${path}" fill="none" stroke="${options.color ?? '#2563eb'}" stroke-width="2" class="series"/>${dots}</svg>`;
}

export { esc as escapeHtml };
