import { Writable } from 'node:stream';
import { describe, expect, test } from 'vitest';
import { createLogger } from '../../../services/core/log.js';
import { clearSecrets, redact, registerSecret } from '../../../services/core/secrets.js';
import { comparePositions, decodePosition, encodePosition, formatLsn, parseLsn } from '../../../services/core/lsn.js';
import { ParityError, fromPgError } from '../../../services/core/errors.js';
import { backoffDelay, retry } from '../../../services/core/retry.js';

describe('secret redaction', () => {
  test('URL passwords and registered secrets never reach a log line', () => {
    clearSecrets();
    registerSecret('hunter22');
    const lines: string[] = [];
    const destination = new Writable({
      write(chunk, _enc, cb) {
        lines.push(String(chunk));
        cb();
      },
    });
    const logger = createLogger({ name: 't', destination: destination as never });
    logger.info({ password: 'pw-field-value', target: 'postgres://u:topsecret@h/db' }, 'connecting with hunter22');
    const out = lines.join('');
    expect(out).not.toContain('pw-field-value');
    expect(out).not.toContain('topsecret');
    expect(out).not.toContain('hunter22');
    expect(out).toContain('[redacted]');
    expect(redact('redis://:abcd1234@127.0.0.1:6379')).toBe('redis://:[redacted]@127.0.0.1:6379');
  });
});

describe('LSNs and positions', () => {
  test('padded and unpadded forms parse to the same value and format canonically', () => {
    expect(parseLsn('0/16B3748')).toBe(parseLsn('00000000/016B3748'));
    expect(formatLsn(parseLsn('00000001/016b3748'))).toBe('1/16B3748');
    expect(() => parseLsn('16B3748')).toThrow(ParityError);
  });

  test('parses every width and both cases exactly, and refuses anything else', () => {
    expect(parseLsn('FFFFFFFF/FFFFFFFF')).toBe(0xffffffff_ffffffffn);
    expect(parseLsn('1FFFFF/FFFFFFFF')).toBe(0x1fffff_ffffffffn);
    expect(parseLsn('200000/00000001')).toBe(0x200000_00000001n);
    expect(parseLsn('a/b')).toBe(0xa_0000000bn);
    expect(parseLsn(' 0/1 ')).toBe(1n);
    for (const bad of ['', '/', '0/', '/0', '0/G', '123456789/0', '0/123456789', '0/1/2', '-1/0', '0x1/0'])
      expect(() => parseLsn(bad), bad).toThrow(/not an LSN/);
  });

  test('encoded positions sort like positions (the cache script compares them as strings)', () => {
    const positions = [
      { commitLsn: 0x1_0000_0000n, ordinal: 2 },
      { commitLsn: 0x16b3748n, ordinal: 10 },
      { commitLsn: 0x16b3748n, ordinal: 9 },
      { commitLsn: 0xffn, ordinal: 0 },
    ];
    const byValue = [...positions].sort(comparePositions);
    const byText = [...positions].sort((a, b) => (encodePosition(a) < encodePosition(b) ? -1 : 1));
    expect(byText).toEqual(byValue);
    expect(decodePosition(encodePosition(positions[0]!))).toEqual(positions[0]);
  });
});

describe('errors and retries', () => {
  test('SQLSTATEs map to stable codes with the right retriable flag', () => {
    expect(fromPgError({ code: '55P03', message: 'lock' }, 'x').code).toBe('PARITY_LOCK_TIMEOUT');
    expect(fromPgError({ code: '55P03' }, 'x').retriable).toBe(true);
    expect(fromPgError({ code: '57014' }, 'x').code).toBe('PARITY_STATEMENT_TIMEOUT');
    expect(fromPgError({ code: '57014' }, 'x').retriable).toBe(false);
  });

  test('retry retries only retriable errors, with jittered exponential backoff', async () => {
    let calls = 0;
    const waits: number[] = [];
    const result = await retry(
      async () => {
        calls++;
        if (calls < 3) throw new ParityError('PARITY_LOCK_TIMEOUT', 'busy');
        return 'done';
      },
      { retries: 5, initialDelayMs: 100, maxDelayMs: 1000, random: () => 1, sleep: async (ms) => void waits.push(ms) },
    );
    expect(result).toBe('done');
    expect(waits).toEqual([100, 200]);

    let badCalls = 0;
    await expect(
      retry(
        async () => {
          badCalls++;
          throw new ParityError('PARITY_BAD_INPUT', 'no');
        },
        { retries: 5, initialDelayMs: 1, maxDelayMs: 1 },
      ),
    ).rejects.toThrow('no');
    expect(badCalls).toBe(1);
    expect(backoffDelay(10, 100, 5000, () => 0.5)).toBe(2500);
  });
});
