/**
 * A probe query loop: runs one query every `intervalMs` on its own read-only session and keeps the
 * durations in a sliding window. Two kinds run on it: the user's `backfill.throttle.probe` (whose p99
 * the throttle compares with `maxP99Ms`) and the latency guard's built-in probe (each duration goes
 * to the guard through `onSample`). A probe that fails or hits its timeout counts as slow, so a
 * struggling database throttles rather than being ignored.
 */
import { performance } from 'node:perf_hooks';
import type { Logger } from '../core/log.js';
import { ParityError } from '../core/errors.js';
import { ProbeWindow } from './probe-window.js';
import type { Session } from './databases.js';

export interface ProbeSettings {
  sql: string;
  intervalMs: number;
  window: number;
  /** Statement timeout of the probe; a probe that hits it counts as taking this long. */
  timeoutMs: number;
  /** The spec field the query comes from, for the error when it cannot run at all. */
  field: string;
  /** Receives every duration (ms), failures included as at least the timeout. */
  onSample?: (ms: number) => void;
}

/** The statement timeout of the user's probe: ten times its limit, at least a second. */
export function userProbeTimeoutMs(maxP99Ms: number): number {
  return Math.max(1_000, Math.ceil(maxP99Ms * 10));
}

export class ProbeRunner {
  readonly window: ProbeWindow;
  private timer: NodeJS.Timeout | undefined;
  private running = false;
  private stopped = false;
  /** The last failure text, cleared by the next success. */
  lastError: string | undefined;

  constructor(
    private readonly session: () => Promise<Session>,
    private readonly settings: ProbeSettings,
    private readonly logger: Logger,
  ) {
    this.window = new ProbeWindow(settings.window);
  }

  private timeoutMs(): number {
    return this.settings.timeoutMs;
  }

  private current: Session | undefined;

  private async connect(): Promise<Session> {
    if (this.current) return this.current;
    const s = await this.session();
    await s.client.query(`SET default_transaction_read_only = on; SET statement_timeout = ${this.timeoutMs()}`);
    this.current = s;
    return s;
  }

  /** Runs the probe once up front: a probe that cannot run is a spec error, reported before any batch. */
  async start(): Promise<void> {
    const s = await this.connect();
    try {
      await s.client.query(this.settings.sql);
    } catch (err) {
      throw new ParityError('PARITY_BAD_INPUT', `${this.settings.field} fails: ${(err as Error).message}`, {
        cause: err,
        hint: 'the probe is one read-only query run against the source, e.g. SELECT 1 FROM orders WHERE id = 1',
      });
    }
    this.schedule();
  }

  private schedule(): void {
    if (this.stopped) return;
    this.timer = setTimeout(() => void this.tick(), this.settings.intervalMs);
    this.timer.unref();
  }

  private async tick(): Promise<void> {
    if (this.running || this.stopped) return;
    this.running = true;
    const t0 = performance.now();
    try {
      const s = await this.connect();
      await s.client.query(this.settings.sql);
      this.record(performance.now() - t0);
      this.lastError = undefined;
    } catch (err) {
      // Slow by definition: at least the timeout, so it pushes the p99 over any sane limit.
      this.record(Math.max(performance.now() - t0, this.timeoutMs()));
      this.lastError = (err as Error).message;
      this.logger.warn({ err: this.lastError }, 'throttle probe query failed; counted as slow');
      this.current?.release(true);
      this.current = undefined;
    } finally {
      this.running = false;
      this.schedule();
    }
  }

  private record(ms: number): void {
    this.window.add(ms);
    this.settings.onSample?.(ms);
  }

  p99Ms(): number | undefined {
    return this.window.p99();
  }

  stop(): void {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    this.current?.release();
    this.current = undefined;
  }
}
