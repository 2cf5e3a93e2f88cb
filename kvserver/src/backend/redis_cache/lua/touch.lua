-- KEYS: keys..., slide hash. ARGV: default ms. Restarts sliding TTLs.
for i = 1, #KEYS - 1 do
  slide(KEYS[i], KEYS[#KEYS], ARGV[1], true)
end
return 0
