/** Where things live on a host unless told otherwise. */
export const INSTALL_DEFAULTS = {
  stateDir: '/var/lib/ferry',
  ferryBin: '/usr/local/bin/ferry',
  lxcPath: '/var/lib/lxc',
  /** Debian's redis-server@.service instance `ferry`: /etc/redis/redis-ferry.conf, /run/redis-ferry. */
  redisInstance: 'ferry',
  redisSocket: '/run/redis-ferry/redis-server.sock',
  /** Not 6379: Debian's own redis-server.service (which setup.sh installs) keeps that one. */
  redisPort: 6380,
  redisMaxmemory: '1gb',
} as const;
