import { describe, expect, it } from 'vitest';
import { SignalReader } from '../../../services/backfill/throttle-signals.js';
import { evaluateThrottle } from '../../../services/backfill/throttle.js';

describe('the HTTP probe as printed (17.5)', () => {
  it('shows the probe URL without its credentials or query string', () => {
    // Port 9 (discard) on localhost: nothing answers; only the printed form matters here.
    const reader = new SignalReader({
      slot: 's',
      httpProbe: 'http://ops:s3cret-pw@127.0.0.1:9/health?token=abc123&region=eu',
      now: () => 0,
    });
    const http = reader.httpProbe();
    expect(http?.url).toBe('http://[redacted]@127.0.0.1:9/health?[redacted]');
    expect(JSON.stringify(http)).not.toMatch(/s3cret-pw|abc123|region=eu/);
  });
});

// The throttle's reason text is what status tables, /healthz and logs print.
describe('throttle reason text', () => {
  it('carries the shown URL only, also after the probe failed', async () => {
    const reader = new SignalReader({ slot: 's', httpProbe: 'http://u:pw-9876@127.0.0.1:9/ready?key=k-5555', now: () => 0 });
    let http = reader.httpProbe();
    for (let i = 0; i < 100 && http?.error === 'no answer yet'; i++) {
      await new Promise((r) => setTimeout(r, 20));
      http = reader.httpProbe();
    }
    expect(http?.error).not.toBe('no answer yet');
    const detail = evaluateThrottle({ ...(http ? { http } : {}) }, { maxLagSeconds: 1 })
      .findings.map((f) => f.detail)
      .join(' ');
    expect(detail).toMatch(/HTTP probe http:\/\/\[redacted\]@127\.0\.0\.1:9\/ready\?\[redacted\] failed/);
    expect(detail).not.toMatch(/pw-9876|k-5555/);
  });
});
