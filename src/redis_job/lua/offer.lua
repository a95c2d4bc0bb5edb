-- offer: ARGV[2..] offers (see `offer`). Returns 1 or 0 per offer, admitted or not.
return offer(2, now_ms())
