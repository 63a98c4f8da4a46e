if redis.call('HGET', KEYS[1], '__moving') == ARGV[1] then
  if redis.call('HEXISTS', KEYS[1], '__created') == 1 then
    redis.call('DEL', KEYS[1])
    redis.call('HSET', KEYS[1], '__moving', ARGV[1], '__forward', ARGV[2], '__forward_until', ARGV[3])
    redis.call('PEXPIRE', KEYS[1], 60000)
  end
  return 1
end
if redis.call('HEXISTS', KEYS[1], '__created') == 1 then return 0 end
return -1
