import { describe, expect, it } from 'vitest';
import { DEFAULT_FLAGS, effectiveFlags, flagsToAssignments, parseFlagAssignments } from '../../../services/coordinator/flag-model.js';
import { PHASES, earliest, nextPhase, previousPhase, rollbackFlags, routingViolations } from '../../../services/coordinator/phases.js';
import { isParityError } from '../../../services/core/errors.js';

describe('flag model', () => {
  it('has safe defaults: dual-write off, read old at 0%, kill switches off', () => {
    expect(DEFAULT_FLAGS).toEqual({ dualWrite: false, read: 'old', readPercent: 0, write: 'old', killBackfill: false, killRepair: false });
  });

  it('parses and normalizes NAME=VALUE assignments', () => {
    expect(parseFlagAssignments(['dual-write=true', 'read=DARK', 'read-percent=10%', 'kill-repair=off'])).toEqual([
      ['dual-write', 'on'],
      ['read', 'dark'],
      ['read-percent', '10'],
      ['kill-repair', 'off'],
    ]);
  });

  it.each([['read=newest'], ['read-percent=101'], ['read-percent=-1'], ['dual-write=maybe'], ['colour=red'], ['read'], []])(
    'refuses %j with PARITY_BAD_INPUT',
    (...args) => {
      try {
        parseFlagAssignments(args.filter((a): a is string => typeof a === 'string'));
        expect.unreachable();
      } catch (err) {
        expect(isParityError(err, 'PARITY_BAD_INPUT')).toBe(true);
      }
    },
  );

  it('layers cohort overrides over migration-wide values over defaults, ignoring invalid stored values', () => {
    const e = effectiveFlags({ 'dual-write': 'on', read: 'dark', 'read-percent': '10' }, { read: 'new', 'read-percent': 'lots' });
    expect(e.flags).toEqual({ dualWrite: true, read: 'new', readPercent: 10, write: 'old', killBackfill: false, killRepair: false });
    expect(e.sources).toMatchObject({ dualWrite: 'migration', read: 'cohort', readPercent: 'migration', killBackfill: 'default' });
    expect(e.invalid).toEqual(['cohort:read-percent=lots']);
    expect(flagsToAssignments({ dualWrite: false, read: 'old', readPercent: 0 })).toEqual([
      ['dual-write', 'off'],
      ['read', 'old'],
      ['read-percent', '0'],
    ]);
  });
});

describe('phases', () => {
  it('go expand -> dual-write -> backfill -> verify -> dark-reads -> ramp -> enforce -> contract', () => {
    expect(PHASES).toEqual(['expand', 'dual-write', 'backfill', 'verify', 'dark-reads', 'ramp', 'enforce', 'contract']);
    expect(nextPhase('contract')).toBeNull();
    expect(previousPhase('expand')).toBeNull();
    expect(earliest(['ramp', 'backfill', 'contract'])).toBe('backfill');
  });

  it('allow routing only as far as the phase', () => {
    const flags = { ...DEFAULT_FLAGS, dualWrite: true, read: 'new' as const, readPercent: 10 };
    expect(routingViolations('expand', flags).map((v) => v.flag)).toEqual(['dual-write=on', 'read=new']);
    expect(routingViolations('dark-reads', flags)).toEqual([{ flag: 'read=new', needs: 'ramp' }]);
    expect(routingViolations('ramp', flags)).toEqual([]);
    // A path at 0% routes nothing.
    expect(routingViolations('backfill', { ...flags, readPercent: 0 })).toEqual([]);
  });

  it('roll routing back with the phase, never kill switches', () => {
    const live = { ...DEFAULT_FLAGS, dualWrite: true, read: 'new' as const, readPercent: 100, killRepair: true };
    expect(rollbackFlags('ramp', live)).toEqual({});
    expect(rollbackFlags('dark-reads', live)).toEqual({ read: 'dark' });
    expect(rollbackFlags('verify', live)).toEqual({ read: 'old', readPercent: 0 });
    expect(rollbackFlags('expand', live)).toEqual({ dualWrite: false, read: 'old', readPercent: 0 });
  });
});

describe('lock settings', () => {
  it('need renewals at most every TTL/3 and a margin that leaves room for a renewal', async () => {
    const { validateLockSettings } = await import('../../../services/coordinator/lock.js');
    expect(() => validateLockSettings({ ttlMs: 15_000, renewEveryMs: 5_000, driftMarginMs: 1_000 })).not.toThrow();
    expect(() => validateLockSettings({ ttlMs: 15_000, renewEveryMs: 6_000, driftMarginMs: 1_000 })).toThrow(/at most a third/);
    expect(() => validateLockSettings({ ttlMs: 3_000, renewEveryMs: 1_000, driftMarginMs: 2_500 })).toThrow(/before its first renewal/);
  });
});
