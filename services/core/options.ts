/**
 * Command-line option parsing for every service's commands: node's parseArgs, with its errors turned
 * into PARITY_BAD_INPUT (exit code 2) carrying the command's usage as the hint. It lives in the kernel
 * because the services' cli modules use it and the CLI layer (services/cli) sits above them.
 */
import { parseArgs, type ParseArgsConfig } from 'node:util';
import { ParityError } from './errors.js';

/**
 * Parses options with node's parseArgs, turning its errors into PARITY_BAD_INPUT (exit code 2) with
 * the command's usage as the hint.
 */
export function parseOptions<T extends NonNullable<ParseArgsConfig['options']>>(
  argv: string[],
  options: T,
  usage: string,
): { values: ReturnType<typeof parseArgs<{ options: T; allowPositionals: true; args: string[] }>>['values']; positionals: string[] } {
  try {
    const parsed = parseArgs({ args: argv, options, allowPositionals: true, strict: true });
    return { values: parsed.values, positionals: parsed.positionals };
  } catch (err) {
    throw new ParityError('PARITY_BAD_INPUT', err instanceof Error ? err.message : String(err), { hint: `usage: ${usage}` });
  }
}

/** Requires an option, failing with a clear message and the usage. */
export function required<T>(value: T | undefined, flag: string, usage: string): T {
  if (value === undefined || value === '') {
    throw new ParityError('PARITY_BAD_INPUT', `missing required option ${flag}`, { hint: `usage: ${usage}` });
  }
  return value;
}

/**
 * An integer option of at least `min` (default 1), or undefined when absent (callers supply their
 * default with `??`). Anything else is bad input naming the flag and the command's usage.
 */
export function intOption(value: string | undefined, flag: string, usage: string, min = 1): number | undefined {
  if (value === undefined) return undefined;
  const n = Number(value);
  if (!Number.isInteger(n) || n < min) {
    throw new ParityError('PARITY_BAD_INPUT', `${flag} must be an integer >= ${min}, got ${JSON.stringify(value)}`, {
      hint: `usage: ${usage}`,
    });
  }
  return n;
}
