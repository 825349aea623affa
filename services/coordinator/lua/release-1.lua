--[[
  Releases a lock lease, but only for its owner: a holder whose lease expired and was taken by
  someone else must not delete the new holder's lease.

  KEYS[1]  the lock key
  ARGV[1]  owner id of the caller

  Returns  1 released; 0 not held by this owner (nothing changed).
]]
--- @include "release-if-holder"

return releaseIfHolder(KEYS[1], ARGV[1])
