-- complete: ARGV[2] node, [3] lease id, [4] its task id, [5] status, [6] where the image
-- was stored ('' if not), [7] its bytes, [8..] children (see `offer`). Returns { 'done' | 'duplicate' | 'stray', admitted per child (empty unless
-- done) }.
local node, id, tid, status, path, bytes = ARGV[2], ARGV[3], ARGV[4], ARGV[5], ARGV[6], tonumber(ARGV[7])
local now = now_ms()
local l = lease_of(id)

-- Done already (another holder's completion, or failed after its tries): counted once.
if redis.call('HEXISTS', DONE, tid) == 1 then
  if l then
    free(id, l)
  end
  count('duplicates', 1)
  return { 'duplicate', {} }
end

-- The task: under this lease, or (the lease expired and was reaped) queued again, or
-- leased again to another node, whose completion will then count as a duplicate.
local task, origin
if l then
  task, origin = l.task, l.origin
else
  local requeued = redis.call('HGET', REQUEUED, tid)
  local other = redis.call('HGET', TASKLEASE, tid)
  if requeued then
    local item
    origin, item = string.match(requeued, '^([^\n]*)\n(.*)$')
    if redis.call('LREM', queue(origin), 1, item) == 1 then
      count('queued', -1)
    end
    if redis.call('LLEN', queue(origin)) == 0 then
      redis.call('ZREM', READY, origin)
    end
    redis.call('HDEL', REQUEUED, tid)
    task = parse(item)
  elseif other then
    local ol = lease_of(other)
    task, origin = ol and ol.task, ol and ol.origin
  end
  if not task then
    count('stray', 1)
    return { 'stray', {} }
  end
end

-- Children first, then the record, the host's room, and last `open`: it cannot reach
-- zero while what this task revealed is not queued.
local admitted = offer(8, now)
record_done(task, status, node, path, bytes, origin)
if l then
  free(id, l)
end
count('done', 1)
-- By how it ended (ok, failed, skipped, replaced, detail_ok, detail_failed): the job's
-- counts by outcome, the same for every process.
count('s:' .. status, 1)
count('open', -1)
settle(now)
return { 'done', admitted }
