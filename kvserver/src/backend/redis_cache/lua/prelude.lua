-- Shared by the scripts, put before each: put(key, value, ttl) writes a value
-- with a TTL in ms (0: none); slide(key, hash, default, restart) returns the key's
-- PTTL and the length a sliding read restarts it at (from hash, else default; 0
-- when the key has no TTL), restarting it first when restart is true.
local function put(key, value, ttl)
  if ttl > 0 then
    redis.call('SET', key, value, 'PX', ttl)
  else
    redis.call('SET', key, value)
  end
end
local function slide(key, hash, default, restart)
  local pttl = redis.call('PTTL', key)
  local len = 0
  if pttl > 0 then
    len = tonumber(redis.call('HGET', hash, key) or default)
    if restart and len > 0 then
      redis.call('PEXPIRE', key, len)
      pttl = len
    end
  end
  return pttl, len
end
