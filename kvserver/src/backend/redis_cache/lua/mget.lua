-- KEYS: keys. ARGV: largest value served. Each string key's value, else
-- nil; restarts nothing.
local out = {}
for i = 1, #KEYS do
  if redis.call('TYPE', KEYS[i]).ok == 'string' then
    local n = redis.call('STRLEN', KEYS[i])
    if n > tonumber(ARGV[1]) then return redis.error_reply('KVTOOLARGE ' .. n .. ' ' .. i) end
    out[i] = redis.call('GET', KEYS[i])
  else
    out[i] = false
  end
end
return out
