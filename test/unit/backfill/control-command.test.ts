import { describe, expect, it } from 'vitest';
import { formatControlCommand, parseControlCommand } from '../../../services/backfill/control-command.js';

describe('control commands', () => {
  it('parses every command, from words or one string', () => {
    expect(parseControlCommand(['pause'])).toEqual({ kind: 'pause' });
    expect(parseControlCommand(['resume'])).toEqual({ kind: 'resume' });
    expect(parseControlCommand(['abort'])).toEqual({ kind: 'abort' });
    expect(parseControlCommand(['set', 'batch-size=500'])).toEqual({ kind: 'set-batch-size', size: 500 });
    expect(parseControlCommand(['set batch-size = 500'])).toEqual({ kind: 'set-batch-size', size: 500 });
    expect(parseControlCommand(['set', 'batch-size=auto'])).toEqual({ kind: 'set-batch-size', size: null });
    expect(parseControlCommand(['set', 'max-lag=2.5'])).toEqual({ kind: 'set-max-lag', seconds: 2.5 });
    expect(parseControlCommand(['set', 'max-lag=3s'])).toEqual({ kind: 'set-max-lag', seconds: 3 });
  });

  it('round-trips through its canonical text', () => {
    for (const text of ['pause', 'resume', 'abort', 'set batch-size=500', 'set batch-size=auto', 'set max-lag=1.5']) {
      expect(formatControlCommand(parseControlCommand([text]))).toBe(text);
    }
  });

  it('rejects bad commands with PARITY_BAD_INPUT and the list of commands', () => {
    for (const [words, message] of [
      [[], /missing control command/],
      [['stop'], /unknown control command "stop"/],
      [['set', 'batch-size=0'], /batch-size must be an integer from 1/],
      [['set', 'batch-size=1.5'], /batch-size must be an integer/],
      [['set', 'max-lag=-1'], /max-lag must be a positive number/],
      [['set', 'speed=3'], /unknown setting "speed"/],
    ] as [string[], RegExp][]) {
      expect(() => parseControlCommand(words)).toThrow(message);
      try {
        parseControlCommand(words);
      } catch (err) {
        expect(err).toMatchObject({ code: 'PARITY_BAD_INPUT', hint: expect.stringContaining('set batch-size=N') });
      }
    }
  });
});
