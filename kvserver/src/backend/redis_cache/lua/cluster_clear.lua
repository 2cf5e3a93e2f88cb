-- No KEYS: sent to one master of a cluster. ARGV as cluster_len.lua. Empties the
-- master but for the hit counters and the idempotency outcomes; returns how many
-- of kvserver's keys there were.
local kept, own = {}, 0
local function keep(k)
  local v = redis.call('DUMP', k)
  if v then kept[k] = v; own = own + 1 end
end
if ARGV[1] ~= '' then keep(ARGV[1]) end
for i = 2, #ARGV do
  local base = '__kv__:{' .. ARGV[i] .. '}:'
  own = own + redis.call('EXISTS', base .. 'ttl')
  keep(base .. 'idem')
  keep(base .. 'idem:expiry')
end
local n = redis.call('DBSIZE') - own
redis.call('FLUSHDB')
for k, v in pairs(kept) do redis.call('RESTORE', k, 0, v) end
return n
