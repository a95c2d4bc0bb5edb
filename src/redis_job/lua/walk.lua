-- walk: ARGV[2] node, [3] lease time in ms, [4] 'take' | 'mark' | 'done' | 'leave', [5] the
-- mark (for 'mark'). Who walks the job's listing pages: one node at a time, under a
-- lease it renews by taking again. While the walk is not done it holds one count of
-- `open`, so the job cannot look done before its pages have offered their images.
-- Returns { answer, mark }; the mark (JSON, `walk:mark`) only with 'new'.
--   take:  'new' (this node walks now, from the mark its last walker left, if any),
--          'mine' (renewed), 'elsewhere' (another node's lease is live), 'done'.
--   mark:  keeps where this node's walk stands (pages before it are finished): 'mine',
--          or 'elsewhere' if the lease went to another node (which then keeps its own).
--   done:  the walk is over: 'done', or 'elsewhere' if the lease went to another node.
--   leave: this node stops walking (Ctrl-C): another takes over at once. 'left'.
local node, lease_ms, op, mark = ARGV[2], tonumber(ARGV[3]), ARGV[4], ARGV[5]
local WALKER, UNTIL = P .. 'walker', P .. 'walker:until'
local WALK_OPEN, WALK_DONE, WALK_MARK = P .. 'walk:open', P .. 'walk:done', P .. 'walk:mark'
local now = now_ms()
if redis.call('EXISTS', WALK_DONE) == 1 then
  return { 'done', '' }
end
local holder = redis.call('GET', WALKER)
local live = (tonumber(redis.call('GET', UNTIL) or '0') or 0) > now
if op == 'take' then
  if holder and holder ~= node and live then
    return { 'elsewhere', '' }
  end
  redis.call('SET', WALKER, node)
  redis.call('SET', UNTIL, now + lease_ms)
  if redis.call('SETNX', WALK_OPEN, '1') == 1 then
    count('open', 1)
  end
  if holder == node and live then
    return { 'mine', '' }
  end
  return { 'new', redis.call('GET', WALK_MARK) or '' }
elseif op == 'mark' then
  if holder ~= node then
    return { 'elsewhere', '' }
  end
  redis.call('SET', WALK_MARK, mark)
  return { 'mine', '' }
elseif op == 'done' then
  if holder ~= node then
    return { 'elsewhere', '' }
  end
  redis.call('DEL', WALKER, UNTIL)
  redis.call('SET', WALK_DONE, '1')
  if redis.call('DEL', WALK_OPEN) == 1 then
    count('open', -1)
  end
  settle(now)
  return { 'done', '' }
end
if holder == node then
  redis.call('DEL', WALKER, UNTIL)
end
return { 'left', '' }
