/**
 * Builds a spec for a test from the worked example, pointed at the test's own database, slot,
 * topics and keys, so tests exercise the same spec shape users write.
 */
import { readFileSync, writeFileSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseDocument } from 'yaml';
import { parseSpec, type LoadedSpec } from '../../services/core/spec.js';
import { STACK } from './stack.js';

const EXAMPLE = fileURLToPath(new URL('../../schemas/examples/orders-multicurrency.yaml', import.meta.url));

export interface TestSpec extends LoadedSpec {
  /** Path of the written YAML file, for CLI calls. */
  path: string;
}

/** Example spec with `overrides` applied at dotted paths (e.g. {'source.database': url, 'cdc.slot': 's1'}). */
export function writeTestSpec(overrides: Record<string, unknown>): TestSpec {
  const doc = parseDocument(readFileSync(EXAMPLE, 'utf8'));
  for (const [path, value] of Object.entries(overrides)) {
    const parts = path.split('.');
    if (value === undefined) doc.deleteIn(parts);
    else doc.setIn(parts, value);
  }
  const text = doc.toString();
  const dir = mkdtempSync(join(tmpdir(), 'parity-spec-'));
  const path = join(dir, 'spec.yaml');
  writeFileSync(path, text);
  const env = { ...process.env, ...STACK };
  return { ...parseSpec(text, path, env), path };
}
