/**
 * The coordinator's Lua scripts, read from `lua/<verb>-<numKeys>.lua` once per process and defined
 * on each Redis client once (ioredis `defineCommand`, which runs them by EVALSHA and falls back to
 * EVAL after a script cache flush, e.g. a Redis restart).
 */
import { readFileSync, readdirSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import type { Redis } from 'ioredis';

const LUA_DIR = fileURLToPath(new URL('./lua/', import.meta.url));

interface ScriptFile {
  /** Command name on the client, e.g. `parityRenew` for renew-1.lua. */
  command: string;
  numberOfKeys: number;
  lua: string;
}

let cached: ScriptFile[] | undefined;

function camel(verb: string): string {
  return verb.replace(/-([a-z])/g, (_m, c: string) => c.toUpperCase());
}

/** Reads every script once; the number of keys comes from the file name. */
function scriptFiles(): ScriptFile[] {
  if (cached) return cached;
  cached = readdirSync(LUA_DIR)
    .filter((f) => f.endsWith('.lua'))
    .map((file) => {
      const m = /^([a-z-]+)-(\d+)\.lua$/.exec(file);
      if (!m) throw new Error(`Lua script ${file} must be named <verb>-<numKeys>.lua`);
      const verb = m[1] as string;
      return { command: `parity${camel(verb).replace(/^./, (c) => c.toUpperCase())}`, numberOfKeys: Number(m[2]), lua: readFileSync(`${LUA_DIR}${file}`, 'utf8') };
    });
  return cached;
}

/** The script-backed commands, as typed functions. */
export interface CoordinatorScripts {
  /** renew-1.lua: 1 renewed, 0 key gone, -1 another owner. */
  renew(lockKey: string, owner: string, ttlMs: number): Promise<number>;
  /** release-1.lua: 1 released, 0 not the owner. */
  release(lockKey: string, owner: string): Promise<number>;
  /** set-flags-3.lua: the changed values and the version. */
  setFlags(keys: { flags: string; audit: string; version: string }, args: { actor: string; reason: string; scope: string; channel: string; at: string; values: [string, string][] }): Promise<{ changed: { name: string; old: string; new: string }[]; version: number }>;
}

const defined = new WeakSet<Redis>();

type ScriptCommand = (...args: (string | number)[]) => Promise<unknown>;

/** Defines the scripts on `redis` (once per client) and returns typed wrappers. */
export function coordinatorScripts(redis: Redis): CoordinatorScripts {
  if (!defined.has(redis)) {
    for (const s of scriptFiles()) redis.defineCommand(s.command, { numberOfKeys: s.numberOfKeys, lua: s.lua });
    defined.add(redis);
  }
  const call = (name: string): ScriptCommand => {
    const fn = (redis as unknown as Record<string, ScriptCommand>)[name];
    if (!fn) throw new Error(`Redis script ${name} is not defined`);
    return fn.bind(redis);
  };
  return {
    async renew(lockKey, owner, ttlMs) {
      return Number(await call('parityRenew')(lockKey, owner, ttlMs));
    },
    async release(lockKey, owner) {
      return Number(await call('parityRelease')(lockKey, owner));
    },
    async setFlags(keys, args) {
      const flat = args.values.flatMap(([name, value]) => [name, value]);
      const reply = (await call('paritySetFlags')(keys.flags, keys.audit, keys.version, args.actor, args.reason, args.scope, args.channel, args.at, ...flat)) as string[];
      const version = Number(reply[reply.length - 1]);
      const changed: { name: string; old: string; new: string }[] = [];
      for (let i = 0; i + 2 < reply.length; i += 3) changed.push({ name: String(reply[i]), old: String(reply[i + 1]), new: String(reply[i + 2]) });
      return { changed, version };
    },
  };
}
