-- status: what `job status` shows beside the counts, read in one step. Returns { hosts,
-- origins, waiting, nodes }: per host with leases out, how many; the first 20 origins
-- with work waiting (in the order they go), each with its queue's length and the ms
-- until it may go (0: now; more after a 429/503); how many origins wait in all; and per
-- process seen, the ms since it last claimed or renewed and the leases it holds.
local now = now_ms()
local origins = {}
for _, origin in ipairs(redis.call('ZRANGE', READY, 0, 19)) do
  local at = tonumber(redis.call('ZSCORE', READY, origin)) or now
  origins[#origins + 1] = { origin, redis.call('LLEN', queue(origin)), math.max(0, at - now) }
end
local nodes = {}
local seen = redis.call('HGETALL', NODES)
for i = 1, #seen, 2 do
  nodes[#nodes + 1] = { seen[i], math.max(0, now - tonumber(seen[i + 1])), redis.call('SCARD', owned(seen[i])) }
end
local hosts = {}
local inflight = redis.call('HGETALL', INFLIGHT)
for i = 1, #inflight, 2 do
  hosts[#hosts + 1] = { inflight[i], tonumber(inflight[i + 1]) }
end
return { hosts, origins, redis.call('ZCARD', READY), nodes }
