-- release: ARGV[2] node, [3..] lease ids, or '*' for every lease the node holds. Each of
-- the node's live leases goes back to the front of its queue without counting a try.
-- Returns how many went back.
local node = ARGV[2]
local now = now_ms()
local ids = {}
if ARGV[3] == '*' then
  ids = redis.call('SMEMBERS', owned(node))
else
  for i = 3, #ARGV do
    ids[#ids + 1] = ARGV[i]
  end
end
local released = 0
for _, id in ipairs(ids) do
  local l = lease_of(id)
  if l and l.node == node then
    free(id, l)
    if redis.call('HEXISTS', DONE, l.task.tid) == 0 then
      requeue(l.origin, l.task, now)
      released = released + 1
    end
  else
    redis.call('SREM', owned(node), id)
  end
end
return released
