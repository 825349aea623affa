import { writeFileSync } from 'node:fs';
import { parseOptions, required } from '../core/options.js';
import { isParityError, ParityError } from '../core/errors.js';
import { loadSpec, specJsonSchema } from '../core/spec.js';

const VALIDATE_USAGE = 'parity spec validate [--offline] [--json] FILE';

/**
 * `parity spec validate FILE`: prints ok, or every problem with its YAML path and a hint (exit 2).
 * `--offline` checks the structure without resolving `${VAR}`s (a CI lint has no secrets). `--json`
 * prints `{ok, file, offline, name}` or `{ok: false, file, offline, code, problems: [{path, line?,
 * message, hint?}]}` on stdout instead (same exit codes).
 */
export async function specValidate(argv: string[]): Promise<number> {
  const { positionals, values } = parseOptions(
    argv,
    { spec: { type: 'string' }, offline: { type: 'boolean' }, json: { type: 'boolean' } },
    VALIDATE_USAGE,
  );
  const file = required(positionals[0] ?? values.spec, 'FILE', VALIDATE_USAGE);
  const offline = values.offline === true;
  if (!values.json) {
    loadSpec(file, process.env, { offline });
    process.stdout.write(offline ? 'ok (offline: ${VAR}s not resolved)\n' : 'ok\n');
    return 0;
  }
  try {
    const { spec } = loadSpec(file, process.env, { offline });
    process.stdout.write(`${JSON.stringify({ ok: true, file, offline, name: spec.name })}\n`);
    return 0;
  } catch (err) {
    if (!isParityError(err, 'PARITY_SPEC_INVALID') && !isParityError(err, 'PARITY_BAD_INPUT')) throw err;
    const problems = (err.details as { problems?: unknown[] }).problems ?? [
      { path: '', message: err.message, ...(err.hint ? { hint: err.hint } : {}) },
    ];
    process.stdout.write(`${JSON.stringify({ ok: false, file, offline, code: err.code, problems })}\n`);
    return 2;
  }
}

const SCHEMA_USAGE = 'parity spec json-schema [--out FILE]';

/** `parity spec json-schema [--out FILE]`: the JSON Schema generated from the zod spec schema. */
export async function specJsonSchemaCommand(argv: string[]): Promise<number> {
  const { values } = parseOptions(argv, { out: { type: 'string' } }, SCHEMA_USAGE);
  const text = `${JSON.stringify(specJsonSchema(), null, 2)}\n`;
  if (values.out) {
    try {
      writeFileSync(values.out, text);
    } catch (err) {
      throw new ParityError('PARITY_BAD_INPUT', `cannot write ${values.out}: ${(err as Error).message}`);
    }
  } else process.stdout.write(text);
  return 0;
}
