/**
 * Lock-lost readiness for long-running fenced writers (`backfill run`, stream repair, reverse sync).
 *
 * Their writes are already safe: every one checks its fencing token in its own transaction
 * (fence.ts), so a superseded holder's write is rolled back. What that alone does not give an
 * operator is a signal *before* the next write fails, or at all while the writer is paused: the
 * process keeps answering /readyz 200 with a token nobody accepts any more. A `FenceWatch` reads the
 * latest token of its scope at a bounded rate (every `intervalMs`, a few seconds by default) and is
 * told at once when a write is refused as stale; from then on its readiness is 503 with the reason
 * "lock lost: fencing token N superseded by M", the `parity_lock_lost` gauge is 1, and one warning
 * is logged. A token never comes back once superseded (tokens only grow), so neither does readiness.
 */
import type pg from 'pg';
import type { Gauge, Registry } from 'prom-client';
import { isParityError } from './errors.js';
import { fenceTable } from './fence.js';
import type { ProbeReport } from './http.js';
import { silentLogger, type Logger } from './log.js';
import { gauge } from './metrics.js';

/**
 * The latest token of `scope`, read only (0n when none was issued or the fence table does not exist
 * yet). Run it on a connection of its own: inside another transaction's snapshot it could read an
 * older token.
 */
export async function readLatestToken(db: Pick<pg.ClientBase, 'query'>, schema: string, scope: string): Promise<bigint> {
  try {
    const { rows } = await db.query(`SELECT token FROM ${fenceTable(schema)} WHERE scope = $1`, [scope]);
    return rows[0] ? BigInt(rows[0].token) : 0n;
  } catch (err) {
    if ((err as { code?: string }).code === '42P01') return 0n;
    throw err;
  }
}

/** Default interval between two reads of the latest token. */
export const FENCE_WATCH_INTERVAL_MS = 3_000;

/**
 * The `parity_lock_lost` gauge: 1 while this process's fencing token is superseded (its next write
 * will be refused), else 0. Registered at 0 so the family is scraped before anything is lost.
 */
export function lockLostGauge(registry: Registry): Gauge<string> {
  const g = gauge(
    registry,
    'parity_lock_lost',
    "1 while this process's fencing token is superseded by a newer holder's (its writes are refused)",
  );
  g.set(0);
  return g;
}

export interface FenceWatchOptions {
  scope: string;
  /** The token this process writes with. */
  token: bigint;
  /** Reads the latest token issued for `scope` (fence.ts `currentToken` on the fence database). */
  latest: () => Promise<bigint>;
  intervalMs?: number;
  logger?: Logger;
  /** `lockLostGauge(registry)` of the process. */
  gauge?: Gauge<string>;
}

export interface FenceLoss {
  token: bigint;
  latest: bigint;
}

/** Watches whether a fencing token is still the latest; see the module comment. */
export class FenceWatch {
  private loss: FenceLoss | undefined;
  private timer: NodeJS.Timeout | undefined;
  private checking: Promise<void> | undefined;
  private readonly logger: Logger;

  constructor(private readonly o: FenceWatchOptions) {
    this.logger = o.logger ?? silentLogger();
    o.gauge?.set(0);
  }

  /** Starts the periodic check (unref'd: it never keeps the process alive). */
  start(): this {
    if (this.timer) return this;
    this.timer = setInterval(() => void this.check(), this.o.intervalMs ?? FENCE_WATCH_INTERVAL_MS);
    this.timer.unref();
    return this;
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
  }

  /** The supersession seen, if any. */
  get lost(): FenceLoss | undefined {
    return this.loss;
  }

  /**
   * Reads the latest token once (a check already under way is shared, so callers cannot raise the
   * rate). A failed read changes nothing: an unreachable fence database is not proof of a loss, and
   * the writes check the token themselves anyway.
   */
  check(): Promise<void> {
    if (this.loss) return Promise.resolve();
    this.checking ??= this.o
      .latest()
      .then(
        (latest) => this.observe(latest),
        (err: unknown) =>
          this.logger.debug({ err: (err as Error).message, scope: this.o.scope }, 'fence watch: could not read the latest token'),
      )
      .finally(() => {
        this.checking = undefined;
      });
    return this.checking;
  }

  /** Records the latest token a refused write reported (a PARITY_STALE_FENCE's `details.latest`). */
  observe(latest: bigint): void {
    if (this.loss || latest === this.o.token) return;
    this.loss = { token: this.o.token, latest };
    this.o.gauge?.set(1);
    this.logger.warn(
      { scope: this.o.scope, token: this.o.token.toString(), latest: latest.toString() },
      `${describeLoss(this.loss)}: another holder took the migration lock; this process's writes are refused from now on`,
    );
  }

  /**
   * Called with any error a write raised: a stale-fence refusal is recorded at once (from the token
   * it names, else by reading the latest); other errors are ignored.
   */
  noteWriteError(err: unknown): void {
    if (!isParityError(err, 'PARITY_STALE_FENCE')) return;
    const latest = (err.details as { latest?: unknown } | undefined)?.latest;
    if (typeof latest === 'string' || typeof latest === 'number' || typeof latest === 'bigint') this.observe(BigInt(latest));
    else void this.check();
  }

  /** The /readyz answer while the token is superseded; undefined while it is current. */
  readiness(): Exclude<ProbeReport, boolean> | undefined {
    return this.loss ? { ok: false, status: 'lock-lost', reason: describeLoss(this.loss) } : undefined;
  }
}

/** "lock lost: fencing token N superseded by M". */
export function describeLoss(loss: FenceLoss): string {
  return `lock lost: fencing token ${loss.token} superseded by ${loss.latest}`;
}
