-- KEYS: key, slide hash. ARGV: by, default ms. A new key gets the default.
-- The outcome is the new value as Redis prints it (exact, unlike a Lua
-- number).
local existed = redis.call('EXISTS', KEYS[1]) == 1
redis.call('INCRBY', KEYS[1], ARGV[1])
if not existed then
  redis.call('HDEL', KEYS[2], KEYS[1])
  if tonumber(ARGV[2]) > 0 then redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
end
return redis.call('GET', KEYS[1])
