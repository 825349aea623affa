/**
 * The closed set of parity errors. Every failure the tool reports carries a stable `code` and a
 * `retriable` flag; retry helpers decide only from that flag (the KafkaJS way). `exitCode` is the one
 * home of each code's exit status (services/cli/exit-codes.ts reads it): 1 a check said no or a
 * refusal, 2 bad input (nothing changed), 3 a runtime failure worth a retry once the infrastructure
 * is back.
 */
export const ERROR_CODES = {
  PARITY_SPEC_INVALID: { retriable: false, exitCode: 2 },
  PARITY_SPEC_ENV_MISSING: { retriable: false, exitCode: 2 },
  PARITY_BAD_INPUT: { retriable: false, exitCode: 2 },
  PARITY_STACK_FAILED: { retriable: false, exitCode: 3 },
  PARITY_DEPENDENCY_MISSING: { retriable: false, exitCode: 3 },
  PARITY_CONNECTION: { retriable: true, exitCode: 3 },
  PARITY_WAL_LEVEL: { retriable: false, exitCode: 3 },
  PARITY_REPLICATION_PRIVILEGE: { retriable: false, exitCode: 3 },
  PARITY_SLOT_MISSING: { retriable: false, exitCode: 3 },
  PARITY_SLOT_IN_USE: { retriable: true, exitCode: 1 },
  PARITY_DECODE: { retriable: false, exitCode: 3 },
  PARITY_SERIALIZE: { retriable: true, exitCode: 3 },
  PARITY_SCHEMA_REJECTED: { retriable: true, exitCode: 1 },
  PARITY_SCHEMA_INCOMPATIBLE: { retriable: false, exitCode: 1 },
  PARITY_KAFKA: { retriable: true, exitCode: 3 },
  PARITY_REDIS: { retriable: true, exitCode: 3 },
  PARITY_LOCK_NOT_ACQUIRED: { retriable: true, exitCode: 3 },
  PARITY_LOCK_LOST: { retriable: false, exitCode: 3 },
  PARITY_LOCK_EXPIRED: { retriable: false, exitCode: 3 },
  PARITY_STALE_FENCE: { retriable: false, exitCode: 3 },
  PARITY_LOCK_TIMEOUT: { retriable: true, exitCode: 3 },
  PARITY_STATEMENT_TIMEOUT: { retriable: false, exitCode: 3 },
  PARITY_CONFLICT: { retriable: false, exitCode: 3 },
  PARITY_GATE_FAILED: { retriable: false, exitCode: 1 },
  PARITY_PHASE: { retriable: false, exitCode: 1 },
  PARITY_DDL_RISK: { retriable: false, exitCode: 1 },
  PARITY_DDL_FAILED: { retriable: false, exitCode: 3 },
  PARITY_ABORTED: { retriable: false, exitCode: 1 },
  PARITY_INTERNAL: { retriable: false, exitCode: 3 },
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

/** Node's TLS verification codes: the server's certificate is not one the client's CA vouches for. */
const TLS_REFUSAL =
  /^(SELF_SIGNED_CERT_IN_CHAIN|DEPTH_ZERO_SELF_SIGNED_CERT|UNABLE_TO_VERIFY_LEAF_SIGNATURE|UNABLE_TO_GET_ISSUER_CERT(_LOCALLY)?|CERT_HAS_EXPIRED|CERT_NOT_YET_VALID|ERR_TLS_CERT_ALTNAME_INVALID|CERT_SIGNATURE_FAILURE)$/;

/**
 * A refused login or an untrusted certificate, anywhere in `err`'s cause chain, as a bad-input error
 * (exit 2: retrying cannot fix it) naming the connection and the setting to fix; undefined otherwise.
 * PostgreSQL: SQLSTATE 28P01 (password) and 28000 (pg_hba, e.g. TLS required); Redis: WRONGPASS/NOAUTH;
 * any TLS client: Node's certificate verification codes.
 */
export function connectionRefusal(err: unknown): ParityError | undefined {
  let e = err as { code?: unknown; message?: unknown; cause?: unknown } | undefined;
  for (let depth = 0; e && typeof e === 'object' && depth < 6; depth++, e = e.cause as typeof e) {
    const code = typeof e.code === 'string' ? e.code : '';
    const text = typeof e.message === 'string' ? e.message : '';
    if (code === '28P01') {
      return new ParityError('PARITY_BAD_INPUT', `PostgreSQL refused the login: ${text}`, {
        cause: err,
        hint: 'check the password in the database URL (source.database, target.database or control.database; written as ${VAR})',
        retriable: false,
      });
    }
    if (code === '28000') {
      return new ParityError('PARITY_BAD_INPUT', `PostgreSQL refused the connection: ${text}`, {
        cause: err,
        hint: /no encryption/.test(text)
          ? 'the server accepts TLS connections only: add sslmode=verify-full&sslrootcert=<CA file> to the database URL'
          : "check the user and the database in the database URL against the server's pg_hba.conf",
        retriable: false,
      });
    }
    if (/^(WRONGPASS|NOAUTH)\b/.test(text)) {
      return new ParityError('PARITY_BAD_INPUT', `Redis refused the login: ${text}`, {
        cause: err,
        hint: 'check infra.redis.username and infra.redis.password (an ACL user; the password as ${VAR})',
        retriable: false,
      });
    }
    if (TLS_REFUSAL.test(code)) {
      return new ParityError('PARITY_BAD_INPUT', `TLS certificate not accepted (${code}): ${text}`, {
        cause: err,
        hint:
          code === 'CERT_HAS_EXPIRED'
            ? 'the server certificate has expired: renew it'
            : 'point the connection at the CA that signed the server certificate: sslrootcert in a PostgreSQL URL, infra.redis.tls.ca, infra.registry.tls.ca or kafka.security.tls.ca',
        retriable: false,
      });
    }
  }
  return undefined;
}

/**
 * A refusal a client reported only as an event, not through the failing call: ioredis emits a TLS or
 * login refusal as an `error` event and its commands then fail with "max retries per request". The
 * CLI names the refusal (and its setting) when the command's own error does not.
 */
let notedRefusal: { err: unknown; connection: string; tlsSetting: string } | undefined;

/** Remembers `err` when it is a refusal (see {@link connectionRefusal}) of `connection`. */
export function noteConnectionRefusal(err: unknown, connection: string, tlsSetting: string): void {
  if (connectionRefusal(err)) notedRefusal = { err, connection, tlsSetting };
}

/** The last refusal noted by {@link noteConnectionRefusal}, as the bad-input error that names its setting. */
export function notedConnectionRefusal(): ParityError | undefined {
  if (!notedRefusal) return undefined;
  const refused = connectionRefusal(notedRefusal.err)!;
  const tls = refused.message.startsWith('TLS certificate not accepted') && !/expired/.test(refused.hint ?? '');
  return new ParityError(refused.code, `${notedRefusal.connection}: ${refused.message}`, {
    cause: notedRefusal.err,
    hint: tls ? `point ${notedRefusal.tlsSetting} at the CA that signed the server certificate` : refused.hint,
    retriable: false,
  });
}

/** PostgreSQL SQLSTATEs that parity maps to its own codes. */
export function fromPgError(err: unknown, context: string): ParityError {
  const refused = connectionRefusal(err);
  if (refused) return new ParityError(refused.code, `${context}: ${refused.message}`, { cause: err, hint: refused.hint, retriable: false });
  const sqlstate = (err as { code?: string } | undefined)?.code;
  const message = `${context}: ${err instanceof Error ? err.message : String(err)}`;
  switch (sqlstate) {
    case '55P03':
      return new ParityError('PARITY_LOCK_TIMEOUT', message, {
        cause: err,
        hint: 'another transaction holds a conflicting lock; parity retries with backoff',
      });
    case '57014':
      return new ParityError('PARITY_STATEMENT_TIMEOUT', message, {
        cause: err,
        hint: 'the statement ran past statement_timeout; lower the batch size or raise the timeout',
      });
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
        return new ParityError('PARITY_BAD_INPUT', message, {
          cause: err,
          hint: "check the spec's columns, key and mapping expressions against the tables",
        });
      }
      if ((err as { code?: string })?.code === 'ECONNREFUSED' || (err as { code?: string })?.code === 'ECONNRESET') {
        return new ParityError('PARITY_CONNECTION', message, { cause: err });
      }
      return new ParityError('PARITY_INTERNAL', message, { cause: err });
  }
}
