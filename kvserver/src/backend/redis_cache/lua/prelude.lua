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
-- all_or_nothing(keys, args, holds), for keys..., slide hash and values..., default
-- ms: writes every pair with the default TTL if holds(key) is true of every key, else
-- nothing. Returns 1 when it wrote, else 0.
local function all_or_nothing(keys, args, holds)
  local n = #keys - 1
  for i = 1, n do
    if not holds(keys[i]) then return 0 end
  end
  local ttl = tonumber(args[n + 1])
  for i = 1, n do
    put(keys[i], args[i], ttl)
    redis.call('HDEL', keys[#keys], keys[i])
  end
  return 1
end
