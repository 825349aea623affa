/**
 * Small inline SVG charts for the HTML report and the live status page: no scripts, no fonts, no
 * external assets, so a page opens anywhere (offline, in a locked-down browser) and a report can be
 * archived as one file.
 */

export function escapeXml(text: string): string {
  return text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;').replace(/'/g, '&#39;');
}

export interface Series {
  name: string;
  color: string;
  values: number[];
}

export interface ChartOptions {
  title: string;
  /** One label per x position (shown on hover, and a few on the axis). */
  labels: string[];
  series: Series[];
  width?: number;
  height?: number;
  yLabel?: string;
  /** Element id; with it the chart also carries `class="chart"` and `data-points` (for pages and tests). */
  id?: string;
  /** Drawn instead of the plot when there is no value at all. */
  emptyLabel?: string;
}

function niceMax(v: number): number {
  if (v <= 0) return 1;
  const p = 10 ** Math.floor(Math.log10(v));
  for (const m of [1, 2, 5, 10]) if (v <= m * p) return m * p;
  return 10 * p;
}

function frame(o: ChartOptions, max: number, plot: { x: number; y: number; w: number; h: number }): string[] {
  const out: string[] = [];
  out.push(`<text x="${plot.x}" y="16" font-size="13" font-family="sans-serif" font-weight="bold">${escapeXml(o.title)}</text>`);
  for (let i = 0; i <= 4; i++) {
    const y = plot.y + plot.h - (plot.h * i) / 4;
    const v = (max * i) / 4;
    out.push(`<line x1="${plot.x}" y1="${y}" x2="${plot.x + plot.w}" y2="${y}" stroke="#ddd"/>`);
    out.push(
      `<text x="${plot.x - 6}" y="${y + 4}" font-size="10" text-anchor="end" font-family="sans-serif">${Number.isInteger(v) ? v : v.toFixed(1)}</text>`,
    );
  }
  if (o.yLabel)
    out.push(
      `<text x="12" y="${plot.y + plot.h / 2}" font-size="10" font-family="sans-serif" transform="rotate(-90 12 ${plot.y + plot.h / 2})" text-anchor="middle">${escapeXml(o.yLabel)}</text>`,
    );
  const legend = o.series.map(
    (s, i) =>
      `<rect x="${plot.x + plot.w - 150}" y="${6 + i * 14}" width="10" height="10" fill="${s.color}"/><text x="${plot.x + plot.w - 136}" y="${15 + i * 14}" font-size="10" font-family="sans-serif">${escapeXml(s.name)}</text>`,
  );
  out.push(...legend);
  return out;
}

function axisLabels(labels: string[], plot: { x: number; y: number; w: number; h: number }, xAt: (i: number) => number): string[] {
  if (labels.length === 0) return [];
  const every = Math.max(1, Math.ceil(labels.length / 6));
  const out: string[] = [];
  for (let i = 0; i < labels.length; i += every) {
    const label = labels[i]!.length > 18 ? `${labels[i]!.slice(0, 17)}…` : labels[i]!;
    out.push(
      `<text x="${xAt(i)}" y="${plot.y + plot.h + 14}" font-size="9" text-anchor="middle" font-family="sans-serif">${escapeXml(label)}</text>`,
    );
  }
  return out;
}

/** Stacked bars, one per label (e.g. drift per segment along the key range). */
export function barChart(o: ChartOptions): string {
  const width = o.width ?? 720;
  const height = o.height ?? 220;
  const plot = { x: 50, y: 30, w: width - 60, h: height - 60 };
  const n = o.labels.length;
  const totals = o.labels.map((_, i) => o.series.reduce((a, s) => a + (s.values[i] ?? 0), 0));
  const max = niceMax(Math.max(0, ...totals));
  const bw = n === 0 ? 0 : plot.w / n;
  const out = frame(o, max, plot);
  for (let i = 0; i < n; i++) {
    let base = plot.y + plot.h;
    for (const s of o.series) {
      const v = s.values[i] ?? 0;
      if (v <= 0) continue;
      const h = (plot.h * v) / max;
      base -= h;
      out.push(
        `<rect x="${(plot.x + i * bw + bw * 0.1).toFixed(2)}" y="${base.toFixed(2)}" width="${Math.max(0.5, bw * 0.8).toFixed(2)}" height="${h.toFixed(2)}" fill="${s.color}"><title>${escapeXml(`${o.labels[i]}: ${s.name} ${v}`)}</title></rect>`,
      );
    }
  }
  out.push(...axisLabels(o.labels, plot, (i) => plot.x + i * bw + bw / 2));
  return `${svgOpen(o, width, height)}${out.join('')}</svg>`;
}

function svgOpen(o: ChartOptions, width: number, height: number): string {
  const points = o.series.reduce((a, s) => a + s.values.length, 0);
  const id = o.id === undefined ? '' : ` class="chart" id="${escapeXml(o.id)}" data-points="${points}"`;
  return `<svg xmlns="http://www.w3.org/2000/svg"${id} width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" role="img" aria-label="${escapeXml(o.title)}">`;
}

/** Lines with points, one per series (e.g. drift per run over time); NaN values are gaps. */
export function lineChart(o: ChartOptions): string {
  const width = o.width ?? 720;
  const height = o.height ?? 220;
  const plot = { x: 50, y: 30, w: width - 60, h: height - 60 };
  const n = o.labels.length;
  if (o.emptyLabel !== undefined && o.series.every((s) => s.values.length === 0)) {
    const title = `<text x="${plot.x}" y="16" font-size="13" font-family="sans-serif" font-weight="bold">${escapeXml(o.title)}</text>`;
    return `${svgOpen(o, width, height)}${title}<text x="${width / 2}" y="${height / 2}" text-anchor="middle" font-size="12" font-family="sans-serif" class="chart-empty">${escapeXml(o.emptyLabel)}</text></svg>`;
  }
  const max = niceMax(Math.max(0, ...o.series.flatMap((s) => s.values.filter(Number.isFinite))));
  const xAt = (i: number): number => (n <= 1 ? plot.x + plot.w / 2 : plot.x + (plot.w * i) / (n - 1));
  const yAt = (v: number): number => plot.y + plot.h - (plot.h * v) / max;
  const out = frame(o, max, plot);
  for (const s of o.series) {
    // A value that is not a finite number (NaN: not measured) is a gap: no point, and the line breaks there.
    let run: string[] = [];
    const flush = () => {
      if (run.length > 1) out.push(`<polyline class="series" fill="none" stroke="${s.color}" stroke-width="2" points="${run.join(' ')}"/>`);
      run = [];
    };
    s.values.forEach((v, i) => {
      if (!Number.isFinite(v)) return flush();
      run.push(`${xAt(i).toFixed(2)},${yAt(v).toFixed(2)}`);
      out.push(
        `<circle cx="${xAt(i).toFixed(2)}" cy="${yAt(v).toFixed(2)}" r="3" fill="${s.color}"><title>${escapeXml(`${o.labels[i]}: ${s.name} ${v}`)}</title></circle>`,
      );
    });
    flush();
  }
  out.push(...axisLabels(o.labels, plot, xAt));
  return `${svgOpen(o, width, height)}${out.join('')}</svg>`;
}
