import { describe, expect, it } from 'vitest';
import { barChart, escapeXml, lineChart } from '../../../services/core/svg-chart.js';

describe('inline SVG charts', () => {
  it('draws one bar per non-zero value and escapes every label', () => {
    const svg = barChart({
      title: 'drift <by> range',
      labels: ['#1 a&b', '#2', '#3'],
      series: [{ name: 'confirmed', color: '#c00', values: [2, 0, 5] }],
    });
    expect(svg.startsWith('<svg xmlns="http://www.w3.org/2000/svg"')).toBe(true);
    expect(svg.match(/<rect [^>]*><title>/g)).toHaveLength(2);
    expect(svg).toContain('drift &lt;by&gt; range');
    expect(svg).toContain('#1 a&amp;b');
    expect(svg).not.toMatch(/<script|href=/);
  });

  it('draws a line with a point per value, even for one value', () => {
    expect(
      lineChart({ title: 't', labels: ['a', 'b', 'c'], series: [{ name: 's', color: '#00c', values: [1, 3, 2] }] }).match(/<circle /g),
    ).toHaveLength(3);
    expect(lineChart({ title: 't', labels: ['a'], series: [{ name: 's', color: '#00c', values: [0] }] })).toContain('<circle ');
    expect(escapeXml(`<a href="x">'`)).toBe('&lt;a href=&quot;x&quot;&gt;&#39;');
  });

  it('leaves a gap for a value not measured (NaN): no point, the line broken in two', () => {
    const svg = lineChart({
      title: 't',
      labels: ['a', 'b', 'c', 'd', 'e'],
      series: [{ name: 's', color: '#00c', values: [1, 2, Number.NaN, 3, 4] }],
    });
    expect(svg.match(/<circle /g)).toHaveLength(4);
    expect(svg.match(/<polyline /g)).toHaveLength(2);
    expect(svg).not.toContain('NaN');
  });
});
