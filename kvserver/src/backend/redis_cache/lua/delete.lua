-- KEYS: key, slide hash. 1: a string key was deleted.
if redis.call('TYPE', KEYS[1]).ok ~= 'string' then return 0 end
redis.call('DEL', KEYS[1])
redis.call('HDEL', KEYS[2], KEYS[1])
return 1
