import { describe, expect, it } from 'vitest';
import { createDualWriter } from '../../../services/client/dual-write.js';
import { DEFAULT_FLAGS } from '../../../services/coordinator/flag-model.js';
import { createMetricsRegistry } from '../../../services/core/metrics.js';

const on = { ...DEFAULT_FLAGS, dualWrite: true };

function recorder() {
  const calls: string[] = [];
  return {
    calls,
    ok:
      (side: string, value = side) =>
      async () => {
        calls.push(side);
        return value;
      },
    fail: (side: string) => async () => {
      calls.push(side);
      throw new Error(`${side} failed`);
    },
  };
}

describe('dual writer', () => {
  it('writes only the authoritative side while the flag is off', async () => {
    const r = recorder();
    const writer = createDualWriter({ flags: () => DEFAULT_FLAGS });
    await expect(writer.write({ old: r.ok('old'), new: r.ok('new') })).resolves.toBe('old');
    expect(r.calls).toEqual(['old']);
  });

  it('writes both, authoritative first, and returns the authoritative result', async () => {
    const r = recorder();
    const writer = createDualWriter({ flags: () => on, authoritative: 'new' });
    await expect(writer.write({ old: r.ok('old'), new: r.ok('new') })).resolves.toBe('new');
    expect(r.calls).toEqual(['new', 'old']);
  });

  it('skips the secondary when the authoritative write fails', async () => {
    const r = recorder();
    const registry = createMetricsRegistry({ defaultMetrics: false });
    const writer = createDualWriter({ flags: () => on, metrics: registry });
    await expect(writer.write({ old: r.fail('old'), new: r.ok('new') })).rejects.toThrow('old failed');
    expect(r.calls).toEqual(['old']);
    expect(await registry.getSingleMetricAsString('parity_client_dual_writes_total')).toMatch(/result="authoritative_failed"} 1/);
  });

  it('reports a failed secondary write without failing the call (or fails it when asked)', async () => {
    const r = recorder();
    const seen: unknown[] = [];
    const writer = createDualWriter({ flags: () => on, onSecondaryError: (err) => seen.push(err) });
    await expect(writer.write({ old: r.ok('old'), new: r.fail('new') })).resolves.toBe('old');
    expect(seen).toHaveLength(1);
    const strict = createDualWriter({ flags: () => on, secondaryErrors: 'throw' });
    await expect(strict.write({ old: r.ok('old'), new: r.fail('new') })).rejects.toThrow('new failed');
    expect(r.calls).toEqual(['old', 'new', 'old', 'new']);
  });
});
