--[[
barrier-1.lua: raise the truncate barrier. A TRUNCATE of the source table makes every cached row
stale, and parity never mass-deletes; instead readers and the inspector treat entries older than the
barrier as absent, and they expire by TTL.

KEYS[1]  the config hash, parity:cache:{<migration>}:config
ARGV[1]  position of the truncate

Returns 1 when the barrier moved, 0 when it already was at or past ARGV[1].
Positions are compared by position-newer (services/core/lua/includes): as numbers, never as strings.
]]
--- @include "position-newer"

local cur = redis.call('HGET', KEYS[1], 'barrier')
if cur and not positionNewer(ARGV[1], cur) then return 0 end
redis.call('HSET', KEYS[1], 'barrier', ARGV[1])
return 1
