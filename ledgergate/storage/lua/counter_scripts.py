"""The Lua side of ``RedisCounters``: every read-modify-write of counters and holds is one of these scripts.

Data model (every name starts with the instance's prefix ``P``, e.g. ``lg:{lg}:``):

- ``P c:<type>:<window>:<period_start>:<entity_id>``: a counter, hash ``spent``, ``held`` (nanos), ``tok`` (the
  incarnation: a fresh token each time the counter is loaded from the ledger), ``ver`` (bumped on every change),
  ``stale`` (set when a change could not be attributed exactly; see ``RESYNC``). A hash without ``spent`` is a
  marker left by a settle on an absent counter, not a counter.
- ``P h:<hold_id>``: a hold, hash ``amt`` (the decided cost hold), ``st`` (``held`` or ``expired``), ``keys``,
  ``toks`` and ``amts`` (JSON lists: the counters it was placed on, their incarnation at that time, and what it
  holds on each: ``amt`` on cost counters, its own amount on rate-limit counters; a hold without ``amts`` holds
  ``amt`` on each). Kept past its expiry so that a late settle still knows which incarnation it was placed on.
- ``P holds``: sorted set of live hold ids by expiry instant (the injected clock's seconds, passed in ARGV).
- ``P s:<hold_id>``: settled marker, with a TTL: makes settle repeat-safe.
- ``P epoch``: a random value, created if absent; a flush deletes it. A load reads it before the ledger and
  stores its snapshot only if it is unchanged (``LOAD``), so a snapshot older than a flush is never stored.

Money crosses the Lua boundary as decimal strings. Lua numbers are doubles, so the scripts split every amount
into two exact limbs (value = hi * 1e9 + lo) and only add and compare them: no rounding, however large.
"""

from __future__ import annotations

_PRELUDE = """
local BASE = 1000000000
local function big(s)
  if not s or s == '' then return {0, 0} end
  s = tostring(s)
  local negative = string.sub(s, 1, 1) == '-'
  if negative then s = string.sub(s, 2) end
  local n = string.len(s)
  local hi, lo = 0, tonumber(s)
  if n > 9 then
    hi = tonumber(string.sub(s, 1, n - 9))
    lo = tonumber(string.sub(s, n - 8))
  end
  if negative then
    if lo == 0 then return {-hi, 0} end
    return {-hi - 1, BASE - lo}
  end
  return {hi, lo}
end
local function add(a, b)
  local hi, lo = a[1] + b[1], a[2] + b[2]
  if lo >= BASE then return {hi + 1, lo - BASE} end
  return {hi, lo}
end
local function neg(a)
  if a[2] == 0 then return {-a[1], 0} end
  return {-a[1] - 1, BASE - a[2]}
end
local function cmp(a, b)
  if a[1] ~= b[1] then
    if a[1] < b[1] then return -1 end
    return 1
  end
  if a[2] ~= b[2] then
    if a[2] < b[2] then return -1 end
    return 1
  end
  return 0
end
local function str(a)
  if a[1] < 0 then return '-' .. str(neg(a)) end
  if a[1] == 0 then return string.format('%d', a[2]) end
  return string.format('%.0f%09d', a[1], a[2])
end
local ZERO = {0, 0}

-- Take a live hold off the counters it was placed on (only the incarnation it was placed on: a counter reloaded
-- since then never counted it) and out of the expiry index. Returns the hold's fields.
local function unhold(hold_key, zset, hold_id)
  local f = redis.call('HMGET', hold_key, 'amt', 'st', 'keys', 'toks', 'amts')
  if f[2] == 'held' then
    local keys, toks = cjson.decode(f[3]), cjson.decode(f[4])
    local amts = {}
    if f[5] then amts = cjson.decode(f[5]) end
    for i, key in ipairs(keys) do
      if redis.call('HGET', key, 'tok') == toks[i] then
        redis.call('HINCRBY', key, 'held', str(neg(big(amts[i] or f[1]))))
        redis.call('HINCRBY', key, 'ver', 1)
      end
    end
  end
  redis.call('ZREM', zset, hold_id)
  return f
end

-- Expire holds whose instant has passed (bounded per call; every script that admits sweeps first).
local SWEEP_BATCH = 100
local function sweep(zset, prefix, now)
  local due = redis.call('ZRANGEBYSCORE', zset, '-inf', now, 'LIMIT', 0, SWEEP_BATCH)
  for _, hold_id in ipairs(due) do
    local hold_key = prefix .. 'h:' .. hold_id
    -- A hold that expires unsettled may belong to a request whose record reached the ledger before its instance
    -- died: mark its counters stale so they are recomputed from the ledger once nothing is held on them.
    local f = unhold(hold_key, zset, hold_id)
    if f[2] == 'held' then
      for _, key in ipairs(cjson.decode(f[3])) do
        if redis.call('HEXISTS', key, 'spent') == 1 then redis.call('HSET', key, 'stale', '1') end
      end
    end
    if redis.call('EXISTS', hold_key) == 1 then redis.call('HSET', hold_key, 'st', 'expired') end
  end
  return #due
end
"""

