-- No KEYS: sent to the node whose SCAN found the keys. ARGV: largest value
-- served, keys... Each string key's value, else nil; restarts nothing.
local out = {}
for i = 2, #ARGV do
  local k = ARGV[i]
  if redis.call('TYPE', k).ok == 'string' then
    local n = redis.call('STRLEN', k)
    if n > tonumber(ARGV[1]) then return redis.error_reply('KVTOOLARGE ' .. n .. ' ' .. (i - 1)) end
    out[i - 1] = redis.call('GET', k)
  else
    out[i - 1] = false
  end
end
return out
