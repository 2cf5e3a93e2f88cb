-- Before set.lua, for Backend::compute: ARGV[7] is '1' when the key is expected to
-- hold ARGV[8], else it is expected absent (no string under it); ARGV[9] is
-- 'delete' to remove the key rather than set it. Returns {-1, 0, 0} when the key
-- holds something else (the caller looks again), {0, 0, 0} once deleted.
local live = redis.call('TYPE', KEYS[1]).ok == 'string'
if live ~= (ARGV[7] == '1') or (live and redis.call('GET', KEYS[1]) ~= ARGV[8]) then
  return {-1, 0, 0}
end
if ARGV[9] == 'delete' then
  redis.call('DEL', KEYS[1])
  redis.call('HDEL', KEYS[2], KEYS[1])
  return {0, 0, 0}
end
