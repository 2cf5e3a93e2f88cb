-- KEYS: key.
return redis.call('TYPE', KEYS[1]).ok == 'string' and 1 or 0
