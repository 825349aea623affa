/**
 * The reverse stream's reading of pgoutput messages: keys of the watched table per committed
 * transaction, its (commit LSN, ordinal) position, its own writes dropped by replication origin, and
 * the rollback's flip marker.
 */
import type { Pgoutput } from 'pg-logical-replication';
import { describe, expect, it } from 'vitest';
import type { PgoutputMessage } from '../../../connectors/postgres-source/replication-stream.js';
import { ChangeReader } from '../../../services/reverse-sync/changes.js';

// Tuples are by column position (pgoutput-rows.ts): every relation here has the columns id, total_amount_minor.
const relation = (schema: string, name: string) =>
  ({ schema, name, columns: [{ name: 'id' }, { name: 'total_amount_minor' }] }) as unknown as Pgoutput.MessageRelation;
const orders = relation('public', 'orders_v2');
const other = relation('public', 'customers');
const begin = (commitLsn: string) =>
  ({ tag: 'begin', commitLsn, commitTime: 1_700_000_000_000_000n, xid: 1 }) as unknown as PgoutputMessage;
const commit = (commitLsn: string, commitEndLsn: string) => ({ tag: 'commit', commitLsn, commitEndLsn }) as unknown as PgoutputMessage;
const change = (tag: 'insert' | 'update' | 'delete', rel: unknown, row: { id?: string; total_amount_minor?: string }) => {
  const tuple = [row.id ?? null, row.total_amount_minor ?? null];
  return (tag === 'delete'
    ? { tag, relation: rel, key: tuple, old: null }
    : { tag, relation: rel, new: tuple }) as unknown as PgoutputMessage;
};

function reader() {
  return new ChangeReader({
    schema: 'public',
    table: 'orders_v2',
    key: ['id'],
    origin: 'parity_reverse_m',
    flipPrefix: 'parity.reverse.flip',
    migration: 'm',
  });
}

describe('ChangeReader', () => {
  it('collects distinct keys of the watched table, counts every change in the ordinal, and ends at commit', () => {
    const r = reader();
    expect(r.push(begin('0/100'))).toBeNull();
    r.push(change('insert', orders, { id: '1', total_amount_minor: '5' }));
    r.push(change('update', other, { id: '9' }));
    r.push(change('update', orders, { id: '1', total_amount_minor: '6' }));
    r.push(change('delete', orders, { id: '2' }));
    const tx = r.push(commit('0/100', '0/180'));
    expect(tx).not.toBeNull();
    expect([...tx!.keys.values()].map((k) => k.values)).toEqual([['1'], ['2']]);
    expect(tx!.commitLsn).toBe(0x100n);
    expect(tx!.commitEndLsn).toBe(0x180n);
    expect(tx!.lastOrdinal).toBe(4);
    expect(tx!.commitTimeMs).toBe(1_700_000_000_000);
    expect(tx!.echoes).toBe(0);
    expect(tx!.flip).toBe(false);
  });

  it("drops the changes of its own replication origin (no echo) but still reports the transaction's position", () => {
    const r = reader();
    r.push(begin('0/200'));
    r.push({ tag: 'origin', originName: 'parity_reverse_m', originLsn: '0/0' } as unknown as PgoutputMessage);
    r.push(change('update', orders, { id: '1' }));
    const tx = r.push(commit('0/200', '0/240'))!;
    expect(tx.keys.size).toBe(0);
    expect(tx.echoes).toBe(1);
    expect(tx.commitLsn).toBe(0x200n);
  });

  it("keeps another origin's changes (only its own are echoes)", () => {
    const r = reader();
    r.push(begin('0/300'));
    r.push({ tag: 'origin', originName: 'some_subscription', originLsn: '0/0' } as unknown as PgoutputMessage);
    r.push(change('update', orders, { id: '7' }));
    expect(r.push(commit('0/300', '0/340'))!.keys.size).toBe(1);
  });

  it('sees the flip marker of its migration only', () => {
    const r = reader();
    const message = (content: string) =>
      ({
        tag: 'message',
        prefix: 'parity.reverse.flip',
        content: Buffer.from(content),
        transactional: true,
      }) as unknown as PgoutputMessage;
    r.push(begin('0/400'));
    r.push(message('another-migration'));
    expect(r.push(commit('0/400', '0/440'))!.flip).toBe(false);
    r.push(begin('0/500'));
    r.push(message('m'));
    expect(r.push(commit('0/500', '0/540'))!.flip).toBe(true);
  });

  it('refuses a change without its key value rather than skip it', () => {
    const r = reader();
    r.push(begin('0/600'));
    expect(() => r.push(change('insert', orders, { total_amount_minor: '1' }))).toThrow(/no value for key column id/);
  });
});
