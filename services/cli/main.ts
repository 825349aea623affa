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
