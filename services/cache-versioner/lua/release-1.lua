--[[
release-1.lua: release a fill lease only if the caller still holds it (its token is the value), so a
caller whose lease expired and was taken by another cannot release the other's lease.

KEYS[1]  the lease key, e.g. parity:lease:order:v2:{42}
ARGV[1]  the caller's token

Returns 1 when released, 0 when the lease is held by someone else or has expired.
]]
--- @include "release-if-holder"

return releaseIfHolder(KEYS[1], ARGV[1])
