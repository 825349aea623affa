import { parseOptions } from '../core/options.js';
import { ParityError } from '../core/errors.js';
import { runDemo } from './demo.js';

const USAGE = 'parity demo [--quick] [--rows N] [--rate WRITES_PER_S] [--json]';

/** `parity demo` (also `npm run demo`): the orders migration end to end on the local stack. */
export async function demoCommand(argv: string[]): Promise<number> {
  const { values } = parseOptions(
    argv,
    { quick: { type: 'boolean' }, rows: { type: 'string' }, rate: { type: 'string' }, json: { type: 'boolean' } },
    USAGE,
  );
  const int = (v: string | undefined, flag: string) => {
    if (v === undefined) return undefined;
    const n = Number(v);
    if (!Number.isInteger(n) || n < 1)
      throw new ParityError('PARITY_BAD_INPUT', `${flag} must be a positive integer, got "${v}"`, { hint: `usage: ${USAGE}` });
    return n;
  };
  const result = await runDemo({ quick: values.quick ?? false, rows: int(values.rows, '--rows'), rate: int(values.rate, '--rate') });
  if (result.ok)
    process.stdout.write(
      `\nDemo complete in ${result.figures.seconds}s: no drift, no lost event, caches fresh. Report: ${result.reportPath}\n`,
    );
  else process.stdout.write(`\nDemo FAILED:\n${result.failures.map((f) => `  - ${f}`).join('\n')}\n`);
  // Machine-readable figures as the last line, for CI and scripts.
  if (values.json) process.stdout.write(`${JSON.stringify(result)}\n`);
  return result.ok ? 0 : 1;
}
