import { readFile, writeFile } from 'node:fs/promises';
import { parseOptions, required, intOption } from '../core/options.js';
import { createKafkaForSpec, createPgPool } from '../core/clients.js';
import { recordEvidence } from '../core/control.js';
import { fromPgError, ParityError } from '../core/errors.js';
import { createLogger } from '../core/log.js';
import { controlDatabase, loadSpec } from '../core/spec.js';
import { checkCompatibility, parseSchemaType } from './checker.js';
import { formatGateTable, runCompatGate, type GateReport } from './gate.js';
import type { JsonCompatibilityPolicy } from './json-schema-compat.js';
import { parseLevel } from './levels.js';
import { createCcompatClient } from './registry-client.js';

const CHECK_USAGE =
  'parity compat check --type avro|json|protobuf --level BACKWARD|BACKWARD_TRANSITIVE|FORWARD|FORWARD_TRANSITIVE|FULL|FULL_TRANSITIVE|NONE ' +
  '--schema NEW_FILE [--previous OLD_FILE ...] [--policy strict|lenient] [--reference IMPORT=FILE ...] [--json]';

/** Reads a schema file; a missing or unreadable file is bad input (exit code 2), named in the error. */
export async function readSchemaFile(path: string, flag: string): Promise<string> {
  try {
    return await readFile(path, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    throw new ParityError(
      'PARITY_BAD_INPUT',
      `cannot read ${flag} file ${path}: ${code === 'ENOENT' ? 'no such file' : err instanceof Error ? err.message : String(err)}`,
      {
        hint: `usage: ${CHECK_USAGE}`,
        cause: err,
      },
    );
  }
}

function parsePolicy(value: string | undefined): JsonCompatibilityPolicy {
  if (value === undefined) return 'STRICT';
  const upper = value.toUpperCase();
  if (upper === 'STRICT' || upper === 'LENIENT') return upper;
  throw new ParityError('PARITY_BAD_INPUT', `unknown JSON Schema compatibility policy "${value}"`, {
    hint: 'use strict (Confluent default) or lenient',
  });
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
      reference: { type: 'string', multiple: true },
      // The result is always one JSON line; --json is accepted like on every reporting command.
      json: { type: 'boolean' },
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
  const protobufReferences = new Map<string, { text: string }>();
  for (const spec of values.reference ?? []) {
    const eq = spec.indexOf('=');
    if (type !== 'protobuf' || eq <= 0 || eq === spec.length - 1) {
      throw new ParityError(
        'PARITY_BAD_INPUT',
        type !== 'protobuf' ? '--reference applies to --type protobuf only' : `--reference "${spec}" must be IMPORT=FILE`,
        {
          hint: 'e.g. --reference common/money.proto=schemas/money.proto (the import path exactly as the schema writes it)',
        },
      );
    }
    protobufReferences.set(spec.slice(0, eq), { text: await readSchemaFile(spec.slice(eq + 1), '--reference') });
  }
  const result = checkCompatibility({ type, level, schema, previous, options: { jsonPolicy: policy, protobufReferences } });
  process.stdout.write(`${JSON.stringify(result)}\n`);
  return result.compatible ? 0 : 1;
}

const GATE_USAGE =
  'parity compat gate --spec FILE [--skip-live] [--skip-evidence] [--sample N] [--timeout-ms MS] [--json] [--out REPORT.json]';

/** Appends the gate's report to the control database's evidence table, where the contract gate reads it. */
async function recordGateEvidence(connectionString: string, schema: string, report: GateReport): Promise<void> {
  const pool = createPgPool(connectionString, { applicationName: 'parity-compat-gate', max: 1 });
  try {
    const failing = report.rows.filter((r) => r.verdict === 'FAIL').length;
    await recordEvidence(pool, schema, {
      migration: report.migration,
      kind: 'compat',
      passed: report.passed,
      summary: report.passed
        ? `compat gate passed: ${report.subjects.length} subject(s), ${report.rows.length} check(s)`
        : `compat gate failed: ${report.findings.length} finding(s), ${failing} failing check(s)`,
      value: report as unknown as Record<string, unknown>,
    });
  } catch (err) {
    throw fromPgError(err, 'recording the compat gate evidence in the control database');
  } finally {
    await pool.end();
  }
}

/**
 * `parity compat gate --spec FILE`: runs every event-schema check of the spec (registry and local
 * compatibility per subject, consumers' reader schemas, live events, semantic changes), prints the
 * subjects x consumers x verdict table (or the JSON report with --json), records the report as `compat`
 * evidence for the contract gate, and exits 0 only when every check passes (1 otherwise, 2 on bad input).
 */
export async function compatGate(argv: string[]): Promise<number> {
  const { values } = parseOptions(
    argv,
    {
      spec: { type: 'string' },
      'skip-live': { type: 'boolean' },
      'skip-evidence': { type: 'boolean' },
      sample: { type: 'string' },
      'timeout-ms': { type: 'string' },
      json: { type: 'boolean' },
      out: { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    },
    GATE_USAGE,
  );
  if (values.help) {
    process.stdout.write(`usage: ${GATE_USAGE}\n`);
    return 0;
  }
  const loaded = loadSpec(required(values.spec, '--spec', GATE_USAGE));
  const { spec } = loaded;
  const logger = createLogger({ name: 'compat-gate' });
  const kafka = values['skip-live'] ? undefined : createKafkaForSpec(spec.infra.kafka, { clientId: 'parity-compat-gate', logger });
  const report = await runCompatGate(loaded, {
    registry: createCcompatClient(spec.infra.registry),
    ...(kafka ? { kafka } : {}),
    sample: {
      perPartition: intOption(values.sample, '--sample', GATE_USAGE) ?? 500,
      timeoutMs: intOption(values['timeout-ms'], '--timeout-ms', GATE_USAGE) ?? 30_000,
      logger,
    },
    logger,
  });
  if (values.out) {
    try {
      await writeFile(values.out, `${JSON.stringify(report, null, 2)}\n`);
    } catch (err) {
      throw new ParityError('PARITY_BAD_INPUT', `cannot write ${values.out}: ${err instanceof Error ? err.message : String(err)}`, {
        cause: err,
      });
    }
  }
  if (!values['skip-evidence']) await recordGateEvidence(controlDatabase(spec), spec.control.schema, report);
  process.stdout.write(values.json ? `${JSON.stringify(report)}\n` : formatGateTable(report));
  return report.passed ? 0 : 1;
}
