if redis.call('HEXISTS', KEYS[1], '__created') == 0 then return false end
redis.call('HSET', KEYS[1], '__moving', ARGV[1])
local lease = tonumber(ARGV[2])
if lease > 0 then
  local now = redis.call('TIME')
  local until_ms = tonumber(now[1]) * 1000 + math.floor(tonumber(now[2]) / 1000) + lease
  redis.call('HSET', KEYS[1], '__frozen', string.format('%.0f', until_ms))
end
return redis.call('HGETALL', KEYS[1])
