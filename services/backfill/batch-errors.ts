/**
 * Turns what a batch statement threw into a ParityError: lock timeouts, deadlocks and lost
 * connections are retriable; statement timeouts are not (the batch is too slow, which retrying does
 * not fix); errors in the user's SQL or data (SQLSTATE classes 22, 23, 42) are bad input.
 */
import { fromPgError, ParityError } from '../core/errors.js';

/** node-pg reports a dead connection with these messages and no SQLSTATE. */
const CONNECTION_LOST =
  /Connection terminated|Client has encountered a connection error|not queryable|connection is closed|ECONNRESET|ECONNREFUSED|EPIPE/i;

export function batchError(err: unknown, context: string, hint?: string): ParityError {
  if (err instanceof ParityError) return err;
  const sqlstate = (err as { code?: string } | undefined)?.code ?? '';
  const message = err instanceof Error ? err.message : String(err);
  if (!/^[0-9A-Z]{5}$/.test(sqlstate) && CONNECTION_LOST.test(message)) {
    return new ParityError('PARITY_CONNECTION', `${context}: ${message}`, {
      cause: err,
      hint: 'the database connection was lost; parity reconnects and retries the batch',
    });
  }
  if (/^(22|23|42)/.test(sqlstate)) {
    return new ParityError('PARITY_BAD_INPUT', `${context}: ${message}`, {
      cause: err,
      hint: hint ?? 'check the mapping expressions and the target columns in the spec',
      details: { sqlstate },
    });
  }
  const mapped = fromPgError(err, context);
  if (mapped.code === 'PARITY_STATEMENT_TIMEOUT') {
    return new ParityError('PARITY_STATEMENT_TIMEOUT', mapped.message, {
      cause: err,
      hint: 'the batch ran past backfill.statementTimeoutMs and was rolled back entirely; lower backfill.maxBatchSize (or `ctl set batch-size=N`) or raise backfill.statementTimeoutMs, then run again to resume',
    });
  }
  return mapped;
}
