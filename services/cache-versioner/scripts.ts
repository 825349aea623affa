/**
 * The cache versioner's Lua scripts in ./lua, loaded by the one loader (services/core/lua-scripts.ts:
 * includes inlined, read once per process, registered on a client once with ioredis defineCommand,
 * which sends EVALSHA and resends after a NOSCRIPT, inside pipelines too).
 */
import type { ChainableCommander, Redis } from 'ioredis';
import { defineLuaScripts, pascalVerb } from '../core/lua-scripts.js';

const LUA_DIR = new URL('./lua/', import.meta.url);

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

/** Registers every script on `redis` (idempotent) and returns it typed with the script commands. */
export function withScripts(redis: Redis): ScriptedRedis {
  // apply-n -> parityCacheApply: the command name is the verb's (the key count comes from the file name).
  defineLuaScripts(redis, LUA_DIR, (verb) => `parityCache${pascalVerb(verb)}`);
  return redis as ScriptedRedis;
}

/** A pipeline on a scripted client, typed with the script commands. */
export function scriptedPipeline(redis: ScriptedRedis): ScriptedPipeline {
  return redis.pipeline() as ScriptedPipeline;
}
