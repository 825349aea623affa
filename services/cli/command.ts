/**
 * The shape of the command table (services/cli/commands.ts). Option parsing for the commands
 * themselves is services/core/options.ts, which the services' cli modules import.
 */

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
