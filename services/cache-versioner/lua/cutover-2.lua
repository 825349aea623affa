--[[
cutover-2.lua: switch the version applications read and the versions `cache run` populates, in one
step, refusing a switch that would serve stale entries; audited.

A version is fresh when it is populated and, if it was ever dropped, every entry written before the
drop has expired (dropped + freshAfterMs <= now). Reading a version that is not fresh would serve
entries that missed the changes made while it was not populated.

KEYS[1]  the config hash, parity:cache:{<migration>}:config
KEYS[2]  the audit stream, parity:cache:{<migration>}:audit
ARGV[1]  version to read
ARGV[2]  versions to populate, comma-separated (contains ARGV[1])
ARGV[3]  now, milliseconds
ARGV[4]  freshAfterMs: the longest an entry lives (max TTL with jitter, tombstone TTL)
ARGV[5]  who (user@host)
ARGV[6]  "1" to switch even to a version that is not fresh
ARGV[7]  audit stream length cap
ARGV[8]  expected generation, or "" for any

Returns {"ok", generation, previous read, previous populate} or {"refused", reason}.
]]
local cfg = KEYS[1]
local to, populate, now, freshAfter, by, force = ARGV[1], ARGV[2], tonumber(ARGV[3]), tonumber(ARGV[4]), ARGV[5], ARGV[6] == '1'
if redis.call('HEXISTS', cfg, 'read') == 0 then
  return {'refused', 'no version config in Redis; run `parity cache run` once (it creates it from the spec)'}
end
local prevRead = redis.call('HGET', cfg, 'read')
local prevPopulate = redis.call('HGET', cfg, 'populate')
local generation = tonumber(redis.call('HGET', cfg, 'generation') or '0')
if ARGV[8] ~= '' and tonumber(ARGV[8]) ~= generation then
  return {'refused', 'the config changed meanwhile (generation ' .. generation .. '); run the cutover again'}
end

local was = {}
for v in string.gmatch(prevPopulate, '[^,]+') do was[v] = true end
local will = {}
for v in string.gmatch(populate, '[^,]+') do will[v] = true end

if not force then
  if not was[to] then
    return {'refused', to .. ' is not populated now (populated: ' .. prevPopulate .. '); its entries may be stale'}
  end
  local dropped = redis.call('HGET', cfg, 'dropped:' .. to)
  if dropped and tonumber(dropped) + freshAfter > now then
    return {'refused', to .. ' was not populated until recently; its older entries expire at ' .. (tonumber(dropped) + freshAfter) .. ' ms'}
  end
end

for v, _ in pairs(will) do
  if not was[v] then redis.call('HSET', cfg, 'since:' .. v, ARGV[3]) end
end
for v, _ in pairs(was) do
  if not will[v] then redis.call('HSET', cfg, 'dropped:' .. v, ARGV[3]) end
end
generation = generation + 1
redis.call('HSET', cfg, 'read', to, 'populate', populate, 'generation', tostring(generation), 'updatedAt', ARGV[3], 'updatedBy', by)
local forced = '0'
if force then forced = '1' end
redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[7], '*', 'action', 'cutover', 'at', ARGV[3], 'by', by,
  'fromRead', prevRead, 'fromPopulate', prevPopulate, 'read', to, 'populate', populate, 'generation', tostring(generation), 'forced', forced)
return {'ok', generation, prevRead, prevPopulate}
