import { describe, expect, it } from 'vitest';
import { createDualWriter } from '../../../services/client/dual-write.js';
import { routeWrite } from '../../../services/client/write-routing.js';
import { DEFAULT_FLAGS, type Flags } from '../../../services/coordinator/flag-model.js';
import { createMetricsRegistry } from '../../../services/core/metrics.js';

const flags = (over: Partial<Flags>): Flags => ({ ...DEFAULT_FLAGS, ...over });

describe('write routing by the write flag (issue 23)', () => {
  it('write=old: the old side, plus the new one while dual-writing, authoritative first', () => {
    expect(routeWrite(flags({ write: 'old' }))).toEqual({ first: 'old', then: null });
    expect(routeWrite(flags({ write: 'old', dualWrite: true }))).toEqual({ first: 'old', then: 'new' });
    expect(routeWrite(flags({ write: 'old', dualWrite: true }), 'new')).toEqual({ first: 'new', then: 'old' });
    // Without dual writes the old side is written even when the new one is the authoritative read side.
    expect(routeWrite(flags({ write: 'old', dualWrite: false }), 'new')).toEqual({ first: 'old', then: null });
  });

  it('write=new: the new side only, whatever dual-write and authoritative say', () => {
    for (const dualWrite of [false, true])
      for (const authoritative of ['old', 'new'] as const)
        expect(routeWrite(flags({ write: 'new', dualWrite }), authoritative)).toEqual({ first: 'new', then: null });
  });
});

describe('the dual writer follows the write flag', () => {
  function recorder() {
    const calls: string[] = [];
    const op = (side: string) => async () => {
      calls.push(side);
      return side;
    };
    return { calls, ops: { old: op('old'), new: op('new') } };
  }

  it('after cutover (write=new) writes only the new side, and a rollback (write=old) moves writes back', async () => {
    let current = flags({ dualWrite: true, write: 'new' });
    const registry = createMetricsRegistry({ defaultMetrics: false });
    const writer = createDualWriter({ flags: () => current, metrics: registry });
    const r = recorder();
    await expect(writer.write(r.ops)).resolves.toBe('new');
    expect(r.calls).toEqual(['new']);
    current = { ...current, write: 'old' };
    await expect(writer.write(r.ops)).resolves.toBe('old');
    expect(r.calls).toEqual(['new', 'old', 'new']);
    const text = await registry.getSingleMetricAsString('parity_client_dual_writes_total');
    expect(text).toMatch(/result="new_only"} 1/);
    expect(text).toMatch(/result="both"} 1/);
  });

  it('write=new: a failing new write fails the call and nothing is written to the old side', async () => {
    const calls: string[] = [];
    const writer = createDualWriter({ flags: () => flags({ dualWrite: true, write: 'new' }), secondaryErrors: 'throw' });
    const failed = writer.write({
      old: async () => calls.push('old'),
      new: async () => {
        calls.push('new');
        throw new Error('new failed');
      },
    });
    await expect(failed).rejects.toThrow('new failed');
    expect(calls).toEqual(['new']);
  });
});