TRY_HOLD = (
    _PRELUDE
    + """
-- KEYS: holds zset, hold key, counter keys...   ARGV: prefix, now, hold_id, max_cost, min_cost, mode,
-- expires_at, hold_key_ttl_s, resync_ok, then per counter: limit ('' = unlimited), own amount ('' = a cost
-- counter, which holds the decided cost; else a rate-limit counter, which holds this amount)
local zset, hold_key = KEYS[1], KEYS[2]
local prefix, now, hold_id = ARGV[1], ARGV[2], ARGV[3]
sweep(zset, prefix, now)
local existing = redis.call('HGET', hold_key, 'amt')
if existing then return {1, existing} end  -- a retried try_hold must not hold twice

local n = #KEYS - 2
local spent, held = {}, {}
local missing, stale, vers = {}, {}, {}
for i = 1, n do
  local f = redis.call('HMGET', KEYS[i + 2], 'spent', 'held', 'stale', 'ver')
  if not f[1] then
    table.insert(missing, i - 1)
  else
    spent[i], held[i] = big(f[1]), big(f[2])
    if f[3] and ARGV[9] == '1' and cmp(held[i], ZERO) == 0 then
      table.insert(stale, i - 1)
      local tok = redis.call('HGET', KEYS[i + 2], 'tok') or ''  -- read only when stale: the hot path is unchanged
      table.insert(vers, (f[4] or '0') .. ':' .. tok)  -- the version RESYNC expects
    end
  end
end
if #missing > 0 or #stale > 0 then return {0, missing, stale, vers} end

-- The rule of ledgergate.domain.admission.decide, line for line.
local function limit_of(i) return ARGV[8 + 2 * i] end
local function own_amount(i) return ARGV[9 + 2 * i] end
local function full(i)
  local limit = limit_of(i)
  return limit ~= '' and cmp(add(spent[i], held[i]), big(limit)) >= 0
end
local amount = big(ARGV[4])
if ARGV[6] == 'standard' then
  for i = 1, n do
    if full(i) then return {2, i - 1, str(spent[i]), str(held[i])} end
  end
else
  local tightest, tightest_i = nil, nil
  for i = 1, n do
    local limit = limit_of(i)
    if limit ~= '' and own_amount(i) == '' then
      local headroom = add(big(limit), neg(add(spent[i], held[i])))
      if tightest == nil or cmp(headroom, tightest) < 0 then tightest, tightest_i = headroom, i end
    end
  end
  if tightest ~= nil then
    if cmp(tightest, ZERO) <= 0 or cmp(tightest, big(ARGV[5])) < 0 then
      return {2, tightest_i - 1, str(spent[tightest_i]), str(held[tightest_i])}
    end
    if cmp(tightest, amount) < 0 then amount = tightest end
  end
  for i = 1, n do
    if own_amount(i) ~= '' and full(i) then return {2, i - 1, str(spent[i]), str(held[i])} end
  end
end

local amt = str(amount)
local keys, toks, amts = {}, {}, {}
for i = 1, n do
  local key = KEYS[i + 2]
  local held_here = own_amount(i)
  if held_here == '' then held_here = amt end
  redis.call('HINCRBY', key, 'held', held_here)
  redis.call('HINCRBY', key, 'ver', 1)
  keys[i], toks[i], amts[i] = key, redis.call('HGET', key, 'tok'), held_here
end
redis.call(
  'HSET', hold_key, 'amt', amt, 'st', 'held',
  'keys', cjson.encode(keys), 'toks', cjson.encode(toks), 'amts', cjson.encode(amts)
)
redis.call('EXPIRE', hold_key, ARGV[8])
redis.call('ZADD', zset, ARGV[7], hold_id)
return {1, amt}
"""
)

SETTLE = (
    _PRELUDE
    + """
-- KEYS: holds zset, hold key, settled key, counter keys...   ARGV: hold_id, settled_ttl_s, then per counter:
-- amount to add, marker ttl (0 = none)
local zset, hold_key, settled_key = KEYS[1], KEYS[2], KEYS[3]
if redis.call('EXISTS', settled_key) == 1 then return 0 end
local f = unhold(hold_key, zset, ARGV[1])
local placed_on = {}
if f[3] then
  local keys, toks = cjson.decode(f[3]), cjson.decode(f[4])
  for i, key in ipairs(keys) do placed_on[key] = toks[i] end
end
redis.call('DEL', hold_key)
for i = 4, #KEYS do
  local key, amount, ttl = KEYS[i], ARGV[2 * i - 5], tonumber(ARGV[2 * i - 4])
  if amount ~= '0' then
    local g = redis.call('HMGET', key, 'spent', 'tok')
    if g[1] then
      redis.call('HINCRBY', key, 'spent', amount)
      redis.call('HINCRBY', key, 'ver', 1)
      -- Loaded after the hold was placed: its ledger snapshot may already hold this record. Keep the higher
      -- value (fail closed) and have it recomputed when the counter is next quiet.
      if placed_on[key] ~= g[2] then redis.call('HSET', key, 'stale', '1') end
    else
      -- Absent: a load that started before the ledger append may be about to set it without this record.
      redis.call('HSET', key, 'stale', '1')
      if ttl > 0 and redis.call('TTL', key) < 0 then redis.call('EXPIRE', key, ttl) end
    end
  end
end
redis.call('SET', settled_key, '1', 'EX', ARGV[2])
return 1
"""
)

