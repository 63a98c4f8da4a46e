local m = redis.call('HMGET', KEYS[1], '__created', '__frozen', '__moving', '__indexed_until')
if not m[1] then return 0 end
if m[2] then
  local now = redis.call('TIME')
  if tonumber(now[1]) * 1000 + math.floor(tonumber(now[2]) / 1000) < (tonumber(m[2]) or 0) then
    return 2
  end
  redis.call('HDEL', KEYS[1], '__frozen')
end
local n = #ARGV
local last = 2 + 2 * tonumber(ARGV[2])
local expires = ARGV[1] ~= ''
if expires and last <= 1000 then
  redis.call('HSET', KEYS[1], '__expires', ARGV[1], unpack(ARGV, 3, last))
else
  if expires then redis.call('HSET', KEYS[1], '__expires', ARGV[1]) end
  for i = 3, last, 1000 do redis.call('HSET', KEYS[1], unpack(ARGV, i, math.min(i + 999, last))) end
end
for i = last + 1, n, 1000 do redis.call('HDEL', KEYS[1], unpack(ARGV, i, math.min(i + 999, n))) end
if m[3] and n > 2 then redis.call('HDEL', KEYS[1], '__moving') end
if expires then
  redis.call('PEXPIREAT', KEYS[1], ARGV[1])
  if m[4] and tonumber(ARGV[1]) > (tonumber(m[4]) or 0) then return 3 end
end
return 1
