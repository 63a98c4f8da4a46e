if redis.call('HEXISTS', KEYS[1], '__created') == 0 then return 0 end
if ARGV[1] == '' then return redis.call('HDEL', KEYS[1], '__indexed_until') end
return redis.call('HSET', KEYS[1], '__indexed_until', ARGV[1])
