"""The Lua scripts of the redis coordination plugin: every write is one of them.

Each runs atomically on the server; the plugin (troy.plugins.coordination.redis)
says what the keys are.
"""

# Scripts carry flags (`#!lua`): Redis then refuses a write script whole when it is out
# of memory, instead of failing at its first write with earlier writes done.
# Arrays are pushed in chunks: Lua's unpack takes at most ~8,000 values.

# A script that fails halfway keeps its first writes: types are checked before any write.
EXPECT = """
local function expect(key, kind)
  local found = redis.call('TYPE', key)['ok']
  if found ~= 'none' and found ~= kind then
    return redis.error_reply('WRONGTYPE ' .. key .. ' holds a ' .. found .. ', not a ' .. kind)
  end
end
"""

#: KEYS: token, stream (or the token again), queue...  ARGV: ttl, writer, batch JSON or "",
#: then per queue its item count and its items.  Returns 1, or 0 if the token was used.
WRITE = (
    "#!lua"
    + EXPECT
    + """
local wrong = ARGV[3] ~= '' and expect(KEYS[2], 'stream')
for k = 3, #KEYS do wrong = wrong or expect(KEYS[k], 'list') end
if wrong then return wrong end
if not redis.call('SET', KEYS[1], '1', 'NX', 'EX', ARGV[1]) then return 0 end
if ARGV[3] ~= '' then redis.call('XADD', KEYS[2], '*', 'w', ARGV[2], 'e', ARGV[3]) end
local at = 4
for k = 3, #KEYS do
  local last = at + tonumber(ARGV[at])
  for i = at + 1, last, 4000 do
    redis.call('RPUSH', KEYS[k], unpack(ARGV, i, math.min(i + 3999, last)))
  end
  at = last + 1
end
return 1
"""
)

#: KEYS: queue, claimed list, token.  ARGV: max items, ttl.  Returns the items taken.
CLAIM = (
    "#!lua"
    + EXPECT
    + """
local wrong = expect(KEYS[1], 'list') or expect(KEYS[2], 'list')
if wrong then return wrong end
local done = redis.call('GET', KEYS[3])
if done then
  local stop, count = string.match(done, '^(%d+):(%d+)$')
  return redis.call('LRANGE', KEYS[2], tonumber(stop) - tonumber(count), tonumber(stop) - 1)
end
local items = redis.call('LPOP', KEYS[1], ARGV[1])
if not items then return {} end
local stop = 0
for i = 1, #items, 4000 do
  stop = redis.call('RPUSH', KEYS[2], unpack(items, i, math.min(i + 3999, #items)))
end
redis.call('SET', KEYS[3], stop .. ':' .. #items, 'EX', ARGV[2])
return items
"""
)

#: KEYS: queue, token.  ARGV: ttl, then the JSON-encoded ids.  Items start with
#: '{"id":' and their encoded id; a JSON string ends at its closing quote, so equal
#: prefixes mean equal ids.  The list is scanned from the head until every id is found;
#: a few items are cut out where they are (LSET to a mark, LREM), many by rewriting the
#: scanned head (LTRIM it, LPUSH back what stays).  Returns the encoded ids removed,
#: in queue order.
WITHDRAW = """#!lua
if redis.call('EXISTS', KEYS[2]) == 1 then return redis.call('LRANGE', KEYS[2], 1, -1) end
local wanted, lengths, left = {}, {}, 0
for i = 2, #ARGV do
  if not wanted[ARGV[i]] then
    wanted[ARGV[i]] = true
    lengths[#ARGV[i]] = true
    left = left + 1
  end
end
local found, where, kept = {}, {}, {}
local size = redis.call('LLEN', KEYS[1])
local scanned = 0
while left > 0 and scanned < size do
  local chunk = redis.call('LRANGE', KEYS[1], scanned, scanned + 999)
  for j = 1, #chunk do
    local item, hit = chunk[j], false
    if string.sub(item, 1, 6) == '{"id":' then
      for length in pairs(lengths) do
        local id = string.sub(item, 7, 6 + length)
        if wanted[id] then
          wanted[id] = nil
          left = left - 1
          found[#found + 1] = id
          where[#where + 1] = scanned
          hit = true
          break
        end
      end
    end
    if not hit then kept[#kept + 1] = item end
    scanned = scanned + 1
    if left == 0 then break end
  end
end
if #where > 0 and #where <= 32 then
  for i = 1, #where do redis.call('LSET', KEYS[1], where[i], '\\0') end
  redis.call('LREM', KEYS[1], #where, '\\0')
elseif #where > 0 then
  redis.call('LTRIM', KEYS[1], scanned, -1)
  local back = {}
  for i = #kept, 1, -1 do back[#back + 1] = kept[i] end
  for i = 1, #back, 4000 do
    redis.call('LPUSH', KEYS[1], unpack(back, i, math.min(i + 3999, #back)))
  end
end
redis.call('RPUSH', KEYS[2], '')
for i = 1, #found, 4000 do
  redis.call('RPUSH', KEYS[2], unpack(found, i, math.min(i + 3999, #found)))
end
redis.call('EXPIRE', KEYS[2], ARGV[1])
return found
"""
