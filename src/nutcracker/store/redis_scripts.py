"""The Lua scripts of the Redis journal: each durable write is one script, so it is atomic.

Every write of a symbol first runs ``FENCE_CHECK``: the symbol's latest token is the greater of
the one a journal ``fence``d and the one its ``SymbolLease`` issued last (``tok:``); a write under
an older token, or under none once a token exists, is refused with ``STALE`` before anything is
changed. Validation (``INVALID``) also comes before the first change, so a script keeps all or
nothing. Event payloads are assembled from JSON fragments Python made with the same serializer as
the other journals (``core.records``), so the bytes are the same.

Keys are built from a prefix inside the scripts (one Redis, not a cluster). Layout, per symbol S:
``s:S`` hash (state, lf, st, rs, up) · ``f:S`` fills by trade id · ``fl:S`` trade ids in booking
order · ``ft:S`` trade ids by time · ``c:S`` cycles · ``iid:S`` intent identity by (cid, action)
· ``ix:S`` reason and time · ``ist:S``/``idt:S``/``iup:S`` status, detail, update time ·
``ipos:S`` record position · ``il:S`` record order · ``io:S`` open intents by position ·
``ilast:S`` latest action per cid · ``p:S`` params versions · ``ev:S`` its events · ``flog:S``
the fencing log ("token seq" when a token's writes begin; seq: the account's next event). Account-wide:
``symbols``, ``fence``, ``wtok`` (each symbol's last writing token), ``audit``, ``ev`` (every event;
seq n at index n - 1), ``cmdd`` (each command id's first audit detail: ``command_detail`` is one
``HGET``, where it read the whole audit, every 50 ms while ``serve --store`` waited for an outcome),
``cmdv`` (set once the audit written before ``cmdd`` existed is indexed).
"""

from __future__ import annotations

from typing import Final

__all__ = ["AUDIT", "COMMAND_INDEX", "FENCE", "PARAMS", "PULSE", "STATE", "STATUS", "UPDATES"]

_COMMON: Final = r"""
local P = ARGV[1]
local function stale(sym, mine)
  local fenced = tonumber(redis.call('HGET', P .. 'fence', sym) or '0')
  local leased = tonumber(redis.call('GET', P .. 'tok:' .. sym) or '0')
  local latest = math.max(fenced, leased)
  if latest > 0 and (mine == '' or latest > tonumber(mine)) then
    return 'STALE ' .. sym .. ': another process holds the lease now (token ' .. latest .. ', ours '
      .. (mine == '' and 'none' or mine) .. '); this process must stop writing it'
  end
  if mine ~= '' and redis.call('HGET', P .. 'wtok', sym) ~= mine then
    -- the fencing log: each token's first accepted write, so an audit can show one writer at a time
    redis.call('HSET', P .. 'wtok', sym, mine)
    redis.call('RPUSH', P .. 'flog:' .. sym, mine .. ' ' .. (redis.call('LLEN', P .. 'ev') + 1))
  end
  return nil
end
local function event(ts, sym, kind, payload)
  local seq = redis.call('LLEN', P .. 'ev') + 1
  local row = seq .. '\n' .. ts .. '\n' .. sym .. '\n' .. kind .. '\n' .. payload
  redis.call('RPUSH', P .. 'ev', row)
  redis.call('RPUSH', P .. 'ev:' .. sym, row)
end
local function touch(sym, ts, state, lf)
  local k = P .. 's:' .. sym
  if redis.call('EXISTS', k) == 0 then
    redis.call('HSET', k, 'state', state, 'lf', lf, 'st', 'idle', 'rs', '', 'up', ts)
    redis.call('SADD', P .. 'symbols', sym)
  else
    local old = tonumber(redis.call('HGET', k, 'lf'))
    if tonumber(lf) > old then redis.call('HSET', k, 'lf', lf) end
    redis.call('HSET', k, 'state', state, 'up', ts)
  end
end
"""

