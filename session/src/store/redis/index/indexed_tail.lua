local args = {}
for i = 3, #ARGV do args[i - 2] = ARGV[i] end
local r = write({KEYS[1]}, args)
local card = 0
if r == 1 or r == 3 then
  local now = server_now()
  local e = tonumber(redis.call('HGET', KEYS[1], '__expires'))
  if not e then e = now + math.max(redis.call('PTTL', KEYS[1]), 0) end
  local u = tonumber(ARGV[2])
  if not u then u = e + math.max(e - now, 0) end
  if u < e then r = 3 end
  for i = 2, #KEYS do card = math.max(card, add(KEYS[i], ARGV[1], u, now)) end
  local old = tonumber(redis.call('HGET', KEYS[1], '__indexed_until'))
  if not old or old > u then redis.call('HSET', KEYS[1], '__indexed_until', string.format('%.0f', u)) end
end
return {r, card}
