if redis.call('HEXISTS', KEYS[1], '__created') == 0 then return 0 end
if redis.call('EXISTS', KEYS[2]) == 1 then return -1 end
local count = 0
for i = 6, #ARGV, 2 do
  if redis.call('HGET', KEYS[1], ARGV[i]) ~= ARGV[i + 1] then return 2 end
  count = count + 1
end
for _, name in ipairs(redis.call('HKEYS', KEYS[1])) do
  if string.sub(name, 1, 8) == '__index.' then count = count - 1 end
end
if count ~= 0 then return 2 end
redis.call('RENAME', KEYS[1], KEYS[2])
redis.call('HSET', KEYS[2], '__expires', ARGV[1])
redis.call('PEXPIREAT', KEYS[2], ARGV[1])
redis.call('HSET', KEYS[1], '__forward', ARGV[2], '__forward_until', ARGV[3])
redis.call('PEXPIREAT', KEYS[1], ARGV[3])
local now = server_now()
for i = 3, #KEYS do
  redis.call('ZREM', KEYS[i], ARGV[4])
  add(KEYS[i], ARGV[2], tonumber(ARGV[5]), now)
end
if #KEYS > 2 then
  redis.call('HSET', KEYS[2], '__indexed_until', ARGV[5])
else
  redis.call('HDEL', KEYS[2], '__indexed_until')
end
return 1
