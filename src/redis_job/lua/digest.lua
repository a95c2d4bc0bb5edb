-- digest: ARGV[2] an image's SHA-256 (hex), [3] the copy just placed: its URL, machine
-- and absolute path, one a line. `DEDUPE: content` across the job: the first copy of a
-- content is claimed once (`HSETNX`), so of two processes with the same bytes exactly one
-- keeps its copy. Answers the first copy, which is the caller's own when it won.
local DIGESTS = P .. 'digests'
redis.call('HSETNX', DIGESTS, ARGV[2], ARGV[3])
return redis.call('HGET', DIGESTS, ARGV[2])
