--[[
barrier-1.lua: raise the truncate barrier. A TRUNCATE of the source table makes every cached row
stale, and parity never mass-deletes; instead readers and the inspector treat entries older than the
barrier as absent, and they expire by TTL.

KEYS[1]  the config hash, parity:cache:{<migration>}:config
ARGV[1]  position of the truncate

Returns 1 when the barrier moved, 0 when it already was at or past ARGV[1].
Positions are compared as numbers (see apply-n.lua for why not as strings).
]]
local function parse(p)
  return tonumber(string.sub(p, 1, 8), 16), tonumber(string.sub(p, 9, 16), 16), tonumber(string.sub(p, 18), 10)
end
local function newer(a, b)
  local a1, a2, a3 = parse(a)
  local b1, b2, b3 = parse(b)
  if a1 ~= b1 then return a1 > b1 end
  if a2 ~= b2 then return a2 > b2 end
  return a3 > b3
end
local cur = redis.call('HGET', KEYS[1], 'barrier')
if cur and not newer(ARGV[1], cur) then return 0 end
redis.call('HSET', KEYS[1], 'barrier', ARGV[1])
return 1
