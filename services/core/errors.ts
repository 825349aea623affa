/**
 * The closed set of parity errors. Every failure the tool reports carries a stable `code` and a
 * `retriable` flag; retry helpers decide only from that flag (the KafkaJS way).
 */
export const ERROR_CODES = {
  PARITY_SPEC_INVALID: { retriable: false, exitCode: 2 },
  PARITY_SPEC_ENV_MISSING: { retriable: false, exitCode: 2 },
  PARITY_BAD_INPUT: { retriable: false, exitCode: 2 },
  PARITY_STACK_FAILED: { retriable: false, exitCode: 1 },
  PARITY_DEPENDENCY_MISSING: { retriable: false, exitCode: 1 },
  PARITY_CONNECTION: { retriable: true, exitCode: 1 },
  PARITY_WAL_LEVEL: { retriable: false, exitCode: 1 },
  PARITY_REPLICATION_PRIVILEGE: { retriable: false, exitCode: 1 },
  PARITY_SLOT_MISSING: { retriable: false, exitCode: 1 },
  PARITY_SLOT_IN_USE: { retriable: true, exitCode: 1 },
  PARITY_DECODE: { retriable: false, exitCode: 1 },
  PARITY_SERIALIZE: { retriable: true, exitCode: 1 },
  PARITY_SCHEMA_REJECTED: { retriable: true, exitCode: 1 },
  PARITY_SCHEMA_INCOMPATIBLE: { retriable: false, exitCode: 1 },
  PARITY_KAFKA: { retriable: true, exitCode: 1 },
  PARITY_REDIS: { retriable: true, exitCode: 1 },
  PARITY_LOCK_NOT_ACQUIRED: { retriable: true, exitCode: 1 },
  PARITY_LOCK_LOST: { retriable: false, exitCode: 1 },
  PARITY_LOCK_EXPIRED: { retriable: false, exitCode: 1 },
  PARITY_STALE_FENCE: { retriable: false, exitCode: 1 },
  PARITY_LOCK_TIMEOUT: { retriable: true, exitCode: 1 },
  PARITY_STATEMENT_TIMEOUT: { retriable: false, exitCode: 1 },
  PARITY_CONFLICT: { retriable: false, exitCode: 1 },
  PARITY_GATE_FAILED: { retriable: false, exitCode: 1 },
  PARITY_PHASE: { retriable: false, exitCode: 1 },
  PARITY_DDL_RISK: { retriable: false, exitCode: 1 },
  PARITY_DDL_FAILED: { retriable: false, exitCode: 1 },
  PARITY_ABORTED: { retriable: false, exitCode: 1 },
  PARITY_INTERNAL: { retriable: false, exitCode: 1 },
} as const;

export type ErrorCode = keyof typeof ERROR_CODES;

export interface ParityErrorOptions {
  /** Overrides the code's default retriable flag (e.g. a connection error that cannot recover). */
  retriable?: boolean;
  /** What the user should do about it; printed after the message. */
  hint?: string;
  /** Structured context for logs. Never put secrets here. */
  details?: Record<string, unknown>;
  cause?: unknown;
}

export class ParityError extends Error {
  readonly code: ErrorCode;
  readonly retriable: boolean;
  readonly hint: string | undefined;
  readonly details: Record<string, unknown>;

  constructor(code: ErrorCode, message: string, options: ParityErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'ParityError';
    this.code = code;
    this.retriable = options.retriable ?? ERROR_CODES[code].retriable;
    this.hint = options.hint;
    this.details = options.details ?? {};
  }

  get exitCode(): number {
    return ERROR_CODES[this.code].exitCode;
  }

  /** One human-readable block: code, message and the hint. */
  describe(): string {
    return `${this.code}: ${this.message}${this.hint ? `\n  hint: ${this.hint}` : ''}`;
  }
}

export function isParityError(err: unknown, code?: ErrorCode): err is ParityError {
  return err instanceof ParityError && (code === undefined || err.code === code);
}

/** Wraps any thrown value into a ParityError, keeping ParityErrors as they are. */
export function toParityError(err: unknown, code: ErrorCode = 'PARITY_INTERNAL'): ParityError {
  if (err instanceof ParityError) return err;
  const message = err instanceof Error ? err.message : String(err);
  return new ParityError(code, message, { cause: err });
}

/** PostgreSQL SQLSTATEs that parity maps to its own codes. */
export function fromPgError(err: unknown, context: string): ParityError {
  const sqlstate = (err as { code?: string } | undefined)?.code;
  const message = `${context}: ${err instanceof Error ? err.message : String(err)}`;
  switch (sqlstate) {
    case '55P03':
      return new ParityError('PARITY_LOCK_TIMEOUT', message, { cause: err, hint: 'another transaction holds a conflicting lock; parity retries with backoff' });
    case '57014':
      return new ParityError('PARITY_STATEMENT_TIMEOUT', message, { cause: err, hint: 'the statement ran past statement_timeout; lower the batch size or raise the timeout' });
    case '40001':
    case '40P01':
      return new ParityError('PARITY_CONFLICT', message, { cause: err, retriable: true });
    case '08000':
    case '08003':
    case '08006':
    case '57P01':
    case '57P03':
      return new ParityError('PARITY_CONNECTION', message, { cause: err });
    case '42703':
    case '42P01':
    case '42883':
    case '42601':
      return new ParityError('PARITY_BAD_INPUT', message, { cause: err, hint: 'check the column names and SQL expressions in the spec' });
    default:
      // Data exceptions (22), integrity violations (23) and syntax/access errors (42) come from what
      // the user wrote (a mapping, a key, a value), never from a transient condition.
      if (sqlstate && /^(22|23|42)/.test(sqlstate)) {
        return new ParityError('PARITY_BAD_INPUT', message, { cause: err, hint: 'check the spec\'s columns, key and mapping expressions against the tables' });
      }
      if ((err as { code?: string })?.code === 'ECONNREFUSED' || (err as { code?: string })?.code === 'ECONNRESET') {
        return new ParityError('PARITY_CONNECTION', message, { cause: err });
      }
      return new ParityError('PARITY_INTERNAL', message, { cause: err });
  }
}
