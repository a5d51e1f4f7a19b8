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
#: Each queue's wake-up stream (``<queue key>:wake``, one entry kept) gets an entry:
#: idle claimers block on it with XREAD (RedisCoordination.wait_for_work).
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
  redis.call('XADD', KEYS[k] .. ':wake', 'MAXLEN', '1', '*', 'n', ARGV[at])
  at = last + 1
end
return 1
"""
)

#: KEYS: queue, claimed list, token, the claimed list's base.  ARGV: max items, ttl.
#: Returns the items taken.  The token holds where they end in the claimed list counted
#: from its first item ever (the base counts those acknowledged and popped off its head).
CLAIM = (
    "#!lua"
    + EXPECT
    + """
local wrong = expect(KEYS[1], 'list') or expect(KEYS[2], 'list')
if wrong then return wrong end
local base = tonumber(redis.call('GET', KEYS[4]) or '0')
local done = redis.call('GET', KEYS[3])
if done then
  local stop, count = string.match(done, '^(%d+):(%d+)$')
  stop = tonumber(stop) - base
  return redis.call('LRANGE', KEYS[2], stop - tonumber(count), stop - 1)
end
local items = redis.call('LPOP', KEYS[1], ARGV[1])
if not items then return {} end
local stop = 0
for i = 1, #items, 4000 do
  stop = redis.call('RPUSH', KEYS[2], unpack(items, i, math.min(i + 3999, #items)))
end
redis.call('SET', KEYS[3], (stop + base) .. ':' .. #items, 'EX', ARGV[2])
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

#: KEYS: token, record, parent's SET of children (or the token again).  ARGV: ttl, record
#: JSON, key.  Returns 1 if stored, 0 if a record was there; a retry returns the first answer.
CREATE_RECORD = """#!lua
local done = redis.call('GET', KEYS[1])
if done then return tonumber(done) end
local stored = 0
if redis.call('SET', KEYS[2], ARGV[2], 'NX') then
  stored = 1
  if KEYS[3] ~= KEYS[1] then redis.call('SADD', KEYS[3], ARGV[3]) end
end
redis.call('SET', KEYS[1], stored, 'EX', ARGV[1])
return stored
"""

#: KEYS: token, counter.  ARGV: ttl, count.  Returns the first number reserved; a retry
#: returns the first attempt's.
ALLOCATE = """#!lua
local done = redis.call('GET', KEYS[1])
if done then return tonumber(done) end
local first = redis.call('INCRBY', KEYS[2], ARGV[2]) - tonumber(ARGV[2])
redis.call('SET', KEYS[1], first, 'EX', ARGV[1])
return first
"""

#: KEYS: claimed list, its base (how many items were popped off its head).  ARGV: the
#: JSON-encoded ids.  Acknowledged items become '' (so positions, which a retried claim
#: reads, keep their meaning); '' items at the head are popped and counted in the base.
ACK = """#!lua
local wanted, lengths = {}, {}
for i = 1, #ARGV do
  wanted[ARGV[i]] = true
  lengths[#ARGV[i]] = true
end
local items = redis.call('LRANGE', KEYS[1], 0, -1)
for j = 1, #items do
  local item = items[j]
  if string.sub(item, 1, 6) == '{"id":' then
    for length in pairs(lengths) do
      if wanted[string.sub(item, 7, 6 + length)] then
        redis.call('LSET', KEYS[1], j - 1, '')
        items[j] = ''
        break
      end
    end
  end
end
local head = 0
while head < #items and items[head + 1] == '' do head = head + 1 end
if head > 0 then
  redis.call('LTRIM', KEYS[1], head, -1)
  redis.call('INCRBY', KEYS[2], head)
end
if redis.call('LLEN', KEYS[1]) == 0 then redis.call('DEL', KEYS[1], KEYS[2]) end
return head
"""

#: KEYS: stream.  ARGV: writer, summary JSON.  Empties the stream (keeping its last id, so
#: the summary's id is greater than every old one) and adds the summary, marked c=1.
COMPACT = (
    "#!lua"
    + EXPECT
    + """
local wrong = expect(KEYS[1], 'stream')
if wrong then return wrong end
redis.call('XTRIM', KEYS[1], 'MAXLEN', 0)
redis.call('XADD', KEYS[1], '*', 'w', ARGV[1], 'e', ARGV[2], 'c', '1')
return 1
"""
)
