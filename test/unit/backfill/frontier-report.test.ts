import { describe, expect, it } from 'vitest';
import { type FrontierResult, lastJsonLine, renderFrontierHtml } from '../../bench/frontier-report.js';

const result: FrontierResult = {
  frontier: [
    {
      setting: '4MiB/s',
      rows_per_s: 20_000,
      oltp_p99_ms: 2.5,
      oltp_p99_ratio: 1.4,
      oltp_samples: 4_000,
      wal_bytes_per_row: 240,
      oltp_p99_ratio_own_idle: { ratio: 1.3, ci90: [1.1, 1.6], pairs: 8, verdict: 'undecided' },
    },
    { setting: 'default', rows_per_s: 5_000, oltp_p99_ms: 1.9, oltp_p99_ratio: 1.05, oltp_samples: 3_900, wal_bytes_per_row: 260 },
    {
      setting: 'off<script>',
      rows_per_s: 300_000,
      oltp_p99_ms: 40,
      oltp_p99_ratio: 27,
      oltp_samples: 200,
      wal_bytes_per_row: null,
      oltp_p99_ratio_own_idle: { ratio: null, ci90: null, pairs: 0, verdict: 'undecided' },
    },
  ],
  rows_per_s: 250_000,
  rows_per_s_at_1_2x: 5_000,
  rows_per_s_at_1_2x_setting: 'default',
  rows_per_s_within_1_2x_shown: null,
  rows_per_s_within_1_2x_shown_setting: null,
  oltp_p99_ms_baseline: 1.8,
  disturbed: true,
  load_alone_p99_ms_by_window: { median: 2, max: 9, windows: 20 },
  idle_commit_ms: { before: { p50: 0.4, p99: 1.2 }, after: { p50: 0.5, p99: 1.4 } },
  target_oltp_p99_ratio: 1.2,
};

describe('the frontier page (bench:backfill --report)', () => {
  const html = renderFrontierHtml(result);

  it('charts every setting in order of rows/s, with the limit', () => {
    expect(html).toContain('id="frontier-ratio"');
    expect(html).toContain('id="frontier-rows"');
    const rows = html.indexOf('default 5.0k');
    expect(rows).toBeGreaterThan(0);
    expect(html.indexOf('4MiB/s 20.0k')).toBeGreaterThan(rows);
    expect(html).toContain('limit 1.2x');
  });

  it('draws a ratio over the clip at the clip, and gives the real one in the table', () => {
    expect(html).toContain('vs the load-alone baseline 4</title>');
    expect(html).toContain('<td>27.00</td>');
  });

  it('gives the interval and verdict, a dash where a run has none, and escapes names', () => {
    expect(html).toContain('<td>1.10-1.60</td><td>8</td><td>undecided</td>');
    expect(html).not.toContain('off<script>');
    expect(html).toContain('off&lt;script&gt;');
    expect(html).toContain('DISTURBED');
  });
});

describe('lastJsonLine', () => {
  it('takes the last non-empty line', () => {
    expect(lastJsonLine(`noise\n${JSON.stringify(result)}\n\n`).rows_per_s).toBe(250_000);
  });

  it('says what to give when the file is not a bench:backfill result', () => {
    expect(() => lastJsonLine('')).toThrow(/saved stdout of a bench:backfill run/);
    expect(() => lastJsonLine('{"events_per_s": 1}')).toThrow(/no `frontier`/);
    expect(() => lastJsonLine('[bench:backfill] loading')).toThrow(/not JSON.*not its stderr/);
  });
});
