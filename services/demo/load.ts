/**
 * The demo's production traffic: checkout, refunds and fraud services writing orders continuously,
 * plus the two things that go wrong in real migrations — an old-version writer that does not know
 * the new columns, and a partial dual-write bug that writes a wrong minor amount now and then.
 */
import pg from 'pg';
import { sleep } from '../core/retry.js';

export interface LoadOptions {
  url: string;
  /** Total writes per second across all writers. */
  ratePerSecond: number;
  /** Reads the dual-write switch before each write (the coordinator's flag). */
  dualWrite: () => boolean;
  /** Share of checkout/refund writes that hit the injected bug (wrong total_amount_minor). */
  bugRate: () => number;
  /** Whether the old-version writer (new columns untouched) is still deployed. */
  oldWriterActive: () => boolean;
  /** Set once the contract step removes total_amount: writers then write only the new columns. */
  contracted?: () => boolean;
  /**
   * After cutover (issue 23): whether the order's cohort writes only the new representation (its
   * `write` flag is `new`); reverse sync keeps total_amount current meanwhile. Absent: never.
   */
  writeNew?: (id: number) => boolean;
  random?: () => number;
}

export interface LoadStats {
  inserts: number;
  updates: number;
  deletes: number;
  buggyWrites: number;
  oldWriterWrites: number;
  errors: number;
  lastError?: string;
}

export interface LoadGenerator {
  stats: LoadStats;
  stop(): Promise<void>;
}

type Writer = 'checkout' | 'refunds' | 'fraud' | 'legacy';

/** Shares of the traffic per writer: mostly checkout, some refunds, a little fraud. */
const MIX: Array<[Writer, number]> = [
  ['checkout', 0.55],
  ['refunds', 0.3],
  ['fraud', 0.05],
  ['legacy', 0.1],
];

export async function startLoad(options: LoadOptions): Promise<LoadGenerator> {
  const random = options.random ?? Math.random;
  const stats: LoadStats = { inserts: 0, updates: 0, deletes: 0, buggyWrites: 0, oldWriterWrites: 0, errors: 0 };
  const pool = new pg.Pool({ connectionString: options.url, max: 4, application_name: 'parity-demo-load' });
  pool.on('error', () => undefined);
  const { rows } = await pool.query('SELECT coalesce(max(id), 0)::bigint AS max FROM orders');
  let maxId = Number(rows[0].max);
  let running = true;

  const pickId = () => 1 + Math.floor(random() * Math.max(1, maxId));
  const amount = () => 100 + Math.floor(random() * 99_900);

  async function write(writer: Writer): Promise<void> {
    // The row this write touches, chosen first: its cohort decides whether it writes the new columns only.
    const id =
      writer === 'checkout'
        ? Number((await pool.query(`SELECT nextval(pg_get_serial_sequence('orders', 'id'))::bigint AS id`)).rows[0].id)
        : pickId();
    const contracted = (options.contracted?.() ?? false) || (options.writeNew?.(id) ?? false);
    const dual = options.dualWrite() || contracted;
    const buggy = dual && random() < options.bugRate();
    switch (writer) {
      case 'checkout': {
        const cents = amount();
        const customer = 1 + Math.floor(random() * 5_000);
        // $2 is the amount in cents; the minor amount is the same number (plus one for the bug).
        const minorValue = buggy ? cents + 1 : cents;
        const res = contracted
          ? await pool.query(
              `INSERT INTO orders (id, customer_id, status, total_amount_minor, currency) VALUES ($3, $1, 'paid', $2, 'USD') RETURNING id`,
              [customer, minorValue, id],
            )
          : dual
            ? await pool.query(
                `INSERT INTO orders (id, customer_id, status, total_amount, total_amount_minor, currency) VALUES ($4, $1, 'paid', $2, $3, 'USD') RETURNING id`,
                [customer, cents, minorValue, id],
              )
            : await pool.query(`INSERT INTO orders (id, customer_id, status, total_amount) VALUES ($3, $1, 'paid', $2) RETURNING id`, [
                customer,
                cents,
                id,
              ]);
        maxId = Math.max(maxId, Number(res.rows[0].id));
        stats.inserts++;
        if (buggy) stats.buggyWrites++;
        return;
      }
      case 'refunds': {
        const refund = 1 + Math.floor(random() * 500);
        const bump = buggy ? 1 : 0;
        const res = contracted
          ? await pool.query(
              `UPDATE orders SET total_amount_minor = greatest(total_amount_minor - $2::bigint, 0) + $3::bigint, status = 'refunded', updated_at = now() WHERE id = $1`,
              [id, refund, bump],
            )
          : dual
            ? await pool.query(
                `UPDATE orders SET total_amount = greatest(total_amount - $2::int, 0), total_amount_minor = greatest(total_amount - $2::int, 0)::bigint + $3::bigint, currency = 'USD', status = 'refunded', updated_at = now() WHERE id = $1`,
                [id, refund, bump],
              )
            : await pool.query(
                `UPDATE orders SET total_amount = greatest(total_amount - $2::int, 0), status = 'refunded', updated_at = now() WHERE id = $1`,
                [id, refund],
              );
        stats.updates += res.rowCount ?? 0;
        if (buggy && res.rowCount) stats.buggyWrites++;
        return;
      }
      case 'fraud': {
        // Mostly flags an order; sometimes deletes one outright.
        if (random() < 0.2) {
          const res = await pool.query('DELETE FROM orders WHERE id = $1', [id]);
          stats.deletes += res.rowCount ?? 0;
        } else {
          const res = await pool.query(`UPDATE orders SET status = 'flagged', updated_at = now() WHERE id = $1`, [id]);
          stats.updates += res.rowCount ?? 0;
        }
        return;
      }
      case 'legacy': {
        if (!options.oldWriterActive() || contracted) return write('checkout');
        // An instance still on the old release: it changes total_amount and knows nothing of the new columns.
        const res = await pool.query(`UPDATE orders SET total_amount = total_amount + 100, updated_at = now() WHERE id = $1`, [id]);
        stats.updates += res.rowCount ?? 0;
        if (res.rowCount) stats.oldWriterWrites++;
        return;
      }
    }
  }

  function choose(): Writer {
    let r = random();
    for (const [writer, share] of MIX) {
      if (r < share) return writer;
      r -= share;
    }
    return 'checkout';
  }

  // A few concurrent lanes keep the rate up even when a write waits on a lock.
  const lanes = 4;
  const interval = (1000 * lanes) / options.ratePerSecond;
  const loops = Array.from({ length: lanes }, async (_, lane) => {
    await sleep((interval / lanes) * lane);
    let next = performance.now();
    while (running) {
      try {
        await write(choose());
      } catch (err) {
        stats.errors++;
        stats.lastError = (err as Error).message;
      }
      next += interval;
      const wait = next - performance.now();
      if (wait > 0) await sleep(wait);
      else next = performance.now();
    }
  });

  return {
    stats,
    async stop() {
      running = false;
      await Promise.all(loops);
      await pool.end();
    },
  };
}
