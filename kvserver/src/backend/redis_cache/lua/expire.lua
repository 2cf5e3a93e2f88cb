-- KEYS: key, slide hash. ARGV: ttl ms, default ms, sliding.
if redis.call('TYPE', KEYS[1]).ok ~= 'string' then return 0 end
redis.call('PEXPIRE', KEYS[1], ARGV[1])
if ARGV[3] == '1' and tonumber(ARGV[1]) ~= tonumber(ARGV[2]) then
  redis.call('HSET', KEYS[2], KEYS[1], ARGV[1])
else
  redis.call('HDEL', KEYS[2], KEYS[1])
end
return 1
