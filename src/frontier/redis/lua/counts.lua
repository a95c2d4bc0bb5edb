-- counts: the job's counters and the leases out, read in one step.
-- Returns { accepted, open, done, lost, duplicates, stray, queued, leases }.
local c = redis.call('HMGET', COUNTS, 'accepted', 'open', 'done', 'lost', 'duplicates', 'stray', 'queued')
local out = {}
for i = 1, 7 do
  out[i] = tonumber(c[i] or '0') or 0
end
out[8] = redis.call('ZCARD', LEASES)
return out
