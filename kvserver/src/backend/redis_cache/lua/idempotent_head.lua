-- Before the body of a write that records its outcome under an Idempotency-Key:
-- takes its own keys and arguments off the ends of KEYS and ARGV, leaving the
-- write's in locals of the same names. KEYS: the write's, then the outcome hash and
-- the deadline set. ARGV: the write's, then 1 to use a key (0: none), the key, the
-- request's fingerprint and the window in ms.
local records, deadlines = KEYS[#KEYS - 1], KEYS[#KEYS]
local use, id, fp = ARGV[#ARGV - 3] == '1', ARGV[#ARGV - 2], ARGV[#ARGV - 1]
local window = tonumber(ARGV[#ARGV])
local keys, args = {}, {}
for i = 1, #KEYS - 2 do keys[i] = KEYS[i] end
for i = 1, #ARGV - 4 do args[i] = ARGV[i] end
local KEYS, ARGV = keys, args
local function apply()
