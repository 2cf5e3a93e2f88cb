-- KEYS: keys..., slide hash. ARGV: values..., default ms. Writes every pair with
-- the default TTL if no key exists, else nothing. The outcome: 1 when it wrote.
return all_or_nothing(KEYS, ARGV, function(key)
  return redis.call('EXISTS', key) == 0
end)
