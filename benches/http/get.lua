-- wrk -s benches/http/get.lua: GET /keys/key:NNNNNNNN, keys drawn uniformly from
-- the KV_LOAD_KEYS keys that put.lua writes. Prints one RESULT line when done.
local keys = tonumber(os.getenv("KV_LOAD_KEYS") or "10000")

request = function()
  return wrk.format("GET", string.format("/keys/key:%08d", math.random(0, keys - 1)))
end

done = function(summary, latency, requests)
  local errors = summary.errors
  io.write(string.format("RESULT %.0f %.3f %.3f %d\n",
    summary.requests / (summary.duration / 1e6),
    latency:percentile(50) / 1000, latency:percentile(99) / 1000,
    errors.connect + errors.read + errors.write + errors.status + errors.timeout))
end
