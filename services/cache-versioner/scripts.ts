/**
 * The Lua scripts in ./lua, read once and registered on a Redis client with ioredis defineCommand:
 * ioredis sends EVAL the first time on each connection and EVALSHA afterwards, and resends after a
 * NOSCRIPT (a restarted Redis has no scripts), inside pipelines too.
 */
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import type { ChainableCommander, Redis } from 'ioredis';

/** Script name (file name without .lua) to its command name and key count. */
const SCRIPTS = {
  // null: the caller passes the key count first (apply-n takes any number of entries).
  'apply-n': { command: 'parityCacheApply', numberOfKeys: null },
  'release-1': { command: 'parityCacheRelease', numberOfKeys: 1 },
  'init-2': { command: 'parityCacheInit', numberOfKeys: 2 },
  'cutover-2': { command: 'parityCacheCutover', numberOfKeys: 2 },
  'barrier-1': { command: 'parityCacheBarrier', numberOfKeys: 1 },
} as const;

type ScriptName = keyof typeof SCRIPTS;
type ScriptDef = { command: string; numberOfKeys: number | null };

const sources = new Map<ScriptName, string>();

/** The text of one script (read from disk once per process). */
export function scriptSource(name: ScriptName): string {
  let text = sources.get(name);
  if (text === undefined) {
    text = readFileSync(fileURLToPath(new URL(`./lua/${name}.lua`, import.meta.url)), 'utf8');
    sources.set(name, text);
  }
  return text;
}

type Arg = string | number;

/** The script commands as they appear on a client or a pipeline after registration. */
interface ScriptCommands<R> {
  /** `numKeys, key1..keyN, argv...` (see lua/apply-n.lua). */
  parityCacheApply(numKeys: number, ...keysAndArgs: Arg[]): R;
  parityCacheRelease(key: string, token: string): R;
  parityCacheInit(config: string, audit: string, ...args: Arg[]): R;
  parityCacheCutover(config: string, audit: string, ...args: Arg[]): R;
  parityCacheBarrier(config: string, position: string): R;
}

export type ScriptedRedis = Redis & ScriptCommands<Promise<unknown>>;
export type ScriptedPipeline = ChainableCommander & ScriptCommands<ChainableCommander>;

const registered = new WeakSet<Redis>();

/** Registers every script on `redis` (idempotent) and returns it typed with the script commands. */
export function withScripts(redis: Redis): ScriptedRedis {
  if (!registered.has(redis)) {
    for (const [name, def] of Object.entries(SCRIPTS) as Array<[ScriptName, ScriptDef]>) {
      redis.defineCommand(def.command, def.numberOfKeys === null ? { lua: scriptSource(name) } : { numberOfKeys: def.numberOfKeys, lua: scriptSource(name) });
    }
    registered.add(redis);
  }
  return redis as ScriptedRedis;
}

/** A pipeline on a scripted client, typed with the script commands. */
export function scriptedPipeline(redis: ScriptedRedis): ScriptedPipeline {
  return redis.pipeline() as ScriptedPipeline;
}
