--[[
  Moves a container's ownership forward to an epoch and its owning host; never back.

    Input:
      KEYS[1] the container's owner key (a hash)

      ARGV[1] the epoch to move to
      ARGV[2] the host owning the container from that epoch on
      ARGV[3] name of the epoch field
      ARGV[4] name of the host field

    Output:
      the epoch in force afterwards (integer): ARGV[1] if it was moved, else the higher one stored
]]
local cur = tonumber(redis.call('HGET', KEYS[1], ARGV[3]) or '0')
if cur <= tonumber(ARGV[1]) then
  redis.call('HSET', KEYS[1], ARGV[3], ARGV[1], ARGV[4], ARGV[2])
  return tonumber(ARGV[1])
end
return cur
