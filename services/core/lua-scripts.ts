/**
 * The one loader of parity's Redis scripts (services/<name>/lua/<verb>-<numKeys>.lua). Scripts share
 * code through includes, as BullMQ does: a line `--- @include "<name>"` is replaced by
 * services/core/lua/includes/<name>.lua (each include inlined once per script, includes may include
 * others). Scripts are read once per process and defined on each Redis client once with ioredis
 * `defineCommand`, which runs them by EVALSHA and resends them after a NOSCRIPT (a restarted Redis).
 */
import { readFileSync, readdirSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import type { Redis } from 'ioredis';

const INCLUDES_DIR = fileURLToPath(new URL('./lua/includes/', import.meta.url));
const INCLUDE_LINE = /^--- @include "([a-z0-9-]+)"[ \t]*$/gm;

/** One script file: `<verb>-<numKeys>.lua`, or `<verb>-n.lua` when the caller passes the key count. */
export interface LuaScript {
  /** e.g. "release" for release-1.lua. */
  verb: string;
  /** null for `-n` scripts: the caller passes the number of keys first. */
  numberOfKeys: number | null;
  /** The source with every include inlined. */
  lua: string;
}

const includeCache = new Map<string, string>();

function includeSource(name: string, from: string): string {
  let text = includeCache.get(name);
  if (text === undefined) {
    try {
      text = readFileSync(`${INCLUDES_DIR}${name}.lua`, 'utf8');
    } catch (err) {
      throw new Error(`${from}: Lua include "${name}" not found in services/core/lua/includes (${(err as Error).message})`);
    }
    includeCache.set(name, text);
  }
  return text;
}

/** Replaces every `--- @include "name"` line of `source` by the include's text, each include once. */
export function inlineIncludes(source: string, file: string, seen: Set<string> = new Set()): string {
  return source.replace(INCLUDE_LINE, (_line, name: string) => {
    if (seen.has(name)) return `-- (include "${name}" already inlined above)`;
    seen.add(name);
    return inlineIncludes(includeSource(name, file), `${name}.lua`, seen).trimEnd();
  });
}

const dirCache = new Map<string, LuaScript[]>();

/** Every script in `dir` (a service's `lua/` folder as a file URL), read once per process, includes inlined. */
export function readLuaScripts(dir: URL): LuaScript[] {
  const path = fileURLToPath(dir);
  let scripts = dirCache.get(path);
  if (scripts) return scripts;
  scripts = readdirSync(path)
    .filter((f) => f.endsWith('.lua'))
    .map((file) => {
      const m = /^([a-z-]+)-(\d+|n)\.lua$/.exec(file);
      if (!m) throw new Error(`Lua script ${file} must be named <verb>-<numKeys>.lua (or <verb>-n.lua)`);
      const lua = inlineIncludes(readFileSync(`${path}/${file}`, 'utf8'), file);
      return { verb: m[1] as string, numberOfKeys: m[2] === 'n' ? null : Number(m[2]), lua };
    });
  dirCache.set(path, scripts);
  return scripts;
}

const defined = new WeakMap<Redis, Set<string>>();

/**
 * Defines each script of `dir` on `redis` once, under the command name `commandOf(verb)` returns
 * (e.g. `parityRenew`). Idempotent per client and command.
 */
export function defineLuaScripts(redis: Redis, dir: URL, commandOf: (verb: string) => string): void {
  let names = defined.get(redis);
  if (!names) defined.set(redis, (names = new Set()));
  for (const script of readLuaScripts(dir)) {
    const command = commandOf(script.verb);
    if (names.has(command)) continue;
    redis.defineCommand(
      command,
      script.numberOfKeys === null ? { lua: script.lua } : { numberOfKeys: script.numberOfKeys, lua: script.lua },
    );
    names.add(command);
  }
}

/** `release-if-holder` -> `ReleaseIfHolder`: the usual way to turn a verb into a command name's tail. */
export function pascalVerb(verb: string): string {
  return verb.replace(/(^|-)([a-z])/g, (_m, _dash, c: string) => c.toUpperCase());
}
