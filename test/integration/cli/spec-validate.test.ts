/**
 * `parity spec validate` on specs that used to pass validation and fail (or misbehave) later: each is
 * refused with exit 2, naming the file, the field and what to write instead (17.4-17.6). Runs the
 * built CLI (`npm run build`); needs no service of the stack.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const ROOT = fileURLToPath(new URL('../../..', import.meta.url));
const EXAMPLE = readFileSync(join(ROOT, 'schemas/examples/orders-multicurrency.yaml'), 'utf8');

function parity(args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const child = spawn(process.execPath, [join(ROOT, 'services/cli/bin/parity.js'), ...args], {
    cwd: ROOT,
    env: {
      ...process.env,
      PARITY_SOURCE_URL: 'postgres://app:${DB_PASS}@127.0.0.1:5432/shop'.replace('${DB_PASS}', 'pw-by-position-1'),
      DB_PASS: 'unused',
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const out = { code: null as number | null, stdout: '', stderr: '' };
  child.stdout.on('data', (d: Buffer) => (out.stdout += d.toString()));
  child.stderr.on('data', (d: Buffer) => (out.stderr += d.toString()));
  return new Promise((resolve) => child.once('exit', (code) => resolve({ ...out, code })));
}

function write(text: string, name = 'spec.yaml'): string {
  const file = join(mkdtempSync(join(tmpdir(), 'parity-validate-')), name);
  writeFileSync(file, text);
  return file;
}

describe('parity spec validate', () => {
  it('accepts the worked example', async () => {
    const r = await parity(['spec', 'validate', join(ROOT, 'schemas/examples/orders-multicurrency.yaml')]);
    expect(r.stderr).toBe('');
    expect(r).toMatchObject({ code: 0, stdout: 'ok\n' });
  });

  it('refuses smuggled comments, bad names, long identifiers and a tight lock margin: exit 2, each field named', async () => {
    const text = EXAMPLE.replace('total_amount_minor: total_amount::bigint', 'total_amount_minor: total_amount::bigint /*')
      .replace('slot: parity_orders', 'slot: parity-orders')
      .replace('  table: orders\n', `  table: ${'ü'.repeat(40)}\n`)
      .replace('driftMarginMs: 1000', 'driftMarginMs: 10000');
    const file = write(text);
    const r = await parity(['spec', 'validate', file]);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain(`PARITY_SPEC_INVALID: ${file} is not a valid migration spec`);
    expect(r.stderr).toMatch(/mapping\.total_amount_minor \(line \d+\): the mapping contains a comment/);
    expect(r.stderr).toMatch(/cdc\.slot \(line \d+\): replication slot names may contain only/);
    expect(r.stderr).toMatch(/source\.table \(line \d+\): PostgreSQL names are at most 63 bytes/);
    expect(r.stderr).toMatch(/lock\.driftMarginMs \(line \d+\): driftMarginMs must be below ttlMs - renewEveryMs/);
    // The password came through a variable named like nothing secret; its position makes it one.
    expect(r.stderr).not.toContain('pw-by-position-1');
  });

  it('refuses a YAML alias bomb as bad input naming the file (exit 2, not an internal error)', async () => {
    const lines = ['a: &a ["x","x","x","x","x","x","x","x","x"]'];
    for (const [name, prev] of [
      ['b', 'a'],
      ['c', 'b'],
      ['d', 'c'],
      ['e', 'd'],
      ['f', 'e'],
      ['g', 'f'],
    ])
      lines.push(`${name}: &${name} [${Array(9).fill(`*${prev}`).join(',')}]`);
    const file = write(`${lines.join('\n')}\n`, 'bomb.yaml');
    const r = await parity(['spec', 'validate', file]);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain(`PARITY_SPEC_INVALID: ${file} is not a valid migration spec`);
    expect(r.stderr).toMatch(/\(yaml\): the YAML cannot be expanded/);
    expect(r.stderr).not.toContain('PARITY_INTERNAL');
  });
});
