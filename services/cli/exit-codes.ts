/**
 * parity's exit codes, the same for every command, and the one mapping from an error to its code.
 * Scripts and CI tell "the check said no" (1) from "you called it wrong" (2) from "it could not run"
 * (3, worth a retry once the infrastructure is back) by this number alone.
 */
import { ERROR_CODES, ParityError, type ErrorCode } from '../core/errors.js';

export const EXIT = {
  /** Done; every check passed. */
  OK: 0,
  /** A check ran and said no: a gate failed, drift was confirmed, a schema is incompatible, a refusal. */
  NO: 1,
  /** Bad input: an unknown option or command, an invalid spec, a missing file. Nothing was changed. */
  BAD_INPUT: 2,
  /** A runtime failure: connection refused, timeout, lost lock, PostgreSQL/Kafka/Redis unreachable. */
  RUNTIME: 3,
} as const;

export type ExitCode = (typeof EXIT)[keyof typeof EXIT];

/**
 * Every ParityError code and the exit code it ends a command with. A code missing here counts as a
 * runtime failure (3); a unit test keeps this table complete.
 */
export const EXIT_CODE_BY_ERROR: Partial<Record<ErrorCode, ExitCode>> = {
  // You called it wrong: fix the command line or the spec.
  PARITY_SPEC_INVALID: EXIT.BAD_INPUT,
  PARITY_SPEC_ENV_MISSING: EXIT.BAD_INPUT,
  PARITY_BAD_INPUT: EXIT.BAD_INPUT,
  // A check said no.
  PARITY_GATE_FAILED: EXIT.NO,
  PARITY_SCHEMA_INCOMPATIBLE: EXIT.NO,
  PARITY_SCHEMA_REJECTED: EXIT.NO,
  PARITY_PHASE: EXIT.NO,
  PARITY_DDL_RISK: EXIT.NO,
  PARITY_ABORTED: EXIT.NO,
  // The slot is someone else's: drop-slot refuses it (unless --force), cdc run will not share it.
  PARITY_SLOT_IN_USE: EXIT.NO,
  // It could not run: the infrastructure, the environment, a lease, or parity itself failed.
  PARITY_STACK_FAILED: EXIT.RUNTIME,
  PARITY_DEPENDENCY_MISSING: EXIT.RUNTIME,
  PARITY_CONNECTION: EXIT.RUNTIME,
  PARITY_WAL_LEVEL: EXIT.RUNTIME,
  PARITY_REPLICATION_PRIVILEGE: EXIT.RUNTIME,
  PARITY_SLOT_MISSING: EXIT.RUNTIME,
  PARITY_DECODE: EXIT.RUNTIME,
  PARITY_SERIALIZE: EXIT.RUNTIME,
  PARITY_KAFKA: EXIT.RUNTIME,
  PARITY_REDIS: EXIT.RUNTIME,
  PARITY_LOCK_NOT_ACQUIRED: EXIT.RUNTIME,
  PARITY_LOCK_LOST: EXIT.RUNTIME,
  PARITY_LOCK_EXPIRED: EXIT.RUNTIME,
  PARITY_STALE_FENCE: EXIT.RUNTIME,
  PARITY_LOCK_TIMEOUT: EXIT.RUNTIME,
  PARITY_STATEMENT_TIMEOUT: EXIT.RUNTIME,
  PARITY_CONFLICT: EXIT.RUNTIME,
  PARITY_DDL_FAILED: EXIT.RUNTIME,
  PARITY_INTERNAL: EXIT.RUNTIME,
};

/** The codes of ERROR_CODES that EXIT_CODE_BY_ERROR does not classify (should be none). */
export function unclassifiedErrorCodes(): string[] {
  return Object.keys(ERROR_CODES).filter((code) => !(code in EXIT_CODE_BY_ERROR));
}

/**
 * The exit code a failed command ends with. A ParityError by its code; anything else that escaped a
 * command (a library's own error) is a runtime failure.
 */
export function exitCodeFor(err: unknown): ExitCode {
  if (err instanceof ParityError) return EXIT_CODE_BY_ERROR[err.code] ?? EXIT.RUNTIME;
  return EXIT.RUNTIME;
}

/** One line per exit code, for `--help` and the README. */
export const EXIT_CODES_TEXT = '0 ok, 1 a check said no, 2 bad input (nothing changed), 3 runtime failure (connection, timeout, lost lock)';
