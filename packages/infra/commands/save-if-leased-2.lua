--[[
  save-if-version under a lease: saves an operation record only while the lease holds the caller's
  token (the fencing check) and the stored record is still at the expected version. The reconciler
  saves through it, so a scheduler that lost the lease (paused past its expiry, then resumed) can
  no longer change a record, whatever it believes.

    Input:
      KEYS[1] the operation's record key (a hash)
      KEYS[2] the lease key (a string: its holder's token)

      ARGV[1] expected version of the stored record, or '-1' for a record that must not exist yet
      ARGV[2] the new version
      ARGV[3] the new record, JSON
      ARGV[4] the hash's field for the record
      ARGV[5] the hash's field for the version
      ARGV[6] the caller's lease token

    Output:
      1  - saved
      0  - not saved: the stored version differs (or the record exists when '-1' was expected)
      -1 - not saved: the caller does not hold the lease
]]
if redis.call('GET', KEYS[2]) ~= ARGV[6] then return -1 end
local cur = redis.call('HGET', KEYS[1], ARGV[5])
if cur then
  if cur ~= ARGV[1] then return 0 end
elseif ARGV[1] ~= '-1' then
  return 0
end
redis.call('HSET', KEYS[1], ARGV[4], ARGV[3], ARGV[5], ARGV[2])
return 1
