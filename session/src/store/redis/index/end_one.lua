if redis.call('HEXISTS', KEYS[1], '__created') == 1 and redis.call('HGET', KEYS[1], ARGV[1]) == ARGV[2] then
  redis.call('DEL', KEYS[1])
  return 1
end
return 0
