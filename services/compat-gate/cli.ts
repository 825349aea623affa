import { readFile } from 'node:fs/promises';
import { parseOptions, required } from '../cli/command.js';
import { ParityError } from '../core/errors.js';
import { checkCompatibility, parseSchemaType } from './checker.js';
import type { JsonCompatibilityPolicy } from './json-schema-compat.js';
import { parseLevel } from './levels.js';

const CHECK_USAGE =
  'parity compat check --type avro|json --level BACKWARD|BACKWARD_TRANSITIVE|FORWARD|FORWARD_TRANSITIVE|FULL|FULL_TRANSITIVE|NONE ' +
  '--schema NEW_FILE [--previous OLD_FILE ...] [--policy strict|lenient]';

/** Reads a schema file; a missing or unreadable file is bad input (exit code 2), named in the error. */
export async function readSchemaFile(path: string, flag: string): Promise<string> {
  try {
    return await readFile(path, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    throw new ParityError('PARITY_BAD_INPUT', `cannot read ${flag} file ${path}: ${code === 'ENOENT' ? 'no such file' : err instanceof Error ? err.message : String(err)}`, {
      hint: `usage: ${CHECK_USAGE}`,
      cause: err,
    });
  }
}

function parsePolicy(value: string | undefined): JsonCompatibilityPolicy {
  if (value === undefined) return 'STRICT';
  const upper = value.toUpperCase();
  if (upper === 'STRICT' || upper === 'LENIENT') return upper;
  throw new ParityError('PARITY_BAD_INPUT', `unknown JSON Schema compatibility policy "${value}"`, { hint: 'use strict (Confluent default) or lenient' });
}

/**
 * `parity compat check`: checks a new schema against previous versions (oldest first) under a
 * compatibility level with Confluent Schema Registry's semantics, without a registry. Prints
 * `{"compatible": bool, "messages": [...]}`; exits 0 when compatible, 1 when not, 2 on bad input.
 */
export async function compatCheck(argv: string[]): Promise<number> {
  const { values } = parseOptions(
    argv,
    {
      type: { type: 'string' },
      level: { type: 'string' },
      schema: { type: 'string' },
      previous: { type: 'string', multiple: true },
      policy: { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    },
    CHECK_USAGE,
  );
  if (values.help) {
    process.stdout.write(`usage: ${CHECK_USAGE}\n`);
    return 0;
  }
  const type = parseSchemaType(required(values.type, '--type', CHECK_USAGE));
  const level = parseLevel(required(values.level, '--level', CHECK_USAGE));
  const schemaPath = required(values.schema, '--schema', CHECK_USAGE);
  const policy = parsePolicy(values.policy);
  const schema = await readSchemaFile(schemaPath, '--schema');
  const previous = await Promise.all((values.previous ?? []).map((p) => readSchemaFile(p, '--previous')));
  const result = checkCompatibility({ type, level, schema, previous, options: { jsonPolicy: policy } });
  process.stdout.write(`${JSON.stringify(result)}\n`);
  return result.compatible ? 0 : 1;
}
