-- KEYS: slide hash, keys... Drops the lengths of keys that are gone.
local dropped = 0
for i = 2, #KEYS do
  if redis.call('EXISTS', KEYS[i]) == 0 then
    dropped = dropped + redis.call('HDEL', KEYS[1], KEYS[i])
  end
end
return dropped
