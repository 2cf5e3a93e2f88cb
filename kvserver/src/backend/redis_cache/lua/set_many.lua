-- KEYS: keys..., slide hash. ARGV: values..., ttl ms (0: none), default
-- ms, sliding. Returns how many were written.
local n = #KEYS - 1
local slide = KEYS[#KEYS]
local ttl = tonumber(ARGV[n + 1])
local own_length = ARGV[n + 3] == '1' and ttl > 0 and ttl ~= tonumber(ARGV[n + 2])
for i = 1, n do
  put(KEYS[i], ARGV[i], ttl)
  if own_length then
    redis.call('HSET', slide, KEYS[i], ttl)
  else
    redis.call('HDEL', slide, KEYS[i])
  end
end
return n
