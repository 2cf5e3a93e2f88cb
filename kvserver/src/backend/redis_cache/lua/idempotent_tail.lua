-- After the body of a write that records its outcome: replays it, or applies the
-- write and records it. Returns {1, outcome} for a replay, {0, outcome} for a write
-- made now; an error reply is not recorded.
end
local function run()
  local out = apply()
  if type(out) == 'number' then out = tostring(out) end
  return out
end
if not use then
  local out = run()
  if type(out) == 'table' then return out end
  return {0, out}
end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
for _, old in ipairs(redis.call('ZRANGEBYSCORE', deadlines, '-inf', now, 'LIMIT', 0, 16)) do
  redis.call('HDEL', records, old)
  redis.call('ZREM', deadlines, old)
end
local record = redis.call('HGET', records, id)
if record and tonumber(redis.call('ZSCORE', deadlines, id) or 0) > now then
  local at = string.find(record, ':', 1, true)
  if string.sub(record, 1, at - 1) ~= fp then
    return redis.error_reply('KVIDEMREUSED the Idempotency-Key came with another request')
  end
  return {1, string.sub(record, at + 1)}
end
local out = run()
if type(out) == 'table' then return out end
redis.call('HSET', records, id, fp .. ':' .. out)
redis.call('ZADD', deadlines, now + window, id)
return {0, out}
