import { pino, type Logger, type DestinationStream } from 'pino';
import { redact } from './secrets.js';

export type { Logger };

export interface LoggerOptions {
  name: string;
  level?: string;
  /** Where lines go; defaults to stderr so stdout stays for command output. */
  destination?: DestinationStream;
}

/**
 * Structured JSON logs (pino). Known secret fields are censored by path, and every serialized line
 * is scrubbed of registered secret values and URL passwords before it is written.
 */
export function createLogger(options: LoggerOptions): Logger {
  const target: DestinationStream = options.destination ?? pino.destination({ fd: 2, sync: true });
  const scrubbing: DestinationStream = { write: (line: string) => target.write(redact(line)) };
  return pino(
    {
      name: options.name,
      level: options.level ?? process.env.PARITY_LOG_LEVEL ?? 'info',
      redact: {
        paths: [
          'password',
          '*.password',
          '*.*.password',
          'url',
          '*.url',
          'connectionString',
          '*.connectionString',
          'headers.authorization',
        ],
        censor: '[redacted]',
      },
      base: { pid: process.pid },
    },
    scrubbing,
  );
}

/** A logger that writes nothing, for tests and library callers that pass none. */
export function silentLogger(): Logger {
  return pino({ level: 'silent' });
}
