-- retry (`job retry`): every task that ended failed (an image, a detail page, or one lost
-- after its leases expired) goes back to the back of its queue with no try counted, and
-- its counts move from done (or lost) back to open. The job is reopened: no longer
-- cancelled, not finished, its keys no longer expiring (the next end sets that again).
-- One call reads every done record: O(records), for a command run by hand.
-- Returns { tasks queued again, failures whose record holds no task (written by an
-- older version), 1 if the job had been cancelled }.
local now = now_ms()
local queued, kept = 0, 0
local cursor = '0'
repeat
  local page = redis.call('HSCAN', DONE, cursor, 'COUNT', 1000)
  cursor = page[1]
  local entries = page[2]
  for i = 1, #entries, 2 do
    local tid, record = entries[i], cjson.decode(entries[i + 1])
    if failure(record.status) then
      local t = record.item and parse(record.item)
      if t and record.origin then
        t.tries = 0
        redis.call('HDEL', DONE, tid)
        enqueue(record.origin, item_of(t), false, now)
        if string.sub(record.status, 1, 7) == 'failed:' then
          count('lost', -1)
        else
          count('done', -1)
          count('s:' .. record.status, -1)
        end
        count('open', 1)
        queued = queued + 1
      else
        kept = kept + 1
      end
    end
  end
until cursor == '0'
local cancelled = redis.call('HDEL', COUNTS, 'cancelled')
if queued > 0 or cancelled == 1 then
  redis.call('HDEL', COUNTS, 'finished_at')
  for _, key in ipairs(KEPT) do
    redis.call('PERSIST', P .. key)
  end
end
return { queued, kept, cancelled }
