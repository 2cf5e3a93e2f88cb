-- KEYS: keys..., slide hash. ARGV: values..., default ms. Writes every pair with
-- the default TTL if no key exists, else nothing. The outcome: 1 when it wrote.
local n = #KEYS - 1
for i = 1, n do
  if not (redis.call('EXISTS', KEYS[i]) == 0) then return 0 end
end
local ttl = tonumber(ARGV[n + 1])
for i = 1, n do
  put(KEYS[i], ARGV[i], ttl)
  redis.call('HDEL', KEYS[#KEYS], KEYS[i])
end
return 1
