--[[
apply-n.lua: set cache entries if, and only if, each write is newer than what its entry holds.
One script for every cache write (change events, tombstones, reader fills); it takes n entries per
call so a Kafka batch costs a few calls instead of one per entry (n = 1 for a single write).

One entry is a hash:
  _pos   source position of the state it holds, encodePosition() form "<16 hex lsn>:<10 digit ordinal>"
  _kind  "v" value, "t" tombstone (row deleted), "i" invalid (a TOAST-unchanged column could not be
         merged: readers treat it as a miss and fill from the database)
  _key   JSON of the key column values (lets the inspector read the row without parsing key names)
  _cts   source commit time in microseconds ("" for fills)
  _wts   Redis time of the write, milliseconds
  c:<column>  JSON of one projected column value

KEYS[1..n]  the entry keys, e.g. order:v2:42 (all in one hash slot on a Redis Cluster)
ARGV[1..n]  ARGV[k] is the write of KEYS[k]: its fields joined by NUL ("\0"), in this order:
  mode      "v" full value, "p" partial value (columns it does not carry keep their cached value:
            unchanged TOASTed columns), "t" tombstone, "f" fill from a database read (a reader's miss)
  position  position of the write
  ttl       TTL in milliseconds (jitter already applied by the caller)
  cts       source commit time in microseconds, or "" (mode "f": the position of the invalid marker
            the reader saw before reading the database, or "")
  key       key JSON
  then      column name, value JSON, ... (one pair per column; none for a tombstone)
            One argument per write instead of one per field: ioredis builds every argument as its
            own RESP string, and with ~20 fields a write that was ~30% of the versioner's allocations
            at 5,000 changes/s. NUL cannot occur in any field: JSON escapes control characters, and
            PostgreSQL identifiers cannot hold NUL.

Returns a string of n result digits, one per key: "1" applied, "0" skipped because the entry holds
an equal or newer position, "2" a partial write found nothing to merge into and left an invalid
marker instead.

Positions are compared by position-newer (services/core/lua/includes): as numbers, never as strings.
]]
--- @include "position-newer"

local t = redis.call('TIME')
local now = tostring(tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000))

-- The fields of one write (see ARGV above).
local function split(packed)
  local out, from = {}, 1
  while true do
    local at = string.find(packed, '\0', from, true)
    if not at then
      out[#out + 1] = string.sub(packed, from)
      return out
    end
    out[#out + 1] = string.sub(packed, from, at - 1)
    from = at + 1
  end
end

local function applyOne(key, f)
  local mode, pos, ttl, cts, keyJson = f[1], f[2], f[3], f[4], f[5]
  local current = redis.call('HMGET', key, '_pos', '_kind')
  local curPos, curKind = current[1], current[2]
  local writtenCts = cts
  if mode == 'f' then writtenCts = '' end

  local function fields(position, kind, withColumns)
    local out = {'_pos', position, '_kind', kind, '_key', keyJson, '_cts', writtenCts, '_wts', now}
    if withColumns then
      for i = 6, #f - 1, 2 do
        out[#out + 1] = 'c:' .. f[i]
        out[#out + 1] = f[i + 1]
      end
    end
    return out
  end

  -- The old hash is deleted first so that columns a write no longer carries (a tombstone, a changed
  -- projection) do not linger.
  local function write(kind, position, withColumns)
    if curPos then redis.call('DEL', key) end
    redis.call('HSET', key, unpack(fields(position, kind, withColumns)))
    redis.call('PEXPIRE', key, ttl)
  end

  if mode == 'f' then
    -- A fill carries the lowest position a current read can have (the truncate barrier), so any change
    -- event for the row wins over it. It replaces an invalid marker only if the reader saw that very
    -- marker before reading the database: then its read is newer than the marker's change, and it
    -- keeps the marker's position so older changes stay rejected.
    if curPos and curKind == 'i' then
      if cts ~= curPos then return '0' end
      write('v', curPos, true)
      return '1'
    end
    if curPos and not positionNewer(pos, curPos) then return '0' end
    write('v', pos, true)
    return '1'
  end

  if curPos and not positionNewer(pos, curPos) then return '0' end

  if mode == 't' then
    write('t', pos, false)
    return '1'
  end

  if mode == 'p' then
    if curKind ~= 'v' then
      write('i', pos, false)
      return '2'
    end
    -- Merge: keep the cached columns, overwrite the ones this change carries.
    redis.call('HSET', key, unpack(fields(pos, 'v', true)))
    redis.call('PEXPIRE', key, ttl)
    return '1'
  end

  write('v', pos, true)
  return '1'
end

local results = {}
for k = 1, #KEYS do
  results[k] = applyOne(KEYS[k], split(ARGV[k]))
end
return table.concat(results)
