/**
 * CLI conventions through the real `parity` bin (the compiled dist/, as users run it): every command,
 * group and subcommand answers --help with its usage and exit 0; --version; completion scripts; the
 * exit codes for bad input (2) and an unreachable database (3).
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { COMMANDS } from '../../../services/cli/commands.js';
import { groups } from '../../../services/cli/help.js';

const ROOT = fileURLToPath(new URL('../../..', import.meta.url));
const BIN = join(ROOT, 'services/cli/bin/parity.js');

function parity(...args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [BIN, ...args], {
      cwd: ROOT,
      env: { ...process.env, PARITY_LOG_LEVEL: 'warn' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}

describe('parity CLI conventions', () => {
  it('answers --help and -h on every command, group and the top level with usage and exit 0', async () => {
    const lines = [...COMMANDS.map((c) => c.name.split(' ')), ...[...groups(COMMANDS).keys()].map((g) => [g]), []];
    const failures: string[] = [];
    for (const words of lines) {
      for (const flag of ['--help', '-h']) {
        const r = await parity(...words, flag);
        if (r.code !== 0 || !r.stdout.includes('Usage') || r.stderr !== '')
          failures.push(`parity ${[...words, flag].join(' ')}: exit ${r.code}, stderr ${JSON.stringify(r.stderr.slice(0, 200))}`);
      }
    }
    // Help also wins over missing required options and comes before the spec is read.
    const late = await parity('verify', '--spec', 'does-not-exist.yaml', '--help');
    if (late.code !== 0 || !late.stdout.startsWith('Usage: parity verify'))
      failures.push(`verify --spec missing --help: exit ${late.code}`);
    const viaHelp = await parity('help', 'cdc', 'run');
    if (viaHelp.code !== 0 || !viaHelp.stdout.startsWith('Usage: parity cdc run')) failures.push(`help cdc run: exit ${viaHelp.code}`);
    expect(failures).toEqual([]);
  });

  it('prints its version from package.json', async () => {
    const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { version: string };
    for (const flag of ['--version', '-V']) {
      const r = await parity(flag);
      expect(r.code).toBe(0);
      expect(r.stdout).toBe(`parity ${pkg.version}\n`);
    }
  });

  it('prints completion scripts for bash and zsh, and refuses another shell with exit 2', async () => {
    const bash = await parity('completion', 'bash');
    expect(bash.code).toBe(0);
    expect(bash.stdout).toContain('complete -o filenames -F _parity parity');
    const zsh = await parity('completion', 'zsh');
    expect(zsh.code).toBe(0);
    expect(zsh.stdout.startsWith('#compdef parity')).toBe(true);
    const fish = await parity('completion', 'fish');
    expect(fish.code).toBe(2);
    expect(fish.stderr).toContain('bash or zsh');
  });

  it('exits 2 on bad input and 3 when the database is unreachable', async () => {
    expect((await parity('nonsense')).code).toBe(2);
    expect((await parity('stack')).code).toBe(2);
    const badOption = await parity('cdc', 'status', '--no-such-option');
    expect(badOption.code).toBe(2);
    expect(badOption.stderr).toContain('PARITY_BAD_INPUT');

    // A valid spec whose databases listen nowhere: a runtime failure, not bad input and not "no".
    const dir = mkdtempSync(join(tmpdir(), 'parity-cli-'));
    try {
      const example = readFileSync(join(ROOT, 'schemas/examples/orders-multicurrency.yaml'), 'utf8');
      const file = join(dir, 'unreachable.yaml');
      // Port 1 on loopback: nothing listens there, so the connection is refused at once.
      writeFileSync(file, example.replace('${PARITY_SOURCE_URL}', 'postgres://parity@127.0.0.1:1/nowhere'));
      const r = await parity('gate', 'contract', '--spec', file);
      expect(r.code, r.stderr).toBe(3);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
