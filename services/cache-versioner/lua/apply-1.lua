--[[
apply-1.lua: set a cache entry if, and only if, the write is newer than what the entry holds.

One entry is a hash:
  _pos   source position of the state it holds, encodePosition() form "<16 hex lsn>:<10 digit ordinal>"
  _kind  "v" value, "t" tombstone (row deleted), "i" invalid (a TOAST-unchanged column could not be
         merged: readers treat it as a miss and fill from the database)
  _key   JSON of the key column values (lets the inspector read the row without parsing key names)
  _cts   source commit time in microseconds ("" for fills)
  _wts   Redis time of the write, milliseconds
  c:<column>  JSON of one projected column value

KEYS[1]  the entry key, e.g. order:v2:{42}
ARGV[1]  mode: "v" full value, "p" partial value (columns absent from ARGV keep their cached value:
         unchanged TOASTed columns), "t" tombstone, "f" fill from a database read (a reader's miss)
ARGV[2]  position of the write
ARGV[3]  TTL in milliseconds (jitter already applied by the caller)
ARGV[4]  source commit time in microseconds, or "" (mode "f": the position of the invalid marker the
         reader saw before reading the database, or "")
ARGV[5]  key JSON
ARGV[6..] column name, value JSON, column name, value JSON, ...

Returns 1 when applied, 0 when skipped because the entry holds an equal or newer position, 2 when a
partial write found nothing to merge into and left an invalid marker instead.

Positions are compared as numbers, not with Lua's `<` on strings: Redis calls
setlocale(LC_COLLATE, "") at start-up and Lua's string comparison uses strcoll, so string order
depends on the server's environment. Three integers (two 32-bit LSN halves, the ordinal) fit a
Lua double exactly.
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

local key = KEYS[1]
local mode, pos, ttl, cts, keyJson = ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5]
local writtenCts = cts
if mode == 'f' then writtenCts = '' end
local current = redis.call('HMGET', key, '_pos', '_kind')
local curPos, curKind = current[1], current[2]

local t = redis.call('TIME')
local now = tostring(tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000))

-- One HSET per write. The old hash is deleted first so that columns a write no longer carries (a
-- tombstone, a changed projection) do not linger.
local function write(kind, position, withColumns)
  if curPos then redis.call('DEL', key) end
  local fields = {'_pos', position, '_kind', kind, '_key', keyJson, '_cts', writtenCts, '_wts', now}
  if withColumns then
    for i = 6, #ARGV, 2 do
      fields[#fields + 1] = 'c:' .. ARGV[i]
      fields[#fields + 1] = ARGV[i + 1]
    end
  end
  redis.call('HSET', key, unpack(fields))
  redis.call('PEXPIRE', key, ttl)
end

if mode == 'f' then
  -- A fill carries the lowest position a current read can have (the truncate barrier), so any change
  -- event for the row wins over it. It replaces an invalid marker only if the reader saw that very
  -- marker before reading the database: then its read is newer than the marker's change, and it keeps
  -- the marker's position so older changes stay rejected.
  if curPos and curKind == 'i' then
    if cts ~= curPos then return 0 end
    write('v', curPos, true)
    return 1
  end
  if curPos and not newer(pos, curPos) then return 0 end
  write('v', pos, true)
  return 1
end

if curPos and not newer(pos, curPos) then return 0 end

if mode == 't' then
  write('t', pos, false)
  return 1
end

if mode == 'p' then
  if curKind ~= 'v' then
    write('i', pos, false)
    return 2
  end
  -- Merge: keep the cached columns, overwrite the ones this change carries.
  local fields = {'_pos', pos, '_kind', 'v', '_key', keyJson, '_cts', writtenCts, '_wts', now}
  for i = 6, #ARGV, 2 do
    fields[#fields + 1] = 'c:' .. ARGV[i]
    fields[#fields + 1] = ARGV[i + 1]
  end
  redis.call('HSET', key, unpack(fields))
  redis.call('PEXPIRE', key, ttl)
  return 1
end

write('v', pos, true)
return 1
