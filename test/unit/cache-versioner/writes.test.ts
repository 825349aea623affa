import { describe, expect, it } from 'vitest';
import { UNCHANGED_TOAST, type ChangeEnvelope, type Row } from '../../../services/core/change-event.js';
import { encodePosition } from '../../../services/core/lsn.js';
import { cacheSettingsFrom } from '../../../services/cache-versioner/settings.js';
import { applyCall, collapseWrites, mergeWrites, planChange, type EntryWrite } from '../../../services/cache-versioner/writes.js';

const settings = cacheSettingsFrom({
  name: 'm1',
  key: ['id'],
  cache: {
    keys: { v1: 'order:v1:{id}', v2: 'order:v2:{id}' },
    populate: ['v1', 'v2'],
    read: 'v2',
    projection: ['id', 'total_amount_minor', 'currency', 'note'],
    ttlSeconds: 100,
    ttlJitterPct: 10,
    tombstoneTtlSeconds: 30,
    leaseMs: 2000,
  },
});

function envelope(op: ChangeEnvelope['op'], before: Row | null, after: Row | null): ChangeEnvelope {
  return {
    op,
    before,
    after,
    ts_ms: 0,
    source: {
      version: 't',
      connector: 'postgresql',
      name: 't',
      db: 'd',
      schema: 'public',
      table: 'orders',
      lsn: 0,
      txId: 1,
      ts_ms: 1_700_000_000_000,
      ts_us: 1_700_000_000_000_123,
      snapshot: 'false',
      sequence: '',
    },
  };
}

const pos = (lsn: number, ordinal = 0) => ({ commitLsn: BigInt(lsn), ordinal });

describe('planChange', () => {
  it('writes the projection of the after row to every populated version', () => {
    const plan = planChange(
      {
        key: { id: 7 },
        envelope: envelope('u', null, { id: 7, total_amount_minor: '1250', currency: 'USD', note: null, extra: 'x' }),
        position: pos(0x100, 2),
      },
      settings,
      ['v1', 'v2'],
      () => 0.5,
    );
    expect(plan.writes.map((w) => w.entryKey)).toEqual(['order:v1:7', 'order:v2:7']);
    const w = plan.writes[0] as EntryWrite;
    expect(w.mode).toBe('v');
    expect(w.position).toBe(encodePosition(pos(0x100, 2)));
    expect(w.columns).toEqual([
      ['id', '7'],
      ['total_amount_minor', '"1250"'],
      ['currency', '"USD"'],
      ['note', 'null'],
    ]);
    expect(w.ttlMs).toBe(100_000);
    expect(w.commitTimeUs).toBe('1700000000000123');
    expect(w.keyJson).toBe('{"id":7}');
  });

  it('applies TTL jitter within ttlJitterPct either side', () => {
    const low = planChange({ key: null, envelope: envelope('c', null, { id: 1 }), position: pos(1) }, settings, ['v1'], () => 0)
      .writes[0] as EntryWrite;
    const high = planChange({ key: null, envelope: envelope('c', null, { id: 1 }), position: pos(1) }, settings, ['v1'], () => 0.999999)
      .writes[0] as EntryWrite;
    expect(low.ttlMs).toBe(90_000);
    expect(high.ttlMs).toBeGreaterThan(109_990);
    expect(high.ttlMs).toBeLessThanOrEqual(110_000);
  });

  it('writes tombstones with the tombstone TTL for a delete, keyed from the before row', () => {
    const plan = planChange({ key: null, envelope: envelope('d', { id: 9 }, null), position: pos(5) }, settings, ['v1', 'v2']);
    expect(plan.writes.map((w) => [w.entryKey, w.mode, w.ttlMs, w.columns.length])).toEqual([
      ['order:v1:9', 't', 30_000, 0],
      ['order:v2:9', 't', 30_000, 0],
    ]);
  });

  it('tombstones the old key when an update changes the key', () => {
    const plan = planChange(
      { key: { id: 2 }, envelope: envelope('u', { id: 1 }, { id: 2, currency: 'EUR' }), position: pos(5) },
      settings,
      ['v2'],
    );
    expect(plan.writes.map((w) => [w.entryKey, w.mode])).toEqual([
      ['order:v2:1', 't'],
      ['order:v2:2', 'v'],
    ]);
  });

  it('makes a partial write that leaves unchanged TOAST columns out', () => {
    const plan = planChange(
      {
        key: { id: 3 },
        envelope: envelope('u', null, { id: 3, total_amount_minor: '1', currency: 'USD', note: UNCHANGED_TOAST }),
        position: pos(5),
      },
      settings,
      ['v2'],
    );
    const w = plan.writes[0] as EntryWrite;
    expect(w.mode).toBe('p');
    expect(w.columns.map(([c]) => c)).toEqual(['id', 'total_amount_minor', 'currency']);
  });

  it('turns a TRUNCATE into a barrier and no writes', () => {
    const plan = planChange({ key: null, envelope: envelope('t', null, null), position: pos(0x2_0000_0000, 1) }, settings, ['v1', 'v2']);
    expect(plan.writes).toEqual([]);
    expect(plan.barrier).toBe('0000000200000000:0000000001');
  });

  it('refuses a change without key values (it goes to the dead-letter topic)', () => {
    expect(() => planChange({ key: null, envelope: envelope('d', null, null), position: pos(1) }, settings, ['v1'])).toThrow(
      /lacks key column/,
    );
    expect(() => planChange({ key: null, envelope: envelope('c', null, null), position: pos(1) }, settings, ['v1'])).toThrow(
      /no after row/,
    );
  });

  it("stores non-JSON floats as the change events' JSON strings", () => {
    const plan = planChange(
      {
        key: null,
        envelope: envelope('c', null, { id: 1, total_amount_minor: NaN, currency: -0, note: [Infinity, null] }),
        position: pos(1),
      },
      settings,
      ['v1'],
    );
    expect((plan.writes[0] as EntryWrite).columns).toEqual([
      ['id', '1'],
      ['total_amount_minor', '"NaN"'],
      ['currency', '"-0"'],
      ['note', '["Infinity",null]'],
    ]);
  });
});

