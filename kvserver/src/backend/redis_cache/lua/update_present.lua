-- KEYS: keys..., slide hash. ARGV: values..., default ms. Writes every pair with
-- the default TTL if every key holds a string, else nothing. Returns 1 when it wrote.
return all_or_nothing(KEYS, ARGV, function(key)
  return redis.call('TYPE', key).ok == 'string'
end)
