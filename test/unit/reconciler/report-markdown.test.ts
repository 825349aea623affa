import { describe, expect, it } from 'vitest';
import { mdCell, renderMarkdown } from '../../../services/reconciler/report-render.js';
import type { ReportModel } from '../../../services/reconciler/report.js';

describe('Markdown report escaping (17.5)', () => {
  it('escapes HTML, backticks, backslashes, pipes and line breaks in a cell', () => {
    expect(mdCell('<img src=x onerror=alert(1)>')).toBe('&lt;img src=x onerror=alert(1)&gt;');
    expect(mdCell('a & b')).toBe('a &amp; b');
    expect(mdCell('`code`')).toBe('&#96;code&#96;');
    expect(mdCell('a|b')).toBe('a\\|b');
    // A value ending in a backslash must not escape the cell's own separator.
    expect(mdCell('a\\')).toBe('a\\\\');
    expect(mdCell('one\r\ntwo\nthree')).toBe('one two three');
  });

  it('a database value in a sample row reaches the .md as text, not as raw HTML', () => {
    const report = {
      migration: 'm<1>',
      verdict: { passed: false, text: 'drift <b>found</b>' },
      run: { id: 1, startedAt: 't0', finishedAt: 't1' },
      tool: { version: '0' },
      configHash: 'h',
      runConfigHash: 'h',
      source: { database: 'postgres://u@h/db', table: 'public.a', rows: 1, exclusive: 0, snapshotPositions: { min: null, max: null } },
      target: { database: 'postgres://u@h/db', table: 'public.b', rows: 1, exclusive: 0, snapshotPositions: { min: null, max: null } },
      unchanged: 0,
      updated: 0,
      confirmedDrift: 1,
      inFlight: 0,
      resolvedOnRecheck: 0,
      repairs: {},
      samples: {
        limit: 5,
        keys: [
          {
            key: ['<script>alert(1)</script>'],
            status: 'confirmed',
            kind: 'differs',
            expected: { note: '<iframe src="//evil">' },
            actual: { note: 'x|y\nz' },
          },
        ],
      },
      thresholds: {},
      segments: [],
      history: [],
    } as unknown as ReportModel;
    const md = renderMarkdown(report);
    expect(md).not.toMatch(/<script>|<iframe|<b>|m<1>/);
    expect(md).toContain('&lt;script&gt;alert(1)&lt;/script&gt;');
    // JSON-quoted in the cell: the newline is the two characters \n, its backslash escaped.
    expect(md).toContain('note="x\\|y\\\\nz"');
  });
});
