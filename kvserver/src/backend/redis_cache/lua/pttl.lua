-- KEYS: key. -2: no such string key.
if redis.call('TYPE', KEYS[1]).ok ~= 'string' then return -2 end
return redis.call('PTTL', KEYS[1])
