-- KEYS: keys..., slide hash. ARGV: sliding, default ms, largest value
-- served. One reply per key.
local hash = KEYS[#KEYS]
local out = {}
for i = 1, #KEYS - 1 do
  local k = KEYS[i]
  if redis.call('TYPE', k).ok ~= 'string' then
    out[i] = false
  else
    local n = redis.call('STRLEN', k)
    if n > tonumber(ARGV[3]) then return redis.error_reply('KVTOOLARGE ' .. n .. ' ' .. i) end
    local v = redis.call('GET', k)
    local pttl, len = slide(k, hash, ARGV[2], ARGV[1] == '1')
    out[i] = {v, pttl, len}
  end
end
return out