# ARGV: P, sym, token, state, ts
STATE: Final = (
    _COMMON
    + r"""
local sym = ARGV[2]
local why = stale(sym, ARGV[3])
if why then return redis.error_reply(why) end
touch(sym, ARGV[5], ARGV[4], '-1')
return 1
"""
)

# ARGV: P, sym, token, state, last_fill_ts, ts, reasons_json,
#   nf, (trade_id, ts, row, fragment) * nf, nc, (cycle_id, row, fragment) * nc,
#   ni, (key, cid, action, identity, detail_row, status, open, fragment, message) * ni
PULSE: Final = (
    _COMMON
    + r"""
local sym = ARGV[2]
local why = stale(sym, ARGV[3])
if why then return redis.error_reply(why) end
local i = 8
local nf = tonumber(ARGV[i]); local fills_at = i + 1; i = i + 1 + 4 * nf
local nc = tonumber(ARGV[i]); local cycles_at = i + 1; i = i + 1 + 3 * nc
local ni = tonumber(ARGV[i]); local intents_at = i + 1
for n = 0, ni - 1 do
  local a = intents_at + 9 * n
  local known = redis.call('HGET', P .. 'iid:' .. sym, ARGV[a])
  if known and known ~= ARGV[a + 3] then return redis.error_reply('INVALID ' .. ARGV[a + 8]) end
end
touch(sym, ARGV[6], ARGV[4], ARGV[5])
local fills = {}
for n = 0, nf - 1 do
  local a = fills_at + 4 * n
  if redis.call('HSETNX', P .. 'f:' .. sym, ARGV[a], ARGV[a + 2]) == 1 then
    redis.call('RPUSH', P .. 'fl:' .. sym, ARGV[a])
    redis.call('ZADD', P .. 'ft:' .. sym, ARGV[a + 1], ARGV[a])
    fills[#fills + 1] = ARGV[a + 3]
  end
end
local cycles = {}
for n = 0, nc - 1 do
  local a = cycles_at + 3 * n
  if redis.call('HSETNX', P .. 'c:' .. sym, ARGV[a], ARGV[a + 1]) == 1 then
    cycles[#cycles + 1] = ARGV[a + 2]
  end
end
local intents = {}
for n = 0, ni - 1 do
  local a = intents_at + 9 * n
  local key = ARGV[a]
  if redis.call('HSETNX', P .. 'iid:' .. sym, key, ARGV[a + 3]) == 1 then
    local pos = redis.call('RPUSH', P .. 'il:' .. sym, key)
    redis.call('HSET', P .. 'ipos:' .. sym, key, pos)
    redis.call('HSET', P .. 'ix:' .. sym, key, ARGV[a + 4])
    redis.call('HSET', P .. 'ist:' .. sym, key, ARGV[a + 5])
    redis.call('HSET', P .. 'idt:' .. sym, key, '')
    redis.call('HSET', P .. 'iup:' .. sym, key, ARGV[6])
    redis.call('HSET', P .. 'ilast:' .. sym, ARGV[a + 1], ARGV[a + 2])
    if ARGV[a + 6] == '1' then redis.call('ZADD', P .. 'io:' .. sym, pos, key) end
    intents[#intents + 1] = ARGV[a + 7]
  end
end
event(ARGV[6], sym, 'pulse', '{"closed_cycles":[' .. table.concat(cycles, ',') .. '],"fills":['
  .. table.concat(fills, ',') .. '],"intents":[' .. table.concat(intents, ',') .. '],"reasons":'
  .. ARGV[7] .. '}')
return 1
"""
)

