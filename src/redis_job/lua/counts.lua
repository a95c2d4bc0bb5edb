-- counts: the job's counters and the leases out, read in one step.
-- Returns { accepted, open, done, lost, duplicates, stray, queued, leases, ok, failed,
-- skipped, detail_ok, detail_failed, cancelled, replaced }.
local c = redis.call('HMGET', COUNTS, 'accepted', 'open', 'done', 'lost', 'duplicates', 'stray', 'queued',
  's:ok', 's:failed', 's:skipped', 's:detail_ok', 's:detail_failed', 'cancelled', 's:replaced')
local out = {}
for i = 1, 14 do
  out[i] = tonumber(c[i] or '0') or 0
end
table.insert(out, 8, redis.call('ZCARD', LEASES))
return out
