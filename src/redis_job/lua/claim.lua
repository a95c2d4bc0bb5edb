-- claim: ARGV[2] node, [3] how many at most, [4] per-host limit across all nodes,
-- [5] lease time in ms, [6] how many expired leases make a task fail.
-- Returns { {lease id, payload}... }, { {payload, reason}... } (tasks that failed here),
-- and how many tasks are queued after it (a walker lists pages while that is short).
local node, want, limit = ARGV[2], tonumber(ARGV[3]), tonumber(ARGV[4])
local lease_ms, max_tries = tonumber(ARGV[5]), tonumber(ARGV[6])
local now = now_ms()
alive(node, now)
-- A cancelled job hands out nothing more: each process ends once what it holds is done.
local function queued()
  return tonumber(redis.call('HGET', COUNTS, 'queued') or '0')
end
if redis.call('HGET', COUNTS, 'cancelled') == '1' then
  return { {}, {}, queued() }
end

-- First the leases whose holder stopped renewing (bounded, to keep one call short; the
-- rest go at the next claim).
local lost = {}
for _, id in ipairs(redis.call('ZRANGEBYSCORE', LEASES, '-inf', now, 'LIMIT', 0, 64)) do
  local l = lease_of(id)
  if not l then
    redis.call('ZREM', LEASES, id)
  else
    free(id, l)
    -- Done already: a late completion came first. Nothing to give back.
    if redis.call('HEXISTS', DONE, l.task.tid) == 0 then
      local t = l.task
      t.tries = t.tries + 1
      if t.tries >= max_tries then
        local reason = 'lease expired ' .. t.tries .. ' times'
        redis.call('HDEL', REQUEUED, t.tid)
        record_done(t, 'failed: ' .. reason, l.node, nil, nil, l.origin)
        count('lost', 1)
        count('open', -1)
        lost[#lost + 1] = { t.payload, reason }
        settle(now)
      else
        requeue(l.origin, t, now)
      end
    end
  end
end

-- Then the work: origins ready now, those waiting longest first (ties by name), each
-- while its host has room.
local leases = {}
if want > 0 then
  for _, origin in ipairs(redis.call('ZRANGEBYSCORE', READY, '-inf', now)) do
    if #leases >= want then
      break
    end
    local host = redis.call('HGET', ORIGINS, origin)
    local busy = tonumber(redis.call('HGET', INFLIGHT, host) or '0')
    while busy < limit and #leases < want do
      local item = redis.call('LPOP', queue(origin))
      if not item then
        break
      end
      count('queued', -1)
      local t = parse(item)
      if t then
        redis.call('HDEL', REQUEUED, t.tid)
      end
      -- A task completed late while queued again is taken off by that completion; this
      -- only guards against one that slipped through.
      if t and redis.call('HEXISTS', DONE, t.tid) == 0 then
        t.seq = (t.seq + 1) % 65536
        local id = lease_id(t)
        redis.call('HSET', LEASED, id, node .. '\n' .. origin .. '\n' .. item_of(t))
        redis.call('ZADD', LEASES, now + lease_ms, id)
        redis.call('SADD', owned(node), id)
        redis.call('HSET', TASKLEASE, t.tid, id)
        redis.call('HINCRBY', INFLIGHT, host, 1)
        busy = busy + 1
        leases[#leases + 1] = { id, t.payload }
      end
    end
    if redis.call('LLEN', queue(origin)) == 0 then
      redis.call('ZREM', READY, origin)
    elseif busy > 0 then
      -- Taken from now: to the back, so the origins waiting longest go first next time.
      redis.call('ZADD', READY, 'XX', now, origin)
    end
  end
end
return { leases, lost, queued() }
