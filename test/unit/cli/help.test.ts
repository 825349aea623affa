/**
 * The command table's help and completion: every command documents its options, an example and the
 * exit codes; the options it documents are exactly those its handler parses (read from the service's
 * cli.ts, so a new option without help, or help for a removed option, fails here); the bash completion
 * script completes commands, subcommands, options and option values.
 */
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, test } from 'vitest';
import { COMMANDS } from '../../../services/cli/commands.js';
import { bashCompletion, zshCompletion } from '../../../services/cli/completion.js';
import { commandHelp, flagName, groupHelp, groups, topHelp, usageLine } from '../../../services/cli/help.js';
import { match, wantsHelp } from '../../../services/cli/main.js';

const ROOT = fileURLToPath(new URL('../../..', import.meta.url));

/** The cli module each command's handler lives in, by the command's first word. */
const MODULES: Record<string, string> = {
  stack: 'stack/cli',
  spec: 'cli/spec-cli',
  compat: 'compat-gate/cli',
  serve: 'status/cli',
  cache: 'cache-versioner/cli',
  migrate: 'coordinator/cli',
  flags: 'coordinator/cli',
  lint: 'coordinator/cli',
  expand: 'coordinator/cli',
  enforce: 'coordinator/cli',
  contract: 'coordinator/cli',
  backfill: 'backfill/cli',
  cdc: 'cdc/cli',
  verify: 'reconciler/cli',
  reconcile: 'reconciler/cli',
  report: 'reconciler/cli',
  gate: 'reconciler/cli',
  demo: 'demo/cli',
  cutover: 'reverse-sync/cli',
  rollback: 'reverse-sync/cli',
  'reverse-sync': 'reverse-sync/cli',
};

/** Commands whose handler lives in another module than their first word's. */
const COMMAND_MODULES: Record<string, string> = {
  'spec check-roundtrip': 'reconciler/roundtrip-cli',
};

function moduleOf(name: string): string {
  const module = COMMAND_MODULES[name] ?? MODULES[name.split(' ')[0]!];
  if (!module) throw new Error(`add the cli module of "${name}" to MODULES`);
  return module;
}

