--[[
  Takes a lease that is free, or keeps (renews) one this holder has: a key holding its holder's
  token, with an expiry. Taking and renewing are one script so that a holder never renews a lease
  that expired and was taken by another meanwhile (the token would differ).

    Input:
      KEYS[1] the lease key (a string: the holder's token)

      ARGV[1] the token this holder has ('' when it holds nothing)
      ARGV[2] a fresh token, used if the lease is free
      ARGV[3] the lease's time to live, ms

    Output:
      the token in force for this holder (ARGV[1] renewed, or ARGV[2] taken)
      nil - another holder has it
]]
local cur = redis.call('GET', KEYS[1])
if cur and cur == ARGV[1] then
  redis.call('PEXPIRE', KEYS[1], ARGV[3])
  return cur
end
if not cur then
  redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[3])
  return ARGV[2]
end
return false
