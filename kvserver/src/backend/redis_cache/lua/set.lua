-- KEYS: key, slide hash. ARGV: value, condition ('', 'nx', 'xx'), expiry
-- ('ttl' or 'keep'), ttl ms (0: none), default ms, sliding.
-- Returns {0 not set | 1 created | 2 replaced, pttl, sliding length}.
local existed = redis.call('EXISTS', KEYS[1]) == 1
if (ARGV[2] == 'nx' and existed) or (ARGV[2] == 'xx' and not existed) then
  return {0, 0, 0}
end
if ARGV[3] == 'keep' and existed then
  redis.call('SET', KEYS[1], ARGV[1], 'KEEPTTL')
else
  local ttl = tonumber(ARGV[4])
  if ARGV[3] == 'keep' then ttl = tonumber(ARGV[5]) end
  put(KEYS[1], ARGV[1], ttl)
  if ARGV[6] == '1' and ttl > 0 and ttl ~= tonumber(ARGV[5]) then
    redis.call('HSET', KEYS[2], KEYS[1], ttl)
  else
    redis.call('HDEL', KEYS[2], KEYS[1])
  end
end
local pttl, len = slide(KEYS[1], KEYS[2], ARGV[5], false)
return {existed and 2 or 1, pttl, len}
