-- wrk -s benches/http/put.lua: PUT /keys/key:NNNNNNNN with a 16-digit JSON string,
-- going round the KV_LOAD_KEYS keys in order, so that one run also loads every key
-- get.lua reads. Prints one RESULT line when done.
local keys = tonumber(os.getenv("KV_LOAD_KEYS") or "10000")
local n = 0
local headers = { ["Content-Type"] = "application/json" }

request = function()
  local k = n % keys
  n = n + 1
  return wrk.format("PUT", string.format("/keys/key:%08d", k), headers,
    string.format('"%016d"', k))
end

done = function(summary, latency, requests)
  local errors = summary.errors
  io.write(string.format("RESULT %.0f %.3f %.3f %d\n",
    summary.requests / (summary.duration / 1e6),
    latency:percentile(50) / 1000, latency:percentile(99) / 1000,
    errors.connect + errors.read + errors.write + errors.status + errors.timeout))
end
