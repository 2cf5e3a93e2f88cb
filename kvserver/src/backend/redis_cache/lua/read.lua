-- KEYS: key, slide hash. ARGV: sliding, default ms, largest value served.
if redis.call('TYPE', KEYS[1]).ok ~= 'string' then return false end
local n = redis.call('STRLEN', KEYS[1])
if n > tonumber(ARGV[3]) then return redis.error_reply('KVTOOLARGE ' .. n .. ' 1') end
local v = redis.call('GET', KEYS[1])
local pttl, len = slide(KEYS[1], KEYS[2], ARGV[2], ARGV[1] == '1')
return {v, pttl, len}
