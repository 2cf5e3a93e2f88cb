-- KEYS: hits, slide hash, idempotency outcomes and deadlines.
return redis.call('DBSIZE') - redis.call('EXISTS', KEYS[1], KEYS[2], KEYS[3], KEYS[4])
