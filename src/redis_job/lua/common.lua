-- Prepended to every script of the Redis frontier (scripts.rs). ARGV[1] is the job's key
-- prefix `isc:{JOB}:`; KEYS[1] is its counters hash, declared so that a cluster routes
-- the call to the slot every key of the job shares (one hash tag), which is why the
-- keys built here from the prefix may be used without being declared.
--
-- A task travels as an item `TID:TRIES:SEQ:URL\nPAYLOAD`: its task id (one per offer
-- admitted), the leases of it that expired, the claims of it so far (a lease id is
-- TID * 65536 + SEQ, so a late completion finds its task without a record kept per
-- lease), its URL (for the done record) and the offer as JSON, opaque here.

local P = ARGV[1]
local COUNTS = KEYS[1]
local SEEN, SEEN_DETAIL = P .. 'seen', P .. 'seen:detail'
local READY, ORIGINS, INFLIGHT = P .. 'ready', P .. 'origins', P .. 'inflight'
local LEASES, LEASED, TASKLEASE = P .. 'leases', P .. 'leased', P .. 'tasklease'
local REQUEUED, DONE = P .. 'requeued', P .. 'done'
local EXPIRY, NODES = P .. 'expiry', P .. 'nodes'

-- Every key a job keeps once it is over. The others are gone by then: a queue, an
-- `owned:` set and the walker's lease are deleted as they empty, and a `gate:` key
-- expires a minute after its host's last request.
local KEPT = { 'counts', 'seen', 'seen:detail', 'ready', 'origins', 'inflight', 'leases', 'leased', 'tasklease',
  'requeued', 'done', 'names', 'digests', 'nodes', 'walk:open', 'walk:done', 'walk:mark', 'settings', 'expiry', 'clock' }

local function queue(origin)
  return P .. 'q:' .. origin
end

local function owned(node)
  return P .. 'owned:' .. node
end

-- Milliseconds by Redis' clock, so that no machine's clock matters; plus a skew that only
-- tests set (`clock`), to make leases expire without waiting.
local function now_ms()
  local t = redis.call('TIME')
  local skew = tonumber(redis.call('GET', P .. 'clock') or '0') or 0
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000) + skew
end

-- The process `node` was alive at `now` (it claimed or renewed): for `job status`.
local function alive(node, now)
  redis.call('HSET', NODES, node, now)
end

local function count(field, by)
  return redis.call('HINCRBY', COUNTS, field, by)
end

local function parse(item)
  local tid, tries, seq, url, payload = string.match(item, '^(%d+):(%d+):(%d+):([^\n]*)\n(.*)$')
  if not tid then
    return nil
  end
  return { tid = tid, tries = tonumber(tries), seq = tonumber(seq), url = url, payload = payload }
end

local function item_of(t)
  return t.tid .. ':' .. t.tries .. ':' .. t.seq .. ':' .. t.url .. '\n' .. t.payload
end

-- A lease id as a decimal string: `..` would print a large number in exponent form. Lua
-- numbers are doubles: exact while task ids stay under 2^37 (137 billion tasks).
local function lease_id(t)
  return string.format('%.0f', tonumber(t.tid) * 65536 + t.seq)
end

-- The live lease `id`: its holder, its task's origin and the task; nil if not live.
local function lease_of(id)
  local rec = redis.call('HGET', LEASED, id)
  if not rec then
    return nil
  end
  local node, origin, item = string.match(rec, '^([^\n]*)\n([^\n]*)\n(.*)$')
  local task = item and parse(item)
  if not task then
    return nil
  end
  return { node = node, origin = origin, task = task }
end

-- Lease `id` stops counting: out of the lease sets, its host's in-flight count down.
local function free(id, l)
  redis.call('HDEL', LEASED, id)
  redis.call('ZREM', LEASES, id)
  redis.call('SREM', owned(l.node), id)
  if redis.call('HGET', TASKLEASE, l.task.tid) == id then
    redis.call('HDEL', TASKLEASE, l.task.tid)
  end
  local host = redis.call('HGET', ORIGINS, l.origin)
  if host and redis.call('HINCRBY', INFLIGHT, host, -1) <= 0 then
    redis.call('HDEL', INFLIGHT, host)
  end
end

local function enqueue(origin, item, front, now)
  if front then
    redis.call('LPUSH', queue(origin), item)
  else
    redis.call('RPUSH', queue(origin), item)
  end
  redis.call('ZADD', READY, 'NX', now, origin)
  count('queued', 1)
end

-- Back to the front of its queue, remembered as queued again so that a late completion
-- of the lease it had can find it and take it off.
local function requeue(origin, t, now)
  local item = item_of(t)
  enqueue(origin, item, true, now)
  redis.call('HSET', REQUEUED, t.tid, origin .. '\n' .. item)
end

-- Once nothing is open and no lease is out, the job is over: its end is noted (once) and,
-- if it was started with a time to keep it (`expiry`, ms), every key of it is set to go
-- that long after the end. Called by each script that can bring `open` to zero.
local function settle(now)
  if (tonumber(redis.call('HGET', COUNTS, 'open') or '0') or 0) > 0 or redis.call('ZCARD', LEASES) > 0 then
    return
  end
  redis.call('HSETNX', COUNTS, 'finished_at', now)
  local keep = tonumber(redis.call('GET', EXPIRY) or '0') or 0
  if keep <= 0 then
    return
  end
  local at = tonumber(redis.call('HGET', COUNTS, 'finished_at')) + keep
  for _, key in ipairs(KEPT) do
    redis.call('PEXPIREAT', P .. key, at)
  end
end

-- Whether a done record's status is a failure (`failed: REASON` is a task lost after its
-- leases expired).
local function failure(status)
  return status == 'failed' or status == 'detail_failed' or string.sub(status, 1, 7) == 'failed:'
end

-- The job's record of how task `t` ended; for an image stored, where and how large. A
-- failure also keeps its origin and the task itself, so that `job retry` can queue it
-- again.
local function record_done(t, status, node, path, bytes, origin)
  local record = { url = t.url, status = status, node = node }
  if path and path ~= '' then
    record.path, record.bytes = path, bytes
  end
  if origin and failure(status) then
    record.origin, record.item = origin, item_of(t)
  end
  redis.call('HSET', DONE, t.tid, cjson.encode(record))
end

-- Offers from ARGV[first] on, six arguments each: the URL's 128-bit hash, flags ('a'
-- again, 'd' a detail page), origin, host, URL, payload. Each one whose URL was never
-- seen (or that comes again) is queued at the back of its origin's queue and counted
-- open. Returns 1 or 0 per offer.
local function offer(first, now)
  local admitted = {}
  for i = first, #ARGV - 5, 6 do
    local hash, flags, origin, host, url, payload = ARGV[i], ARGV[i + 1], ARGV[i + 2], ARGV[i + 3], ARGV[i + 4], ARGV[i + 5]
    local seen = SEEN
    if string.find(flags, 'd', 1, true) then
      seen = SEEN_DETAIL
    end
    if string.find(flags, 'a', 1, true) or redis.call('SADD', seen, hash) == 1 then
      local tid = string.format('%.0f', count('tasks', 1))
      redis.call('HSETNX', ORIGINS, origin, host)
      enqueue(origin, tid .. ':0:0:' .. url .. '\n' .. payload, false, now)
      count('accepted', 1)
      count('open', 1)
      admitted[#admitted + 1] = 1
    else
      admitted[#admitted + 1] = 0
    end
  end
  return admitted
end

