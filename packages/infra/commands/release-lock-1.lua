--[[
  Releases a container's lock only if the given migration holds it.

    Input:
      KEYS[1] the container's lock key (a string: the holding migration's id)

      ARGV[1] the migration id releasing it

    Output:
      1 - released
      0 - not held by this migration (held by another, or free): left as it was
]]
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
