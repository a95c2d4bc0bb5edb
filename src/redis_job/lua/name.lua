-- name: ARGV[2] an object's key in its bucket, [3] the URL whose image it is to hold.
-- Reserves the key for that URL across every process of the job, so two processes
-- filling one bucket never write one key for two images (an object store's PUT replaces
-- what is there). 1 if it was free or is that URL's already (the same image fetched
-- again after a lease expired), else 0.
local NAMES = P .. 'names'
local name, url = ARGV[2], ARGV[3]
if redis.call('HSETNX', NAMES, name, url) == 1 or redis.call('HGET', NAMES, name) == url then
  return 1
end
return 0
