-- gate: ARGV[2] host, [3] 'reserve' | 'pause', [4] interval (reserve) or wait (pause) in
-- ms. One start per interval per host across every process of the job (GCRA with no
-- burst: `gate:HOST` holds the earliest time the next start may be, on Redis' clock).
--   reserve: 0 if a start is taken now (the next one may be `interval` later), else the
--            milliseconds until one is free (ask again then: not a reservation).
--   pause:   no start before `wait` from now (a 429 or 503), for every process.
local host, op, ms = ARGV[2], ARGV[3], tonumber(ARGV[4])
local key = P .. 'gate:' .. host
local now = now_ms()
local next_start = tonumber(redis.call('GET', key) or '0') or 0
if op == 'pause' then
  if now + ms > next_start then
    redis.call('SET', key, now + ms, 'PX', ms + 60000)
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
