local prefix = ARGV[1]
local n = #prefix
local fields = {'__created', '__expires', ARGV[2]}
for _, name in ipairs(redis.call('HKEYS', KEYS[1])) do
  if string.sub(name, 1, n) == prefix then fields[#fields + 1] = name end
end
local values = {}
for i = 1, #fields, 1000 do
  local chunk = redis.call('HMGET', KEYS[1], unpack(fields, i, math.min(i + 999, #fields)))
  for j = 1, #chunk do values[i + j - 1] = chunk[j] end
end
if not values[1] then return false end
local out = {values[1], values[2], values[3]}
for i = 4, #fields do
  out[#out + 1] = string.sub(fields[i], n + 1)
  out[#out + 1] = values[i]
end
return out
