local m = redis.call('HMGET', KEYS[1], '__created', '__indexed_until')
if not m[1] then return 0 end
redis.call('HSET', KEYS[1], '__expires', ARGV[1])
redis.call('PEXPIREAT', KEYS[1], ARGV[1])
if m[2] and tonumber(ARGV[1]) > (tonumber(m[2]) or 0) then return 3 end
return 1
