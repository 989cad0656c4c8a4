--[[
  Saves an operation record only if the stored one is still at the expected version
  (compare-and-set), so two schedulers (or a stale one) never overwrite each other: the loser
  re-reads and re-applies its event. The version is a field of its own beside the record's JSON,
  so the comparison never decodes the record.

    Input:
      KEYS[1] the operation's record key (a hash)

      ARGV[1] expected version of the stored record, or '-1' for a record that must not exist yet
      ARGV[2] the new version
      ARGV[3] the new record, JSON
      ARGV[4] the hash's field for the record
      ARGV[5] the hash's field for the version

    Output:
      1 - saved
      0 - not saved: the stored version differs (or the record exists when '-1' was expected)
]]
local cur = redis.call('HGET', KEYS[1], ARGV[5])
if cur then
  if cur ~= ARGV[1] then return 0 end
elseif ARGV[1] ~= '-1' then
  return 0
end
redis.call('HSET', KEYS[1], ARGV[4], ARGV[3], ARGV[5], ARGV[2])
return 1
