-- No KEYS: sent to one master of a cluster. ARGV: the hit counters' key if this
-- master serves its slot (else ''), then the slot tag of every slot it serves.
-- Returns the keys it holds, less kvserver's own.
local own = 0
if ARGV[1] ~= '' then own = redis.call('EXISTS', ARGV[1]) end
for i = 2, #ARGV do
  local base = '__kv__:{' .. ARGV[i] .. '}:'
  own = own + redis.call('EXISTS', base .. 'ttl', base .. 'idem', base .. 'idem:expiry')
end
return redis.call('DBSIZE') - own
