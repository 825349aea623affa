import { describe, expect, it } from 'vitest';
import type { StatusSnapshot } from '../../../services/status/collect.js';
import { renderStatusPage } from '../../../services/status/page.js';

function snapshot(reverseWindow: StatusSnapshot['reverseWindow']): StatusSnapshot {
  return {
    migration: 'orders-multicurrency',
    generatedAt: '2026-12-07T00:00:00.000Z',
    phases: [{ cohort: '(all)', phase: 'ramp', enteredAt: '2026-12-06T00:00:00.000Z' }],
    flags: null,
    latest: {},
    history: {
      'reverse-window': [
        {
          kind: 'reverse-window',
          passed: false,
          summary: 'NOT clean',
          value: { confirmedDrift: 3, inFlight: 0, unrepresentable: 1, stream: { confirmedDriftSinceLast: 2 } },
          recordedAt: '2026-12-06T23:59:00.000Z',
        },
      ],
    },
    slot: { name: 'orders_slot', exists: true, active: true, lagBytes: 0, confirmedFlushLsn: '0/1' },
    audit: [],
    reverseWindow,
    verdict: { ok: false, reasons: ['reverse window: NOT clean <drift>'] },
  };
}

describe('status page: the cutover window (issue 23)', () => {
  it('shows the window evidence: slot lag, segment and stream drift, unrepresentable rows, clean-since', () => {
    const html = renderStatusPage(
      snapshot({
        state: 'open',
        openedAt: '2026-12-06T20:00:00.000Z',
        closedAt: null,
        cohorts: [{ cohort: 'eu', state: 'cut-over', changedAt: '2026-12-06T20:00:00.000Z' }],
        applied: { position: '0/16B3F40/3', keys: 1234, at: '2026-12-06T23:59:59.000Z' },
        slot: { name: 'orders_slot_reverse', lagBytes: 4096 },
        unrepresentable: 1,
        stream: { checked: 900, matched: 890, superseded: 5, skipped: 3, confirmedDrift: 2, inFlight: 7, updatedAt: null },
        evidence: {
          clean: false,
          cleanSince: null,
          recordedAt: '2026-12-06T23:59:00.000Z',
          summary: 'reverse window NOT clean: <b>3</b>',
          segment: { confirmedDrift: 3, inFlight: 0, runId: 42 },
          stream: { confirmedDriftSinceLast: 2, confirmedDrift: 2, inFlight: 7 },
        },
      }),
    );
    expect(html).toContain('<h2>Cutover window</h2>');
    expect(html).toContain('id="reverse-state">open');
    expect(html).toMatch(/id="reverse-verdict" data-clean="false"/);
    expect(html).toMatch(/id="reverse-slot"><b>orders_slot_reverse<\/b> lag 4096 bytes, applied up to 0\/16B3F40\/3 \(1234 keys/);
    expect(html).toMatch(/id="reverse-segment">confirmed drift <b>3<\/b>, in flight 0 \(run 42\)/);
    expect(html).toMatch(/id="reverse-stream">900 keys checked, 890 matched, 5 superseded, <b>2<\/b> confirmed drift, 7 in flight/);
    expect(html).toContain('id="reverse-unrepresentable">1<');
    expect(html).toContain('id="reverse-clean-since">—<');
    // Text from the database is escaped.
    expect(html).toContain('reverse window NOT clean: &lt;b&gt;3&lt;/b&gt;');
    expect(html).not.toContain('<b>3</b> (');
    expect(html).toContain('id="chart-reverse"');
  });

  it('says when no window check was recorded, and shows nothing without a window', () => {
    const none = renderStatusPage(
      snapshot({
        state: 'open',
        openedAt: '2026-12-06T20:00:00.000Z',
        closedAt: null,
        cohorts: [],
        applied: null,
        slot: { name: 's_reverse', lagBytes: null },
        unrepresentable: 0,
        stream: null,
        evidence: null,
      }),
    );
    expect(none).toContain('no window check recorded yet');
    expect(none).toContain('lag unknown (no slot)');
    expect(none).toContain('id="reverse-stream">not run yet');
    expect(renderStatusPage(snapshot(null))).not.toContain('Cutover window');
  });
});
