/**
 * The coordinator's Lua scripts, `lua/<verb>-<numKeys>.lua`, loaded by the one loader
 * (services/core/lua-scripts.ts: includes inlined, read once per process, defined on each client once).
 */
import type { Redis } from 'ioredis';
import { defineLuaScripts, pascalVerb } from '../core/lua-scripts.js';

const LUA_DIR = new URL('./lua/', import.meta.url);

/** The script-backed commands, as typed functions. */
export interface CoordinatorScripts {
  /** renew-1.lua: 1 renewed, 0 key gone, -1 another owner. */
  renew(lockKey: string, owner: string, ttlMs: number): Promise<number>;
  /** release-1.lua: 1 released, 0 not the owner. */
  release(lockKey: string, owner: string): Promise<number>;
  /** set-flags-3.lua: the changed values and the version. */
  setFlags(
    keys: { flags: string; audit: string; version: string },
    args: { actor: string; reason: string; scope: string; channel: string; at: string; values: [string, string][] },
  ): Promise<{ changed: { name: string; old: string; new: string }[]; version: number }>;
}

type ScriptCommand = (...args: (string | number)[]) => Promise<unknown>;

/** Defines the scripts on `redis` (once per client) and returns typed wrappers. */
export function coordinatorScripts(redis: Redis): CoordinatorScripts {
  defineLuaScripts(redis, LUA_DIR, (verb) => `parity${pascalVerb(verb)}`);
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
      const reply = (await call('paritySetFlags')(
        keys.flags,
        keys.audit,
        keys.version,
        args.actor,
        args.reason,
        args.scope,
        args.channel,
        args.at,
        ...flat,
      )) as string[];
      const version = Number(reply[reply.length - 1]);
      const changed: { name: string; old: string; new: string }[] = [];
      for (let i = 0; i + 2 < reply.length; i += 3)
        changed.push({ name: String(reply[i]), old: String(reply[i + 1]), new: String(reply[i + 2]) });
      return { changed, version };
    },
  };
}
