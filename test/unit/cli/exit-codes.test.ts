import { describe, expect, test } from 'vitest';
import { EXIT, EXIT_CODE_BY_ERROR, exitCodeFor, unclassifiedErrorCodes } from '../../../services/cli/exit-codes.js';
import { ERROR_CODES, ParityError, type ErrorCode } from '../../../services/core/errors.js';
import { fromPgError } from '../../../services/core/errors.js';

const err = (code: ErrorCode) => new ParityError(code, 'x');

describe('exit codes', () => {
  test('every ParityError code is classified (a new code must be placed in the table)', () => {
    expect(unclassifiedErrorCodes()).toEqual([]);
    for (const code of Object.keys(ERROR_CODES) as ErrorCode[]) expect([1, 2, 3]).toContain(EXIT_CODE_BY_ERROR[code]);
  });

  test('bad input is 2', () => {
    for (const code of ['PARITY_BAD_INPUT', 'PARITY_SPEC_INVALID', 'PARITY_SPEC_ENV_MISSING'] as const)
      expect(exitCodeFor(err(code))).toBe(EXIT.BAD_INPUT);
  });

  test('a check that said no is 1', () => {
    for (const code of ['PARITY_GATE_FAILED', 'PARITY_SCHEMA_INCOMPATIBLE', 'PARITY_PHASE', 'PARITY_DDL_RISK', 'PARITY_ABORTED'] as const)
      expect(exitCodeFor(err(code))).toBe(EXIT.NO);
  });

  test('connections, timeouts, lost locks and unreachable services are runtime failures (3)', () => {
    for (const code of [
      'PARITY_CONNECTION',
      'PARITY_KAFKA',
      'PARITY_REDIS',
      'PARITY_LOCK_LOST',
      'PARITY_LOCK_EXPIRED',
      'PARITY_STALE_FENCE',
      'PARITY_LOCK_TIMEOUT',
      'PARITY_STATEMENT_TIMEOUT',
      'PARITY_LOCK_NOT_ACQUIRED',
    ] as const) {
      expect(exitCodeFor(err(code))).toBe(EXIT.RUNTIME);
    }
  });

  test('PostgreSQL failures map through their ParityError code', () => {
    expect(exitCodeFor(fromPgError(Object.assign(new Error('refused'), { code: 'ECONNREFUSED' }), 'connecting'))).toBe(3);
    expect(exitCodeFor(fromPgError(Object.assign(new Error('canceling statement'), { code: '57014' }), 'verifying'))).toBe(3);
    expect(exitCodeFor(fromPgError(Object.assign(new Error('column "x" does not exist'), { code: '42703' }), 'mapping'))).toBe(2);
  });

  test('anything that is not a ParityError is a runtime failure', () => {
    expect(exitCodeFor(new Error('socket hang up'))).toBe(EXIT.RUNTIME);
    expect(exitCodeFor('a string')).toBe(EXIT.RUNTIME);
    expect(exitCodeFor(err('PARITY_INTERNAL'))).toBe(EXIT.RUNTIME);
  });
});
