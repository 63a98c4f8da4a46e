local m = redis.call('HMGET', KEYS[1], '__created', '__indexed_until')
if not m[1] then return 0 end
if m[2] then return 2 end
if redis.call('EXISTS', KEYS[2]) == 1 then return -1 end
redis.call('RENAME', KEYS[1], KEYS[2])
redis.call('HSET', KEYS[2], '__expires', ARGV[1])
redis.call('PEXPIREAT', KEYS[2], ARGV[1])
redis.call('HSET', KEYS[1], '__forward', ARGV[2], '__forward_until', ARGV[3])
redis.call('PEXPIREAT', KEYS[1], ARGV[3])
return 1
