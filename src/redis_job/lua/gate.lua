-- gate: ARGV[2] host, [3] 'reserve' | 'pause', [4] interval (reserve) or wait (pause) in
-- ms. One start per interval per host across every process of the job (GCRA with no
-- burst: `gate:HOST` holds the earliest time the next start may be, on Redis' clock).
--   reserve: 0 if a start is taken now (the next one may be `interval` later), else the
--            milliseconds until one is free (ask again then: not a reservation).
--   pause:   no start before `wait` from now (a 429 or 503), for every process; and the
--            host's origins waiting in `ready` are not claimable until then, so no
--            process takes their tasks only to hold them at the gate meanwhile.
local host, op, ms = ARGV[2], ARGV[3], tonumber(ARGV[4])
local key = P .. 'gate:' .. host
local now = now_ms()
local next_start = tonumber(redis.call('GET', key) or '0') or 0
if op == 'pause' then
  if now + ms > next_start then
    redis.call('SET', key, now + ms, 'PX', ms + 60000)
  end
  -- O(origins of the job), but a pause is rare; XX GT: only origins with work waiting,
  -- and never an earlier time than they have.
  local origins = redis.call('HGETALL', ORIGINS)
  for i = 1, #origins, 2 do
    if origins[i + 1] == host then
      redis.call('ZADD', READY, 'XX', 'GT', now + ms, origins[i])
    end
  end
  return 0
end
if next_start > now then
  return next_start - now
end
if ms > 0 then
  redis.call('SET', key, now + ms, 'PX', ms + 60000)
end
return 0
