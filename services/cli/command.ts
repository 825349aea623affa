import { parseArgs, type ParseArgsConfig } from 'node:util';
import { ParityError } from '../core/errors.js';

/** A subcommand handler: receives the arguments after the command words, returns the exit code. */
export type CommandHandler = (argv: string[]) => Promise<number>;

/** One option of a command, for its `--help` and the shell completion. */
export interface OptionHelp {
  /** The flag and its value's name, as written: `--spec FILE`, `--json`, `--populate vN[,vM...]`. */
  flag: string;
  /** What it does, and its default. */
  help: string;
  /** Shown in the usage line instead of under [options]. */
  required?: boolean;
}

export interface CommandEntry {
  /** Command words, e.g. "stack up". */
  name: string;
  /** One line for `parity --help`. */
  summary: string;
  /** Positional arguments in the usage line, e.g. `NAME=VALUE ...`. */
  args?: string;
  /** Every option the command accepts (`--help` is added by the CLI). */
  options: OptionHelp[];
  /** At least one complete command line. */
  examples: string[];
  /** What exit code 1 means for this command, when it has a "no" to say. */
  no?: string;
  /** Loads the handler lazily so `--help`, `--version` and small commands stay fast. */
  load: () => Promise<CommandHandler>;
}

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
