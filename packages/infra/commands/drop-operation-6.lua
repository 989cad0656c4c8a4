--[[
  Removes a finished operation's record, its progress, start marks, replay counts and log, and its
  entry in the index, only if the record is still at the version gc judged (so a record that changed
  since, or one saved anew, is never removed). gc judges only finished operations.

    Input:
      KEYS[1] the operation's record key (a hash)
      KEYS[2] its progress hash
      KEYS[3] its start marks hash
      KEYS[4] its replay counts hash
      KEYS[5] its log (a stream)
      KEYS[6] the index of operations (a sorted set of ids)

      ARGV[1] the operation's id
      ARGV[2] the record's version gc judged ('-1': the record is absent, only leftovers to remove)
      ARGV[3] name of the record's version field

    Output:
      1 - removed
      0 - not removed: the record's version differs (or it exists when '-1' was given)
]]
local cur = redis.call('HGET', KEYS[1], ARGV[3])
if cur then
  if cur ~= ARGV[2] then return 0 end
elseif ARGV[2] ~= '-1' then
  return 0
end
redis.call('DEL', KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5])
redis.call('ZREM', KEYS[6], ARGV[1])
return 1