/** Every option name a service's cli.ts passes to parseOptions (`spec: { type: 'string' }` -> `--spec`). */
function parsedOptions(module: string): Set<string> {
  const source = readFileSync(`${ROOT}/services/${module}.ts`, 'utf8');
  const names = new Set<string>();
  for (const m of source.matchAll(/['"]?([a-z][a-z0-9-]*)['"]?\s*:\s*\{\s*type:\s*'(?:string|boolean)'/g)) names.add(`--${m[1]}`);
  names.delete('--help');
  return names;
}

describe('the command table', () => {
  test('command names are unique and every command has help, options and an example', () => {
    expect(new Set(COMMANDS.map((c) => c.name)).size).toBe(COMMANDS.length);
    for (const c of COMMANDS) {
      const text = commandHelp(c);
      expect(text).toMatch(/^Usage: parity /);
      expect(text).toContain('Options:');
      expect(text).toContain('--help');
      expect(c.examples.length).toBeGreaterThan(0);
      for (const e of c.examples) expect(e).toContain(`parity ${c.name}`);
      expect(text).toContain('Exit codes: 0 ok, 1 a check said no, 2 bad input');
      for (const o of c.options) expect(text).toContain(o.flag);
    }
  });

  test('the options each command documents are the ones its service parses, per cli module', () => {
    const byModule = new Map<string, Set<string>>();
    for (const c of COMMANDS) {
      const m = moduleOf(c.name);
      const set = byModule.get(m) ?? new Set<string>();
      for (const o of c.options) set.add(flagName(o));
      byModule.set(m, set);
    }
    const drift: Record<string, { undocumented: string[]; unparsed: string[] }> = {};
    for (const [module, documented] of byModule) {
      const parsed = parsedOptions(module);
      const undocumented = [...parsed].filter((f) => !documented.has(f));
      const unparsed = [...documented].filter((f) => !parsed.has(f));
      if (undocumented.length + unparsed.length > 0) drift[module] = { undocumented, unparsed };
    }
    // Fix by adding the option's help to services/cli/commands.ts (or removing what is gone).
    expect(drift).toEqual({});
  });

  test('required options and arguments appear in the usage line', () => {
    const advance = COMMANDS.find((c) => c.name === 'migrate advance')!;
    expect(usageLine(advance)).toBe('Usage: parity migrate advance --spec FILE --reason TEXT [options]');
    const set = COMMANDS.find((c) => c.name === 'flags set')!;
    expect(usageLine(set)).toBe('Usage: parity flags set --spec FILE --reason TEXT NAME=VALUE ... [options]');
  });

  test('groups list their subcommands; the top help lists every command', () => {
    const g = groups(COMMANDS);
    expect([...g.keys()]).toEqual(
      expect.arrayContaining(['stack', 'spec', 'compat', 'cache', 'migrate', 'flags', 'backfill', 'cdc', 'gate']),
    );
    expect(groupHelp('cdc', g.get('cdc')!)).toMatch(/^Usage: parity cdc <run\|status\|drop-slot\|snapshot>/);
    const top = topHelp(COMMANDS);
    for (const c of COMMANDS) expect(top).toContain(c.name);
    expect(top).toContain('--version');
    expect(top).toContain('completion bash|zsh');
  });

  test('--help is found anywhere before --, and the longest command wins', () => {
    expect(wantsHelp(['--spec', 'x.yaml', '--help'])).toBe(true);
    expect(wantsHelp(['-h'])).toBe(true);
    expect(wantsHelp(['--', '--help'])).toBe(false);
    expect(wantsHelp(['--spec', 'help'])).toBe(false);
    expect(match(['cdc', 'run', '--spec', 'f'])?.entry.name).toBe('cdc run');
    expect(match(['gate', 'contract'])?.rest).toEqual([]);
    expect(match(['stack'])).toBeUndefined();
  });
});

describe('shell completion', () => {
  const script = bashCompletion(COMMANDS);

  /** What bash completes for the words typed so far (the last one is being completed). */
  function complete(...words: string[]): string[] {
    const quoted = ['parity', ...words].map((w) => `'${w}'`).join(' ');
    const program = `${script}\nCOMP_WORDS=(${quoted}); COMP_CWORD=${words.length}; _parity; printf '%s\\n' "\${COMPREPLY[@]}"`;
    const result = spawnSync('bash', ['-c', program], { encoding: 'utf8', cwd: ROOT });
    expect(result.status, result.stderr).toBe(0);
    return result.stdout.split('\n').filter(Boolean);
  }

  test('bash: the script parses', () => {
    const result = spawnSync('bash', ['-n'], { input: script, encoding: 'utf8' });
    expect(result.status, result.stderr).toBe(0);
  });

  test('bash: commands, subcommands, options and values', () => {
    expect(complete('')).toEqual(expect.arrayContaining(['stack', 'cdc', 'verify', 'demo', 'help', 'completion', '--version']));
    expect(complete('st')).toEqual(['stack']);
    expect(complete('cdc', '')).toEqual(['run', 'status', 'drop-slot', 'snapshot']);
    expect(complete('backfill', 'run', '--w')).toEqual(['--workers']);
    expect(complete('verify', '--re')).toEqual(['--repair', '--recheck-wait-ms']);
    expect(complete('report', '--format', '')).toEqual(['json', 'md', 'html']);
    expect(complete('stack', 'up', 'red')).toEqual(['redis']);
    expect(complete('completion', '')).toEqual(['bash', 'zsh']);
    expect(complete('report', '--spec', 'package.j')).toEqual(['package.json']);
  });

  test('zsh: every command and option appears', () => {
    const zsh = zshCompletion(COMMANDS);
    expect(zsh.startsWith('#compdef parity\n')).toBe(true);
    for (const c of COMMANDS) {
      expect(zsh).toContain(`'${c.name}')`);
      for (const o of c.options) expect(zsh).toContain(`'${flagName(o)}:`);
    }
    // Single quotes inside descriptions are closed and reopened, so the script stays one word per item.
    expect(zsh).not.toMatch(/spec's expand/);
  });
});
