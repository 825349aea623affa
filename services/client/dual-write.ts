/**
 * Writes for applications, routed by the cohort's flags (write-routing.ts). `write=old` (before
 * cutover, after a rollback): the old representation, and with dual-write on the new one too; the
 * authoritative write runs first, and only when it succeeds does the other one run. A failed
 * authoritative write skips the other (the caller sees its error, and nothing was written to one
 * side that the other does not have). A failed secondary write is counted and reported but does not
 * fail the request by default: the reconciler finds and repairs that drift. `write=new` (after
 * `parity cutover`): the new representation only; reverse sync keeps the old one current.
 */
import { silentLogger, type Logger } from '../core/log.js';
import { counter, type Registry } from '../core/metrics.js';
import type { Flags } from '../coordinator/flag-model.js';
import { routeWrite } from './write-routing.js';

export interface DualWriterOptions {
  /** Where the dual-write flag comes from (a FlagsReader's `get`, or a fixed value in tests). */
  flags: () => Flags | Promise<Flags>;
  /** Which side runs first while both are written (`write=old`, dual-write on): default `old`; `new` once reads have moved over. */
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
  /**
   * `write=new`: runs the new write only. `write=old`: runs the authoritative write, then (dual-write
   * on) the secondary. Returns the result of the write that ran first.
   */
  write<T>(ops: DualWriteOps<T>): Promise<T>;
}

export function createDualWriter(options: DualWriterOptions): DualWriter {
  const authoritative = options.authoritative ?? 'old';
  const logger = options.logger ?? silentLogger();
  const writes = options.metrics
    ? counter(
        options.metrics,
        'parity_client_dual_writes_total',
        'Writes by outcome (single: old only, new_only: write=new, both, authoritative_failed, secondary_failed)',
        ['result'],
      )
    : undefined;
  return {
    async write<T>(ops: DualWriteOps<T>): Promise<T> {
      const plan = routeWrite(await options.flags(), authoritative);
      let result: T;
      try {
        result = await ops[plan.first]();
      } catch (err) {
        writes?.inc({ result: 'authoritative_failed' });
        throw err;
      }
      if (plan.then === null) {
        writes?.inc({ result: plan.first === 'new' ? 'new_only' : 'single' });
        return result;
      }
      try {
        await ops[plan.then]();
        writes?.inc({ result: 'both' });
      } catch (err) {
        writes?.inc({ result: 'secondary_failed' });
        logger.warn({ err: (err as Error).message, side: plan.then }, 'secondary write failed; the reconciler will find the drift');
        options.onSecondaryError?.(err);
        if (options.secondaryErrors === 'throw') throw err;
      }
      return result;
    },
  };
}
