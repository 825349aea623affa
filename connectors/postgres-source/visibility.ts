/**
 * Waiting until decoded transactions are visible to a new snapshot.
 *
 * PostgreSQL writes (and, with synchronous commit, flushes) a transaction's commit record before
 * the committing backend leaves the process array, and a walsender decodes and sends the
 * transaction as soon as the record is flushed. So a consumer that receives a change and at once
 * reads the table ("the row as it is now") can, for a moment, get a snapshot in which that
 * transaction is still running: it reads the row's previous state (or no row), and if it then
 * records the change as applied, the change is lost. Seen under load: reverse sync left 3 of ~170
 * inserts of one second without their old column. The fix is to read only once every transaction
 * of the batch is visible: each of their xids is below the snapshot's xmax and not among its
 * running xids. Later snapshots see them too (a transaction never becomes invisible again), so
 * every statement after the wait (READ COMMITTED takes a snapshot per statement) sees them.
 */
import type pg from 'pg';
import { ParityError } from '../../services/core/errors.js';

type Queryable = Pick<pg.ClientBase, 'query'>;

const TWO_32 = 2n ** 32n;
const HALF = 2n ** 31n;

/**
 * The 64-bit transaction id of a 32-bit xid (as pgoutput's Begin carries it), unwrapped around
 * `reference` (a recent full xid): the full id whose low 32 bits are `xid` and which lies within
 * 2^31 of the reference.
 */
export function fullXid(xid: number, reference: bigint): bigint {
  let full = (reference & ~(TWO_32 - 1n)) | BigInt(xid >>> 0);
  if (full > reference + HALF) full -= TWO_32;
  else if (full < reference - HALF) full += TWO_32;
  return full;
}

/**
 * The xids (32-bit, as decoded) that a snapshot taken now does not yet see as finished. Empty when
 * every one is visible. One round trip.
 */
export async function notYetVisible(db: Queryable, xids: readonly number[]): Promise<number[]> {
  if (xids.length === 0) return [];
  const { rows } = await db.query(
    'SELECT pg_snapshot_xmax(s)::text AS xmax, ARRAY(SELECT pg_snapshot_xip(s)::text) AS xip FROM pg_current_snapshot() AS s',
  );
  const xmax = BigInt(rows[0].xmax as string);
  const running = new Set((rows[0].xip as string[]).map((x) => BigInt(x)));
  return xids.filter((xid) => {
    const full = fullXid(xid, xmax);
    return full >= xmax || running.has(full);
  });
}

/**
 * Returns once every transaction in `xids` is visible to new snapshots on `db`. The gap is a
 * matter of microseconds to milliseconds (the committing backend's last steps), so it polls
 * briefly; past `timeoutMs` it fails loudly rather than read a state it cannot trust.
 */
export async function waitUntilVisible(db: Queryable, xids: readonly number[], timeoutMs = 10_000): Promise<void> {
  const distinct = [...new Set(xids)];
  const deadline = Date.now() + timeoutMs;
  for (let pending = await notYetVisible(db, distinct); pending.length > 0; pending = await notYetVisible(db, pending)) {
    if (Date.now() > deadline)
      throw new ParityError(
        'PARITY_INTERNAL',
        `transactions ${pending.slice(0, 5).join(', ')} were decoded from the WAL but are still not visible after ${timeoutMs} ms`,
        { retriable: true },
      );
    await new Promise((r) => setTimeout(r, 2));
  }
}
