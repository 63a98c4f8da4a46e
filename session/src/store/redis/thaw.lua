if redis.call('HGET', KEYS[1], '__moving') == ARGV[1] then return redis.call('HDEL', KEYS[1], '__frozen') end
return 0
