/**
 * The `parity` command line: dispatch through the command table, `--help` and `--version` answered
 * before any command module loads, and every failure turned into one exit code (services/cli/exit-codes.ts).
 */
import { COMMANDS } from './commands.js';
import type { CommandEntry } from './command.js';
import { bashCompletion, zshCompletion } from './completion.js';
import { EXIT, EXIT_CODE_BY_ERROR, exitCodeFor } from './exit-codes.js';
import { commandHelp, groupHelp, groups, topHelp } from './help.js';
import { connectionRefusal, notedConnectionRefusal, ParityError, toParityError } from '../core/errors.js';
import { redact } from '../core/secrets.js';

/** Finds the longest command whose words prefix argv. */
export function match(argv: readonly string[]): { entry: CommandEntry; rest: string[] } | undefined {
  let best: { entry: CommandEntry; rest: string[] } | undefined;
  for (const entry of COMMANDS) {
    const words = entry.name.split(' ');
    if (words.every((w, i) => argv[i] === w) && (!best || words.length > best.entry.name.split(' ').length)) {
      best = { entry, rest: argv.slice(words.length) };
    }
  }
  return best;
}

/** Does argv ask for help? (`--help` or `-h` anywhere before a `--` that ends the options) */
export function wantsHelp(argv: readonly string[]): boolean {
  for (const arg of argv) {
    if (arg === '--') return false;
    if (arg === '--help' || arg === '-h') return true;
  }
  return false;
}

/** The help text for the words of `parity help WORDS...` (or `WORDS --help`); undefined if unknown. */
function helpFor(words: readonly string[]): string | undefined {
  if (words.length === 0) return topHelp(COMMANDS);
  const found = match(words);
  if (found) return commandHelp(found.entry);
  const group = groups(COMMANDS).get(words[0]!);
  return group ? groupHelp(words[0]!, group) : undefined;
}

function unknown(argv: readonly string[]): number {
  process.stderr.write(`parity: unknown command "${argv.join(' ')}"\n  hint: parity --help lists the commands\n`);
  return EXIT.BAD_INPUT;
}

/** Runs one `parity` command line and returns its exit code (0 ok, 1 no, 2 bad input, 3 runtime failure). */
export async function main(argv: string[]): Promise<number> {
  const first = argv[0];
  if (first === undefined || first === '--help' || first === '-h') {
    process.stdout.write(topHelp(COMMANDS));
    return EXIT.OK;
  }
  if (first === '--version' || first === '-V') {
    const { TOOL_VERSION } = await import('../reconciler/version.js');
    process.stdout.write(`parity ${TOOL_VERSION}\n`);
    return EXIT.OK;
  }
  if (first === 'help') {
    const text = helpFor(argv.slice(1).filter((a) => !a.startsWith('-')));
    if (!text) return unknown(argv.slice(1));
    process.stdout.write(text);
    return EXIT.OK;
  }
  if (first === 'completion') {
    const shell = argv[1];
    if (wantsHelp(argv.slice(1))) {
      process.stdout.write(
        'Usage: parity completion bash|zsh\n\nPrints a shell completion script for parity.\n\nExamples:\n  source <(parity completion bash)\n  parity completion zsh > "${fpath[1]}/_parity"\n',
      );
      return EXIT.OK;
    }
    if ((shell !== 'bash' && shell !== 'zsh') || argv.length > 2) {
      process.stderr.write(
        `parity: completion needs one shell, bash or zsh${shell ? `, got "${argv.slice(1).join(' ')}"` : ''}\n  hint: source <(parity completion bash)\n`,
      );
      return EXIT.BAD_INPUT;
    }
    process.stdout.write(shell === 'bash' ? bashCompletion(COMMANDS) : zshCompletion(COMMANDS));
    return EXIT.OK;
  }
  const found = match(argv);
  if (!found) {
    const group = groups(COMMANDS).get(first);
    if (!group) return unknown(argv);
    // `parity stack --help` lists the group; `parity stack` (or `parity stack nope`) is a usage error.
    if (wantsHelp(argv.slice(1))) {
      process.stdout.write(groupHelp(first, group));
      return EXIT.OK;
    }
    process.stderr.write(
      `parity: ${argv.length > 1 ? `unknown command "${argv.join(' ')}"` : `${first} needs a subcommand`}\n\n${groupHelp(first, group)}`,
    );
    return EXIT.BAD_INPUT;
  }
  if (wantsHelp(found.rest)) {
    process.stdout.write(commandHelp(found.entry));
    return EXIT.OK;
  }
  try {
    const handler = await found.entry.load();
    return await handler(found.rest);
  } catch (err) {
    // A refused login or an untrusted certificate is bad input (exit 2) naming the setting, however deep it was wrapped.
    // A client that reported its refusal only as an event (ioredis) left it noted: the command's own error
    // ("max retries per request") does not carry it.
    const alreadyBadInput = err instanceof ParityError && EXIT_CODE_BY_ERROR[err.code] === EXIT.BAD_INPUT;
    const own = alreadyBadInput ? undefined : connectionRefusal(err);
    const noted = alreadyBadInput || own ? undefined : notedConnectionRefusal();
    const refused = own ?? noted;
    const error =
      refused && err instanceof ParityError
        ? new ParityError(refused.code, noted ? `${err.message} (${noted.message})` : err.message, {
            cause: err,
            hint: refused.hint,
            retriable: false,
          })
        : (refused ?? (err instanceof ParityError ? err : toParityError(err)));
    process.stderr.write(`${redact(error.describe())}\n`);
    if (process.env.PARITY_DEBUG && error.stack) process.stderr.write(`${redact(error.stack)}\n`);
    return exitCodeFor(error);
  }
}

/** Resolves once everything written to `stream` so far has been handed to the OS (or it failed). */
function flushed(stream: NodeJS.WriteStream): Promise<Error | undefined> {
  if (stream.destroyed || stream.writableFinished) return Promise.resolve(undefined);
  // A write callback runs after every earlier chunk was written: an empty write marks "all so far".
  return new Promise((resolve) => stream.write('', (err) => resolve(err ?? undefined)));
}

/**
 * Runs a command as the `parity` process: `main`, then waits for stdout and stderr to drain before
 * ending the process. A bare process.exit() right after main would cut piped output at the pipe's
 * buffer (64 KiB); not exiting at all would let a long-running command's leftover client handles keep
 * the process up. A write error on stdout (EPIPE: the reader went away) fails the command with exit 3.
 */
export async function run(argv: string[]): Promise<never> {
  let outputError: Error | undefined;
  process.stdout.on('error', (err: Error) => {
    outputError ??= err;
    // Nothing more can reach the reader: stop now, as a SIGPIPE would (work in flight is replayed).
    process.stderr.write(`parity: cannot write to stdout: ${err.message}\n`, () => process.exit(EXIT.RUNTIME));
  });
  // A closed stderr leaves nowhere to report anything; it must not crash the command either.
  process.stderr.on('error', () => undefined);
  const code = await main(argv);
  const err = (await flushed(process.stdout)) ?? outputError;
  await flushed(process.stderr);
  process.exit(err ? EXIT.RUNTIME : code);
}
