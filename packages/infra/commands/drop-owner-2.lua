--[[
  Forgets a container's ownership epoch, only while no operation holds the container and the epoch
  is still the one gc checked (no operation began and ended since: its step jobs were not among
  those gc looked at). A later operation on the container starts again from epoch 1.

    Input:
      KEYS[1] the container's owner key (a hash)
      KEYS[2] the container's lock key

      ARGV[1] the epoch gc checked
      ARGV[2] name of the epoch field

    Output:
      1 - removed
      0 - kept: the container is held, or its epoch moved
]]
if redis.call('EXISTS', KEYS[2]) == 1 then return 0 end
if redis.call('TYPE', KEYS[1])['ok'] ~= 'hash' then return 0 end
if (redis.call('HGET', KEYS[1], ARGV[2]) or '0') ~= ARGV[1] then return 0 end
redis.call('DEL', KEYS[1])
return 1
