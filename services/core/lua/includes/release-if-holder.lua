--[[
release-if-holder: deletes a lease key only if its value is the caller's token, so a caller whose
lease expired and was taken by another cannot release the other's lease. Included with
`--- @include "release-if-holder"`.

releaseIfHolder(key, token) returns 1 when released, 0 when held by someone else or expired.
]]
local function releaseIfHolder(key, token)
  if redis.call('GET', key) == token then
    return redis.call('DEL', key)
  end
  return 0
end
