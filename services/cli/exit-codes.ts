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
 * Every ParityError code and the exit code it ends a command with, as services/core/errors.ts
 * declares it (its one home); a unit test checks every code maps to 1, 2 or 3.
 */
export const EXIT_CODE_BY_ERROR: Partial<Record<ErrorCode, ExitCode>> = Object.fromEntries(
  Object.entries(ERROR_CODES).map(([code, { exitCode }]) => [code, exitCode as ExitCode]),
);

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
