--[[
  Extends a lock lease, but only for its owner.

  KEYS[1]  the lock key
  ARGV[1]  owner id of the caller
  ARGV[2]  new time to live, in milliseconds

  Returns  1 renewed; 0 the key is gone (the lease expired); -1 another owner holds it.
]]
local current = redis.call('GET', KEYS[1])
if not current then
  return 0
end
if current ~= ARGV[1] then
  return -1
end
redis.call('PEXPIRE', KEYS[1], ARGV[2])
return 1
