import { COMMANDS } from './commands.js';
import { ParityError, toParityError } from '../core/errors.js';
import { redact } from '../core/secrets.js';

function help(): string {
  const width = Math.max(...COMMANDS.map((c) => c.name.length));
  const lines = COMMANDS.map((c) => `  ${c.name.padEnd(width)}  ${c.summary}`);
  return [
    'parity: zero-downtime data migrations (CDC, verification, repair, caches, schema gates, coordinator)',
    '',
    'usage: parity <command> [options]   (parity <command> --help for its options)',
    '',
    'commands:',
    ...lines,
    '',
  ].join('\n');
}

/** Finds the longest command whose words prefix argv. */
function match(argv: string[]): { entry: (typeof COMMANDS)[number]; rest: string[] } | undefined {
  let best: { entry: (typeof COMMANDS)[number]; rest: string[] } | undefined;
  for (const entry of COMMANDS) {
    const words = entry.name.split(' ');
    if (words.every((w, i) => argv[i] === w) && (!best || words.length > best.entry.name.split(' ').length)) {
      best = { entry, rest: argv.slice(words.length) };
    }
  }
  return best;
}

export async function main(argv: string[]): Promise<number> {
  if (argv.length === 0 || argv[0] === '--help' || argv[0] === '-h' || argv[0] === 'help') {
    process.stdout.write(help());
    return 0;
  }
  const found = match(argv);
  if (!found) {
    process.stderr.write(`parity: unknown command "${argv.join(' ')}"\n\n${help()}`);
    return 2;
  }
  try {
    const handler = await found.entry.load();
    return await handler(found.rest);
  } catch (err) {
    const error = err instanceof ParityError ? err : toParityError(err);
    process.stderr.write(`${redact(error.describe())}\n`);
    if (process.env.PARITY_DEBUG && error.stack) process.stderr.write(`${redact(error.stack)}\n`);
    return error.exitCode;
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
  const onOutputError = (err: Error) => {
    outputError ??= err;
    // Nothing more can reach the reader; stop now like a SIGPIPE would (work in flight is replayed).
    process.stderr.write(`parity: cannot write to stdout: ${err.message}\n`, () => process.exit(3));
  };
  process.stdout.on('error', onOutputError);
  const code = await main(argv);
  const err = (await flushed(process.stdout)) ?? outputError;
  if (err) {
    process.exitCode = 3;
    await flushed(process.stderr);
    process.exit(3);
  }
  await flushed(process.stderr);
  process.exit(code);
}
