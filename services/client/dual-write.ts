/**
 * Dual writes for applications. The authoritative write runs first; only when it succeeds, and the
 * dual-write flag is on, does the other one run. A failed authoritative write skips the other (the
 * caller sees its error, and nothing was written to the new representation that the old one does
 * not have). A failed secondary write is counted and reported but does not fail the request by
 * default: the reconciler finds and repairs that drift.
 */
import { silentLogger, type Logger } from '../core/log.js';
import { counter, type Registry } from '../core/metrics.js';
import type { Flags } from '../coordinator/flag-model.js';

export interface DualWriterOptions {
  /** Where the dual-write flag comes from (a FlagsReader's `get`, or a fixed value in tests). */
  flags: () => Flags | Promise<Flags>;
  /** Which side is authoritative (default `old`; `new` once reads have moved over). */
  authoritative?: 'old' | 'new';
  /** `report` (default): a failed secondary write is counted and passed to onSecondaryError; `throw`: it fails the call. */
  secondaryErrors?: 'report' | 'throw';
  onSecondaryError?: (err: unknown) => void;
  logger?: Logger;
  metrics?: Registry;
}

export interface DualWriteOps<T> {
  old: () => Promise<T>;
  new: () => Promise<T>;
}

export interface DualWriter {
  /** Runs the authoritative write, then (dual-write on) the secondary; returns the authoritative result. */
  write<T>(ops: DualWriteOps<T>): Promise<T>;
}

export function createDualWriter(options: DualWriterOptions): DualWriter {
  const authoritative = options.authoritative ?? 'old';
  const secondary = authoritative === 'old' ? 'new' : 'old';
  const logger = options.logger ?? silentLogger();
  const writes = options.metrics
    ? counter(
        options.metrics,
        'parity_client_dual_writes_total',
        'Writes by outcome (single, both, authoritative_failed, secondary_failed)',
        ['result'],
      )
    : undefined;
  return {
    async write<T>(ops: DualWriteOps<T>): Promise<T> {
      const { dualWrite } = await options.flags();
      let result: T;
      try {
        result = await ops[authoritative]();
      } catch (err) {
        writes?.inc({ result: 'authoritative_failed' });
        throw err;
      }
      if (!dualWrite) {
        writes?.inc({ result: 'single' });
        return result;
      }
      try {
        await ops[secondary]();
        writes?.inc({ result: 'both' });
      } catch (err) {
        writes?.inc({ result: 'secondary_failed' });
        logger.warn({ err: (err as Error).message, side: secondary }, 'secondary write failed; the reconciler will find the drift');
        options.onSecondaryError?.(err);
        if (options.secondaryErrors === 'throw') throw err;
      }
      return result;
    },
  };
}
