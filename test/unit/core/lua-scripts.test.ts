import { describe, expect, it } from 'vitest';
import { inlineIncludes, readLuaScripts } from '../../../services/core/lua-scripts.js';

const CACHE_LUA = new URL('../../../services/cache-versioner/lua/', import.meta.url);
const COORDINATOR_LUA = new URL('../../../services/coordinator/lua/', import.meta.url);

describe('Lua script loader', () => {
  it('inlines includes: one position compare and one lease release for both services', () => {
    const cache = readLuaScripts(CACHE_LUA);
    const coordinator = readLuaScripts(COORDINATOR_LUA);
    for (const s of [...cache, ...coordinator]) expect(s.lua).not.toMatch(/^--- @include/m);
    const apply = cache.find((s) => s.verb === 'apply')!;
    const barrier = cache.find((s) => s.verb === 'barrier')!;
    expect(apply.numberOfKeys).toBeNull();
    expect(barrier.numberOfKeys).toBe(1);
    for (const s of [apply, barrier]) expect(s.lua).toContain('local function positionNewer(a, b)');
    const releases = [cache, coordinator].map((list) => list.find((s) => s.verb === 'release')!);
    for (const r of releases) expect(r.lua).toContain('local function releaseIfHolder(key, token)');
  });

  it('inlines an include once and refuses an unknown one, naming it', () => {
    const twice = inlineIncludes('--- @include "position-newer"\n--- @include "position-newer"\nreturn 1\n', 'x.lua');
    expect(twice.match(/local function positionNewer/g)).toHaveLength(1);
    expect(() => inlineIncludes('--- @include "no-such-include"\n', 'y.lua')).toThrow(/y\.lua: Lua include "no-such-include" not found/);
  });
});
