-- KEYS: hits. ARGV: path, most counters. A new path beyond the bound is
-- refused; the outcome is the path's new count.
if redis.call('HEXISTS', KEYS[1], ARGV[1]) == 0
    and redis.call('HLEN', KEYS[1]) >= tonumber(ARGV[2]) then
  return redis.error_reply('KVFULL the hit counters are full')
end
redis.call('HINCRBY', KEYS[1], ARGV[1], 1)
return redis.call('HGET', KEYS[1], ARGV[1])
