/**
 * Runtime control commands, shared by `parity backfill ctl` and the HTTP control endpoint:
 * `pause`, `resume`, `abort`, `set batch-size=N` (`set batch-size=auto` returns to adaptive sizing)
 * and `set max-lag=S`. Parsing is pure; applying writes the run's control row (see control-store.ts).
 */
import { ParityError } from '../core/errors.js';

export type ControlCommand =
  | { kind: 'pause' }
  | { kind: 'resume' }
  | { kind: 'abort' }
  | { kind: 'set-batch-size'; size: number | null }
  | { kind: 'set-max-lag'; seconds: number }
  | { kind: 'set-wal-rate'; bytesPerSecond: number | null }
  | { kind: 'set-workers'; workers: number | null };

export const CONTROL_USAGE =
  'pause | resume | abort | set batch-size=N|auto | set max-lag=SECONDS | set wal-rate=BYTES_PER_S|auto (suffixes KiB, MiB) | set workers=N|auto';

/** Largest batch size an operator may pin; a bigger batch would hold row locks for too long. */
export const MAX_PINNED_BATCH_SIZE = 1_000_000;

/**
 * The spec's bounds on what an operator may set: a pinned batch size within
 * [backfill.minBatchSize, backfill.maxBatchSize], a max-lag no looser than
 * backfill.throttle.maxLagSeconds. Raising a limit is a spec change, not a runtime command.
 */
export interface ControlLimits {
  minBatchSize: number;
  maxBatchSize: number;
  maxLagSeconds: number;
  /** pace.minWalBytesPerSecond / maxWalBytesPerSecond: the range a pinned WAL budget must stay in. */
  minWalBytesPerSecond?: number;
  maxWalBytesPerSecond?: number;
}

/** The limits of a validated spec's `backfill` section. */
export function controlLimits(backfill: {
  minBatchSize: number;
  maxBatchSize: number;
  throttle: { maxLagSeconds: number; pace?: { minWalBytesPerSecond: number; maxWalBytesPerSecond: number } };
}): ControlLimits {
  const pace = backfill.throttle.pace;
  return {
    minBatchSize: backfill.minBatchSize,
    maxBatchSize: backfill.maxBatchSize,
    maxLagSeconds: backfill.throttle.maxLagSeconds,
    ...(pace ? { minWalBytesPerSecond: pace.minWalBytesPerSecond, maxWalBytesPerSecond: pace.maxWalBytesPerSecond } : {}),
  };
}

/** Most workers an operator may keep in service per process (as `--workers`). */
export const MAX_PINNED_WORKERS = 64;

/** `4194304`, `4096KiB`, `4MiB` -> bytes; NaN when not such a number. */
function parseBytes(value: string): number {
  const m = /^(\d+(?:\.\d+)?)(KiB|MiB|GiB)?$/.exec(value);
  if (!m) return Number.NaN;
  const unit = m[2] === 'KiB' ? 1024 : m[2] === 'MiB' ? 1024 ** 2 : m[2] === 'GiB' ? 1024 ** 3 : 1;
  return Math.round(Number(m[1]) * unit);
}

/**
 * Parses command words, e.g. ["set", "batch-size=500"] or ["set batch-size=500"]; with `limits`,
 * a value outside the spec's bounds is PARITY_BAD_INPUT naming the bound and the spec field.
 */
export function parseControlCommand(words: readonly string[], limits?: ControlLimits): ControlCommand {
  const text = words.join(' ').trim().replace(/\s+/g, ' ');
  const bad = (message: string): ParityError => new ParityError('PARITY_BAD_INPUT', message, { hint: `commands: ${CONTROL_USAGE}` });
  if (text === 'pause') return { kind: 'pause' };
  if (text === 'resume') return { kind: 'resume' };
  if (text === 'abort') return { kind: 'abort' };
  const set = /^set ([a-z-]+)\s*=\s*(\S+)$/.exec(text);
  if (!set) throw bad(text ? `unknown control command "${text}"` : 'missing control command');
  const [, name, value] = set as unknown as [string, string, string];
  if (name === 'batch-size') {
    if (value === 'auto') return { kind: 'set-batch-size', size: null };
    const size = Number(value);
    if (!Number.isInteger(size) || size < 1 || size > MAX_PINNED_BATCH_SIZE) {
      throw bad(`batch-size must be an integer from 1 to ${MAX_PINNED_BATCH_SIZE} or "auto", got "${value}"`);
    }
    if (limits && (size < limits.minBatchSize || size > limits.maxBatchSize)) {
      throw bad(
        `batch-size ${size} is outside the spec's limits ${limits.minBatchSize}..${limits.maxBatchSize} (backfill.minBatchSize, backfill.maxBatchSize); change the spec to go beyond them`,
      );
    }
    return { kind: 'set-batch-size', size };
  }
  if (name === 'max-lag') {
    const seconds = Number(value.replace(/s$/, ''));
    if (!Number.isFinite(seconds) || seconds <= 0) throw bad(`max-lag must be a positive number of seconds, got "${value}"`);
    if (limits && seconds > limits.maxLagSeconds) {
      throw bad(
        `max-lag ${seconds} s is above the spec's limit of ${limits.maxLagSeconds} s (backfill.throttle.maxLagSeconds); lower values are allowed, raise the spec's to go beyond it`,
      );
    }
    return { kind: 'set-max-lag', seconds };
  }
  if (name === 'wal-rate') {
    if (value === 'auto') return { kind: 'set-wal-rate', bytesPerSecond: null };
    const bytes = parseBytes(value);
    if (!Number.isInteger(bytes) || bytes < 1)
      throw bad(`wal-rate must be bytes per second (e.g. 4194304 or 4MiB) or "auto", got "${value}"`);
    if (
      limits?.minWalBytesPerSecond !== undefined &&
      limits.maxWalBytesPerSecond !== undefined &&
      (bytes < limits.minWalBytesPerSecond || bytes > limits.maxWalBytesPerSecond)
    ) {
      throw bad(
        `wal-rate ${bytes} is outside the spec's limits ${limits.minWalBytesPerSecond}..${limits.maxWalBytesPerSecond} bytes/s (backfill.throttle.pace.minWalBytesPerSecond, maxWalBytesPerSecond); change the spec to go beyond them`,
      );
    }
    return { kind: 'set-wal-rate', bytesPerSecond: bytes };
  }
  if (name === 'workers') {
    if (value === 'auto') return { kind: 'set-workers', workers: null };
    const workers = Number(value);
    if (!Number.isInteger(workers) || workers < 1 || workers > MAX_PINNED_WORKERS)
      throw bad(`workers must be an integer from 1 to ${MAX_PINNED_WORKERS} or "auto", got "${value}"`);
    return { kind: 'set-workers', workers };
  }
  throw bad(`unknown setting "${name}" (settable: batch-size, max-lag, wal-rate, workers)`);
}

/** The canonical text of a command, as stored in the audit column and echoed back. */
export function formatControlCommand(command: ControlCommand): string {
  switch (command.kind) {
    case 'set-batch-size':
      return `set batch-size=${command.size ?? 'auto'}`;
    case 'set-max-lag':
      return `set max-lag=${command.seconds}`;
    case 'set-wal-rate':
      return `set wal-rate=${command.bytesPerSecond ?? 'auto'}`;
    case 'set-workers':
      return `set workers=${command.workers ?? 'auto'}`;
    default:
      return command.kind;
  }
}
