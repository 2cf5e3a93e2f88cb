-- KEYS: hits, slide hash, idempotency outcomes and deadlines. Empties the
-- database but for the hit counters and the idempotency outcomes;
-- returns how many keys there were.
local kept = {}
for _, k in ipairs({KEYS[1], KEYS[3], KEYS[4]}) do kept[k] = redis.call('DUMP', k) end
local n = redis.call('DBSIZE') - redis.call('EXISTS', KEYS[1], KEYS[2], KEYS[3], KEYS[4])
redis.call('FLUSHDB')
for k, v in pairs(kept) do
  if v then redis.call('RESTORE', k, 0, v) end
end
return n
