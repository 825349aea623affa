/**
 * `--help` text for `parity`, its command groups and every command, written from the command table
 * (services/cli/commands.ts) so the help, the completion and the dispatch never disagree.
 */
import type { CommandEntry, OptionHelp } from './command.js';
import { EXIT_CODES_TEXT } from './exit-codes.js';

/** The option every command takes; handled by the CLI before the command's module is loaded. */
export const HELP_OPTION: OptionHelp = { flag: '-h, --help', help: 'print this help and exit 0' };

/** The flag of an option without its value name: `--spec FILE` -> `--spec`. */
export function flagName(option: OptionHelp): string {
  return option.flag.split(' ')[0] ?? option.flag;
}

/** The group words of the table: `stack`, `spec`, ... (first words of multi-word commands). */
export function groups(commands: readonly CommandEntry[]): Map<string, CommandEntry[]> {
  const out = new Map<string, CommandEntry[]>();
  for (const c of commands) {
    const words = c.name.split(' ');
    if (words.length < 2) continue;
    const list = out.get(words[0]!) ?? [];
    list.push(c);
    out.set(words[0]!, list);
  }
  return out;
}

function table(rows: [string, string][], indent = '  '): string[] {
  const width = Math.max(0, ...rows.map(([left]) => left.length));
  return rows.map(([left, right]) => `${indent}${left.padEnd(width)}  ${right}`);
}

/** The usage line: required options and arguments spelled out, the rest as [options]. */
export function usageLine(entry: CommandEntry): string {
  const required = entry.options.filter((o) => o.required).map((o) => o.flag);
  return ['Usage: parity', entry.name, ...required, ...(entry.args ? [entry.args] : []), '[options]'].join(' ');
}

/** `parity <command> --help`. */
export function commandHelp(entry: CommandEntry): string {
  const lines = [
    usageLine(entry),
    '',
    `${entry.summary}.`,
    '',
    'Options:',
    ...table([...entry.options, HELP_OPTION].map((o) => [o.flag, `${o.help}${o.required ? ' (required)' : ''}`])),
  ];
  lines.push('', entry.examples.length > 1 ? 'Examples:' : 'Example:', ...entry.examples.map((e) => `  ${e}`));
  lines.push('', `Exit codes: ${EXIT_CODES_TEXT}${entry.no ? `\n  1 here means: ${entry.no}` : ''}`, '');
  return lines.join('\n');
}

/** `parity <group> --help`: the group's subcommands. */
export function groupHelp(group: string, entries: readonly CommandEntry[]): string {
  const lines = [`Usage: parity ${group} <${entries.map((e) => e.name.split(' ')[1]).join('|')}> [options]`, '', 'Commands:'];
  lines.push(...table(entries.map((e) => [e.name, e.summary])));
  lines.push('', `Run parity ${group} <command> --help for its options and an example.`, '');
  return lines.join('\n');
}

/** `parity --help`. */
export function topHelp(commands: readonly CommandEntry[]): string {
  return [
    'parity: zero-downtime data migrations (CDC, verification, repair, caches, schema gates, coordinator)',
    '',
    'Usage: parity <command> [options]',
    '',
    'Commands:',
    ...table(commands.map((c) => [c.name, c.summary])),
    '',
    'Options:',
    ...table([
      ['-h, --help', "print this help; `parity <command> --help` for a command's options and an example"],
      ['-V, --version', "print parity's version"],
    ]),
    '',
    'Other commands:',
    ...table([
      ['help [command]', 'the same as --help'],
      ['completion bash|zsh', 'print a shell completion script: source <(parity completion bash)'],
    ]),
    '',
    `Exit codes: ${EXIT_CODES_TEXT}`,
    '',
  ].join('\n');
}