RELEASE = (
    _PRELUDE
    + """
-- KEYS: holds zset, hold key   ARGV: hold_id
unhold(KEYS[2], KEYS[1], ARGV[1])
redis.call('DEL', KEYS[2])
return 1
"""
)

LOAD = """
-- Create absent counters from ledger sums: set-if-absent, so concurrent loaders never add up. Applies only if
-- the epoch key still holds the value read before the ledger: set-if-absent alone cannot tell "absent since
-- before my snapshot" from "deleted (FLUSHALL, failover) after it", and a pre-flush snapshot stored into a
-- recreated counter would miss the settles in between forever. Returns 0 (nothing stored) on a changed epoch.
-- KEYS: epoch key, counter keys...   ARGV: epoch, then (spent, ttl_s (0 = none), token) per counter.
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
for i = 2, #KEYS do
  local j = i - 1
  local key, spent, ttl, tok = KEYS[i], ARGV[3 * j - 1], tonumber(ARGV[3 * j]), ARGV[3 * j + 1]
  if redis.call('HEXISTS', key, 'spent') == 0 then
    redis.call('HSET', key, 'spent', spent, 'held', '0', 'tok', tok)
    redis.call('HINCRBY', key, 'ver', 1)
    if ttl > 0 then redis.call('EXPIRE', key, ttl) else redis.call('PERSIST', key) end
  end
end
return 1
"""

EPOCH = """
-- The epoch of this prefix's counters: created if absent (a flush deletes it), read before the ledger is.
-- KEYS: epoch key   ARGV: a fresh random value (used only if absent)
redis.call('SET', KEYS[1], ARGV[1], 'NX')
return redis.call('GET', KEYS[1])
"""

RESYNC = (
    _PRELUDE
    + """
-- Replace a stale counter's spend by a fresh ledger sum, only if nothing touched it since it was seen quiet
-- (no hold on it, same version): then no request can be half-counted. A new token turns holds placed on the old
-- incarnation into ambiguous ones, which mark it stale again. The version is ``ver:tok``: ``ver`` restarts when a
-- counter is recreated (flush), so a snapshot taken of an earlier incarnation must not match by ``ver`` alone.
-- KEYS: counter keys   ARGV: (expected version, spent, token) per counter
for i, key in ipairs(KEYS) do
  local f = redis.call('HMGET', key, 'spent', 'held', 'stale', 'ver', 'tok')
  local version = (f[4] or '0') .. ':' .. (f[5] or '')
  if f[1] and f[3] and version == ARGV[3 * i - 2] and cmp(big(f[2]), ZERO) == 0 then
    redis.call('HSET', key, 'spent', ARGV[3 * i - 1], 'tok', ARGV[3 * i])
    redis.call('HDEL', key, 'stale')
    redis.call('HINCRBY', key, 'ver', 1)
  end
end
return 1
"""
)

INSPECT = (
    _PRELUDE
    + """
-- KEYS: holds zset, counter keys...   ARGV: prefix, now.  Returns (spent or '', held, stale flag, version
-- ``ver:tok`` as RESYNC expects it) per counter.
sweep(KEYS[1], ARGV[1], ARGV[2])
local out = {}
for i = 2, #KEYS do
  local f = redis.call('HMGET', KEYS[i], 'spent', 'held', 'stale', 'ver', 'tok')
  out[i - 1] = {f[1] or '', f[2] or '0', f[3] or '', (f[4] or '0') .. ':' .. (f[5] or '')}
end
return out
"""
)

ADJUST = """
-- KEYS: counter   ARGV: delta.  Returns {0} if absent, else {1, spent, held}.
local key = KEYS[1]
if redis.call('HEXISTS', key, 'spent') == 0 then return {0} end
if ARGV[1] ~= '0' then redis.call('HINCRBY', key, 'spent', ARGV[1]) end
redis.call('HINCRBY', key, 'ver', 1)
local f = redis.call('HMGET', key, 'spent', 'held')
return {1, f[1], f[2] or '0'}
"""

HELD_COUNT = (
    _PRELUDE
    + """
-- KEYS: holds zset   ARGV: prefix, now.  Returns {expired this call, live holds}.
local swept = sweep(KEYS[1], ARGV[1], ARGV[2])
return {swept, redis.call('ZCARD', KEYS[1])}
"""
)

SWEEP_BATCH = 100  # keep equal to the Lua SWEEP_BATCH: a full batch means more may be due
