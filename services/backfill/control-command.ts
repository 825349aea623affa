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
  | { kind: 'set-max-lag'; seconds: number };

export const CONTROL_USAGE = 'pause | resume | abort | set batch-size=N | set batch-size=auto | set max-lag=SECONDS';

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
}

/** The limits of a validated spec's `backfill` section. */
export function controlLimits(backfill: {
  minBatchSize: number;
  maxBatchSize: number;
  throttle: { maxLagSeconds: number };
}): ControlLimits {
  return { minBatchSize: backfill.minBatchSize, maxBatchSize: backfill.maxBatchSize, maxLagSeconds: backfill.throttle.maxLagSeconds };
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
  throw bad(`unknown setting "${name}" (settable: batch-size, max-lag)`);
}

/** The canonical text of a command, as stored in the audit column and echoed back. */
export function formatControlCommand(command: ControlCommand): string {
  switch (command.kind) {
    case 'set-batch-size':
      return `set batch-size=${command.size ?? 'auto'}`;
    case 'set-max-lag':
      return `set max-lag=${command.seconds}`;
    default:
      return command.kind;
  }
}
