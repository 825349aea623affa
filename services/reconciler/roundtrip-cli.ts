/**
 * `parity spec check-roundtrip`: option parsing, the source session and printing. The check itself
 * is roundtrip.ts.
 */
import { parseOptions, required } from '../core/options.js';
import { ParityError } from '../core/errors.js';
import { redact } from '../core/secrets.js';
import { loadSpec } from '../core/spec.js';
import { postgresDialect } from './dialect.js';
import { DEFAULT_ROUNDTRIP_SAMPLE, checkRoundtrip, formatRoundtrip } from './roundtrip.js';
import { connectPg, openReadSession } from './snapshot.js';

const USAGE = 'parity spec check-roundtrip --spec FILE [--sample N] [--json]';
/** A sample is read into one statement's result; more than this is a full verification's job. */
const MAX_SAMPLE = 10_000_000;

/**
 * `parity spec check-roundtrip`: exit 0 when reverse(mapping(row)) = row on every sampled
 * representable row, 1 when not (the rows are listed), 2 for bad input.
 */
export async function specCheckRoundtripCommand(argv: string[]): Promise<number> {
  const { values } = parseOptions(argv, { spec: { type: 'string' }, sample: { type: 'string' }, json: { type: 'boolean' } }, USAGE);
  const { spec } = loadSpec(required(values.spec, '--spec', USAGE));
  let sample = DEFAULT_ROUNDTRIP_SAMPLE;
  if (values.sample !== undefined) {
    sample = Number(values.sample);
    if (!/^\d+$/.test(values.sample) || sample < 1 || sample > MAX_SAMPLE)
      throw new ParityError(
        'PARITY_BAD_INPUT',
        `--sample must be an integer from 1 to ${MAX_SAMPLE}, got ${JSON.stringify(values.sample)}`,
        {
          hint: `usage: ${USAGE}`,
        },
      );
  }
  if (!spec.reverse)
    throw new ParityError('PARITY_BAD_INPUT', 'the spec has no reverse section, so there is no round trip to check', {
      hint: "add reverse: { mapping: { <old column>: <SQL over the new row> } } beside mapping (see the README's Reverse mapping)",
    });
  const db = await openReadSession(connectPg, spec.source.database, postgresDialect, `parity-roundtrip ${spec.name}`);
  try {
    const result = await checkRoundtrip(spec, db, { sample });
    process.stdout.write(values.json ? `${redact(JSON.stringify(result, null, 2))}\n` : redact(formatRoundtrip(result)));
    return result.passed ? 0 : 1;
  } finally {
    await db.end().catch(() => undefined);
  }
}
