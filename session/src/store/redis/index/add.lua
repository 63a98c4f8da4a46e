local function add(k, id, until_ms, now)
  local s = now
  local top = redis.call('ZRANGE', k, -1, -1, 'WITHSCORES')
  if top[2] and tonumber(top[2]) >= s then s = tonumber(top[2]) + 1 end
  redis.call('ZADD', k, s, id)
  if until_ms <= now then until_ms = now + 60000 end
  local p = redis.call('PTTL', k)
  if p < 0 or now + p < until_ms then redis.call('PEXPIREAT', k, until_ms) end
  return redis.call('ZCARD', k)
end
local function server_now()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