# ARGV: P, sym, token, ts, n, (cid, status, detail, open, fragment_rest, message) * n
UPDATES: Final = (
    _COMMON
    + r"""
local sym = ARGV[2]
local why = stale(sym, ARGV[3])
if why then return redis.error_reply(why) end
local n = tonumber(ARGV[5])
local actions = {}
for u = 0, n - 1 do
  local a = 6 + 6 * u
  local action = redis.call('HGET', P .. 'ilast:' .. sym, ARGV[a])
  if not action then return redis.error_reply('INVALID ' .. ARGV[a + 5]) end
  actions[u] = action
end
local parts = {}
for u = 0, n - 1 do
  local a = 6 + 6 * u
  local key = ARGV[a] .. '\0' .. actions[u]
  redis.call('HSET', P .. 'ist:' .. sym, key, ARGV[a + 1])
  redis.call('HSET', P .. 'idt:' .. sym, key, ARGV[a + 2])
  redis.call('HSET', P .. 'iup:' .. sym, key, ARGV[4])
  if ARGV[a + 3] == '1' then
    redis.call('ZADD', P .. 'io:' .. sym, redis.call('HGET', P .. 'ipos:' .. sym, key), key)
  else
    redis.call('ZREM', P .. 'io:' .. sym, key)
  end
  parts[#parts + 1] = '{"action":"' .. actions[u] .. '",' .. ARGV[a + 4]
end
event(ARGV[4], sym, 'intents', '{"updates":[' .. table.concat(parts, ',') .. ']}')
return 1
"""
)

# ARGV: P, sym, token, status, reason, ts, payload
STATUS: Final = (
    _COMMON
    + r"""
local sym = ARGV[2]
local why = stale(sym, ARGV[3])
if why then return redis.error_reply(why) end
local k = P .. 's:' .. sym
if redis.call('EXISTS', k) == 0 then
  redis.call('HSET', k, 'state', '', 'lf', '-1')
  redis.call('SADD', P .. 'symbols', sym)
end
redis.call('HSET', k, 'st', ARGV[4], 'rs', ARGV[5], 'up', ARGV[6])
event(ARGV[6], sym, 'status', ARGV[7])
return 1
"""
)

# ARGV: P, sym, token, ts, row, payload_before_version, payload_after_version
PARAMS: Final = (
    _COMMON
    + r"""
local sym = ARGV[2]
local why = stale(sym, ARGV[3])
if why then return redis.error_reply(why) end
local version = redis.call('RPUSH', P .. 'p:' .. sym, ARGV[5])
event(ARGV[4], sym, 'params', ARGV[6] .. version .. ARGV[7])
return version
"""
)

# ARGV: P, ts, row, payload, detail, then the command id its tag names, if any (``cmdd``: each id's first)
AUDIT: Final = (
    _COMMON
    + r"""
local seq = redis.call('RPUSH', P .. 'audit', ARGV[3])
event(ARGV[2], '', 'audit', ARGV[4])
for i = 6, #ARGV do redis.call('HSETNX', P .. 'cmdd', ARGV[i], ARGV[5]) end
return seq
"""
)

# ARGV: P. Indexes the command ids of a store whose audit was written before ``cmdd`` was (once;
# ``cmdv`` says it is done): every ``command=ID role=`` of a detail, as the scan it replaced
# matched them. A detail written since names one, its first (``core.commands.tagged_command_id``).
COMMAND_INDEX: Final = r"""
local P = ARGV[1]
if redis.call('EXISTS', P .. 'cmdv') == 1 then return 0 end
local rows = redis.call('LRANGE', P .. 'audit', 0, -1)
for _, row in ipairs(rows) do
  local detail = cjson.decode(row)[4]
  for cid in string.gmatch(detail, 'command=(%S+) role=') do
    redis.call('HSETNX', P .. 'cmdd', cid, detail)
  end
end
redis.call('SET', P .. 'cmdv', '1')
return #rows
"""

# ARGV: P, sym, token
FENCE: Final = r"""
local P = ARGV[1]
local latest = math.max(tonumber(redis.call('HGET', P .. 'fence', ARGV[2]) or '0'),
  tonumber(redis.call('GET', P .. 'tok:' .. ARGV[2]) or '0'))
if latest > tonumber(ARGV[3]) then
  return redis.error_reply('STALE ' .. ARGV[2] .. ': lease token ' .. ARGV[3] .. ' is stale (the latest is '
    .. latest .. ')')
end
redis.call('HSET', P .. 'fence', ARGV[2], ARGV[3])
return 1
"""
