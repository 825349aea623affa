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
    expect(parseControlCommand(['set', 'wal-rate=4194304'])).toEqual({ kind: 'set-wal-rate', bytesPerSecond: 4_194_304 });
    expect(parseControlCommand(['set', 'wal-rate=4MiB'])).toEqual({ kind: 'set-wal-rate', bytesPerSecond: 4_194_304 });
    expect(parseControlCommand(['set', 'wal-rate=512KiB'])).toEqual({ kind: 'set-wal-rate', bytesPerSecond: 524_288 });
    expect(parseControlCommand(['set', 'wal-rate=auto'])).toEqual({ kind: 'set-wal-rate', bytesPerSecond: null });
    expect(parseControlCommand(['set', 'workers=3'])).toEqual({ kind: 'set-workers', workers: 3 });
    expect(parseControlCommand(['set', 'workers=auto'])).toEqual({ kind: 'set-workers', workers: null });
  });

  it('keeps a pinned WAL budget within the spec limits', () => {
    const limits = { minBatchSize: 1, maxBatchSize: 10, maxLagSeconds: 1, minWalBytesPerSecond: 262_144, maxWalBytesPerSecond: 33_554_432 };
    expect(parseControlCommand(['set', 'wal-rate=32MiB'], limits)).toEqual({ kind: 'set-wal-rate', bytesPerSecond: 33_554_432 });
    expect(() => parseControlCommand(['set', 'wal-rate=64MiB'], limits)).toThrow(
      /outside the spec's limits 262144\.\.33554432 bytes\/s \(backfill\.throttle\.pace\.minWalBytesPerSecond/,
    );
    expect(() => parseControlCommand(['set', 'wal-rate=100KiB'], limits)).toThrow(/outside the spec's limits/);
  });

  it('round-trips through its canonical text', () => {
    for (const text of [
      'pause',
      'resume',
      'abort',
      'set batch-size=500',
      'set batch-size=auto',
      'set max-lag=1.5',
      'set wal-rate=4194304',
      'set wal-rate=auto',
      'set workers=2',
      'set workers=auto',
    ]) {
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
      [['set', 'wal-rate=fast'], /wal-rate must be bytes per second/],
      [['set', 'workers=0'], /workers must be an integer from 1 to 64/],
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
