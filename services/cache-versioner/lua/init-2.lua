--[[
init-2.lua: create the version config from the spec unless it already exists (a cutover may have
changed it since; Redis wins over the spec), and audit the creation.

KEYS[1]  the config hash, parity:cache:{<migration>}:config
KEYS[2]  the audit stream, parity:cache:{<migration>}:audit
ARGV[1]  read version
ARGV[2]  populated versions, comma-separated
ARGV[3]  now, milliseconds
ARGV[4]  who (user@host)
ARGV[5]  audit stream length cap

Returns 1 when created, 0 when a config already existed.
]]
-- HEXISTS, not EXISTS: a barrier written after a Redis wipe creates the hash without a config.
if redis.call('HEXISTS', KEYS[1], 'read') == 1 then return 0 end
redis.call('HSET', KEYS[1], 'read', ARGV[1], 'populate', ARGV[2], 'generation', '1', 'updatedAt', ARGV[3], 'updatedBy', ARGV[4])
for v in string.gmatch(ARGV[2], '[^,]+') do
  redis.call('HSET', KEYS[1], 'since:' .. v, ARGV[3])
end
redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[5], '*', 'action', 'init', 'at', ARGV[3], 'by', ARGV[4], 'read', ARGV[1], 'populate', ARGV[2], 'generation', '1')
return 1