function write(mode: EntryWrite['mode'], lsn: number, columns: Array<[string, string]> = [], key = 'k'): EntryWrite {
  return { version: 'v1', entryKey: key, mode, position: encodePosition(pos(lsn)), ttlMs: 1, commitTimeUs: '', keyJson: '{}', columns };
}

describe('collapseWrites', () => {
  it('keeps the newest full write of a key whatever the arrival order', () => {
    expect(collapseWrites([write('v', 3, [['a', '3']]), write('v', 1, [['a', '1']]), write('t', 2)])).toEqual([
      write('v', 3, [['a', '3']]),
    ]);
  });

  it('merges a partial write over an older value so the unchanged column keeps the older value', () => {
    const merged = mergeWrites(
      write('v', 1, [
        ['a', '1'],
        ['toast', '"big"'],
      ]),
      write('p', 2, [['a', '2']]),
    );
    expect(merged?.mode).toBe('v');
    expect(merged?.position).toBe(encodePosition(pos(2)));
    expect(new Map(merged?.columns)).toEqual(
      new Map([
        ['a', '2'],
        ['toast', '"big"'],
      ]),
    );
  });

  it('does not merge a partial write over a tombstone: both go, older first', () => {
    const out = collapseWrites([write('p', 2, [['a', '2']]), write('t', 1)]);
    expect(out.map((w) => w.mode)).toEqual(['t', 'p']);
  });

  it('leaves different keys alone', () => {
    expect(collapseWrites([write('v', 1, [], 'a'), write('v', 1, [], 'b')])).toHaveLength(2);
  });

  it('passes the key count, the keys, then per write one argument: mode, position, TTL, commit time, key and column pairs joined by NUL', () => {
    expect(
      applyCall([
        write(
          'v',
          1,
          [
            ['a', '1'],
            ['b', '"x"'],
          ],
          'k1',
        ),
        write('t', 2, [], 'k2'),
      ]),
    ).toEqual([
      2,
      'k1',
      'k2',
      ['v', encodePosition(pos(1)), '1', '', '{}', 'a', '1', 'b', '"x"'].join('\0'),
      ['t', encodePosition(pos(2)), '1', '', '{}'].join('\0'),
    ]);
  });
});
