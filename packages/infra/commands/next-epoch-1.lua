--[[
  Raises a container's ownership epoch by one and returns it: a new operation's epoch, one above
  every epoch the container has had. An owner kept as a bare counter (the first layout) becomes a
  hash first, keeping its epoch.

    Input:
      KEYS[1] the container's owner key (a hash; a string in the first layout)

      ARGV[1] name of the epoch field

    Output:
      the new epoch (integer)
]]
if redis.call('TYPE', KEYS[1])['ok'] == 'string' then
  local e = redis.call('GET', KEYS[1])
  redis.call('DEL', KEYS[1])
  redis.call('HSET', KEYS[1], ARGV[1], e)
end
return redis.call('HINCRBY', KEYS[1], ARGV[1], 1)
