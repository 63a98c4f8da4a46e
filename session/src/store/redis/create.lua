if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
local n = #ARGV
if n <= 1000 then
  redis.call('HSET', KEYS[1], '__created', ARGV[1], '__expires', ARGV[2], unpack(ARGV, 3, n))
else
  redis.call('HSET', KEYS[1], '__created', ARGV[1], '__expires', ARGV[2])
  for i = 3, n, 1000 do redis.call('HSET', KEYS[1], unpack(ARGV, i, math.min(i + 999, n))) end
end
redis.call('PEXPIREAT', KEYS[1], ARGV[2])
return 1
