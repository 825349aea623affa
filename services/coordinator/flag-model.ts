/**
 * The migration's feature flags: their names, safe defaults, parsing of `NAME=VALUE` assignments,
 * and how migration-wide values and one cohort's overrides combine. Pure code, shared by the
 * coordinator (which writes flags) and the application client (which reads them).
 */
import { ParityError } from '../core/errors.js';

export type ReadPath = 'old' | 'dark' | 'new';
export const READ_PATHS: readonly ReadPath[] = ['old', 'dark', 'new'];

/** Which representation applications write: the old one (dual-writing the new when on), or only the new one after cutover (issue 23). */
export type WritePath = 'old' | 'new';
export const WRITE_PATHS: readonly WritePath[] = ['old', 'new'];

export interface Flags {
  /** Applications write the new representation too. */
  dualWrite: boolean;
  /** Where reads go: old only, old with the new compared in the dark, or the new path. */
  read: ReadPath;
  /** Share of keys (0-100, by consistent hash) that take the `read` path; the rest read old. */
  readPercent: number;
  /** Where writes go: `new` only after `parity cutover` (reverse sync keeps the old side current), else `old`. */
  write: WritePath;
  /** Kill switches: stop the backfill / stop repairs at once. */
  killBackfill: boolean;
  killRepair: boolean;
}

/** Safe defaults: nothing new is written or read, nothing is stopped. */
export const DEFAULT_FLAGS: Readonly<Flags> = Object.freeze({
  dualWrite: false,
  read: 'old',
  readPercent: 0,
  write: 'old',
  killBackfill: false,
  killRepair: false,
});

/** Flag names as written on the command line and stored in the Redis hash. */
export const FLAG_NAMES = ['dual-write', 'read', 'read-percent', 'write', 'kill-backfill', 'kill-repair'] as const;
export type FlagName = (typeof FLAG_NAMES)[number];

const FIELD: Record<FlagName, keyof Flags> = {
  'dual-write': 'dualWrite',
  read: 'read',
  'read-percent': 'readPercent',
  write: 'write',
  'kill-backfill': 'killBackfill',
  'kill-repair': 'killRepair',
};

const USAGE = 'dual-write=on|off, read=old|dark|new, read-percent=0..100, write=old|new, kill-backfill=on|off, kill-repair=on|off';

function parseSwitch(raw: string): 'on' | 'off' | undefined {
  const v = raw.trim().toLowerCase();
  if (['on', 'true', '1', 'yes'].includes(v)) return 'on';
  if (['off', 'false', '0', 'no'].includes(v)) return 'off';
  return undefined;
}

function parsePercent(raw: string): string | undefined {
  const v = raw.trim().replace(/%$/, '');
  if (!/^\d+(\.\d{1,2})?$/.test(v)) return undefined;
  const n = Number(v);
  return n >= 0 && n <= 100 ? String(n) : undefined;
}

/** Normalizes one value (the stored form); undefined when it is not valid for the flag. */
export function normalizeFlagValue(name: FlagName, raw: string): string | undefined {
  switch (name) {
    case 'dual-write':
    case 'kill-backfill':
    case 'kill-repair':
      return parseSwitch(raw);
    case 'read':
      return (READ_PATHS as readonly string[]).includes(raw.trim().toLowerCase()) ? raw.trim().toLowerCase() : undefined;
    case 'read-percent':
      return parsePercent(raw);
    case 'write':
      return (WRITE_PATHS as readonly string[]).includes(raw.trim().toLowerCase()) ? raw.trim().toLowerCase() : undefined;
  }
}

/**
 * Parses `NAME=VALUE` arguments into normalized pairs. Throws PARITY_BAD_INPUT naming the first
 * bad assignment and the accepted forms; nothing is applied when any is bad.
 */
export function parseFlagAssignments(args: readonly string[]): [FlagName, string][] {
  if (args.length === 0)
    throw new ParityError('PARITY_BAD_INPUT', 'no flag to set', { hint: `write NAME=VALUE, e.g. read=dark read-percent=10 (${USAGE})` });
  const out = new Map<FlagName, string>();
  for (const arg of args) {
    const eq = arg.indexOf('=');
    const name = (eq > 0 ? arg.slice(0, eq) : arg).trim().toLowerCase();
    if (eq <= 0) throw new ParityError('PARITY_BAD_INPUT', `"${arg}" is not NAME=VALUE`, { hint: USAGE });
    if (!(FLAG_NAMES as readonly string[]).includes(name)) {
      throw new ParityError('PARITY_BAD_INPUT', `unknown flag "${name}"`, { hint: `flags are ${USAGE}` });
    }
    const value = normalizeFlagValue(name as FlagName, arg.slice(eq + 1));
    if (value === undefined) throw new ParityError('PARITY_BAD_INPUT', `bad value in "${arg}"`, { hint: USAGE });
    out.set(name as FlagName, value);
  }
  return [...out.entries()];
}

/** Which layer a flag's effective value came from. */
export type FlagSource = 'default' | 'migration' | 'cohort';

export interface EffectiveFlags {
  flags: Flags;
  sources: Record<keyof Flags, FlagSource>;
  /** Stored values that are not valid (ignored, the layer below wins); e.g. hand-edited in Redis. */
  invalid: string[];
}

function applyLayer(
  flags: Flags,
  sources: Record<keyof Flags, FlagSource>,
  hash: Record<string, string>,
  layer: FlagSource,
  invalid: string[],
): void {
  for (const name of FLAG_NAMES) {
    const raw = hash[name];
    if (raw === undefined) continue;
    const value = normalizeFlagValue(name, raw);
    if (value === undefined) {
      invalid.push(`${layer}:${name}=${raw}`);
      continue;
    }
    const field = FIELD[name];
    if (field === 'read') flags.read = value as ReadPath;
    else if (field === 'write') flags.write = value as WritePath;
    else if (field === 'readPercent') flags.readPercent = Number(value);
    else flags[field] = value === 'on';
    sources[field] = layer;
  }
}

/** Defaults, overridden by the migration-wide hash, overridden by the cohort's hash. */
export function effectiveFlags(migrationHash: Record<string, string>, cohortHash: Record<string, string> = {}): EffectiveFlags {
  const flags: Flags = { ...DEFAULT_FLAGS };
  const sources = Object.fromEntries(Object.keys(DEFAULT_FLAGS).map((k) => [k, 'default'])) as Record<keyof Flags, FlagSource>;
  const invalid: string[] = [];
  applyLayer(flags, sources, migrationHash, 'migration', invalid);
  applyLayer(flags, sources, cohortHash, 'cohort', invalid);
  return { flags, sources, invalid };
}

/** The stored (hash) form of flags, e.g. for rollbacks that write several at once. */
export function flagsToAssignments(flags: Partial<Flags>): [FlagName, string][] {
  const out: [FlagName, string][] = [];
  for (const name of FLAG_NAMES) {
    const v = flags[FIELD[name]];
    if (v === undefined) continue;
    out.push([name, typeof v === 'boolean' ? (v ? 'on' : 'off') : String(v)]);
  }
  return out;
}
