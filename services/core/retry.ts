import { isParityError } from './errors.js';

export interface RetryOptions {
  retries: number;
  /** First delay; doubles each attempt up to maxDelayMs. */
  initialDelayMs: number;
  maxDelayMs: number;
  /** Called before each wait; useful for logs and metrics. */
  onRetry?: (err: unknown, attempt: number, delayMs: number) => void;
  random?: () => number;
  sleep?: (ms: number) => Promise<void>;
}

export const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/** Exponential backoff with full jitter: a delay uniform in [0, min(max, initial * 2^attempt)]. */
export function backoffDelay(attempt: number, initialDelayMs: number, maxDelayMs: number, random: () => number = Math.random): number {
  const ceiling = Math.min(maxDelayMs, initialDelayMs * 2 ** attempt);
  return Math.round(random() * ceiling);
}

/**
 * Runs `fn`, retrying only errors whose `retriable` flag is set. Anything else is rethrown at once,
 * so a retry loop can never hide a bug or a bad input.
 */
export async function retry<T>(fn: (attempt: number) => Promise<T>, options: RetryOptions): Promise<T> {
  const wait = options.sleep ?? sleep;
  for (let attempt = 0; ; attempt++) {
    try {
      return await fn(attempt);
    } catch (err) {
      const retriable = isParityError(err) && err.retriable;
      if (!retriable || attempt >= options.retries) throw err;
      const delay = backoffDelay(attempt, options.initialDelayMs, options.maxDelayMs, options.random);
      options.onRetry?.(err, attempt + 1, delay);
      await wait(delay);
    }
  }
}
