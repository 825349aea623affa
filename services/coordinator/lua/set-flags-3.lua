--[[
  Sets flag values in one scope, atomically with their audit trail: for every value that changes,
  one audit stream entry (who, when, old, new, why); then the version counter is bumped and the
  change announced, so clients drop their cached flags at once.

  KEYS[1]  the flags hash of the scope (migration-wide or one cohort)
  KEYS[2]  the audit stream
  KEYS[3]  the version counter
  ARGV[1]  actor (who)
  ARGV[2]  reason (why)
  ARGV[3]  scope label written to the audit ('' for migration-wide, else the cohort)
  ARGV[4]  pub/sub channel announcing the change
  ARGV[5]  client time of the change, ISO 8601 (when; the stream id carries the server time too)
  ARGV[6], ARGV[7], ...  flag name, new value pairs

  Returns  a flat array name1, old1, new1, name2, ... of the values that changed ('' = unset),
           and the version counter as the last element (bumped only when something changed).
]]
local changed = {}
for i = 6, #ARGV, 2 do
  local name = ARGV[i]
  local new = ARGV[i + 1]
  local old = redis.call('HGET', KEYS[1], name) or ''
  if old ~= new then
    redis.call('HSET', KEYS[1], name, new)
    redis.call('XADD', KEYS[2], '*', 'scope', ARGV[3], 'flag', name, 'old', old, 'new', new,
      'actor', ARGV[1], 'reason', ARGV[2], 'at', ARGV[5])
    table.insert(changed, name)
    table.insert(changed, old)
    table.insert(changed, new)
  end
end
local version
if #changed > 0 then
  version = redis.call('INCR', KEYS[3])
  redis.call('PUBLISH', ARGV[4], tostring(version))
else
  version = redis.call('GET', KEYS[3]) or 0
end
table.insert(changed, tostring(version))
return changed
