-- renew: ARGV[2] node, [3] lease time in ms. Every live lease the node holds expires
-- that long from now (one expired but not reaped yet is still the node's). Returns how
-- many.
local node, lease_ms = ARGV[2], tonumber(ARGV[3])
local now = now_ms()
alive(node, now)
local renewed = 0
for _, id in ipairs(redis.call('SMEMBERS', owned(node))) do
  if redis.call('ZSCORE', LEASES, id) then
    redis.call('ZADD', LEASES, 'XX', now + lease_ms, id)
    renewed = renewed + 1
  else
    redis.call('SREM', owned(node), id)
  end
end
return renewed
