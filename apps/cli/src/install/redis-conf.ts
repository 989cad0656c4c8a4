import type { LocalRedis } from './options.js';
import { INSTALL_DEFAULTS } from './defaults.js';

/** Where Debian's redis-server@.service reads instance `ferry`'s configuration. */
export const REDIS_CONF = `/etc/redis/redis-${INSTALL_DEFAULTS.redisInstance}.conf`;

/**
 * ferry's Redis, run by Debian's own hardened template unit (redis-server@ferry.service: user
 * redis, ProtectSystem=strict, writes only /var/lib/redis and /run/redis-ferry), beside Debian's
 * redis-server.service if that one runs: another port, other file names in the same dir.
 */
export function redisConf(r: LocalRedis, redact: boolean): string {
  const binds = ['127.0.0.1', '-::1', ...r.binds.filter((b) => b !== '127.0.0.1' && b !== '::1')];
  const run = `/run/redis-${INSTALL_DEFAULTS.redisInstance}`;
  return `# ferry's Redis: systemctl enable --now redis-server@${INSTALL_DEFAULTS.redisInstance}
# Written by \`ferry install scheduler\`. What ferry needs of it: AOF on (a crash loses at most about
# a second of writes, which ferry recovers from), and never evicting a key (a lost job or record is
# a lost step: with noeviction a full Redis refuses writes instead, and the operation pauses).
bind ${binds.join(' ')}
protected-mode yes
port ${r.port}
unixsocket ${run}/redis-server.sock
unixsocketperm 770
pidfile ${run}/redis-server.pid
daemonize no
# Logs to stdout: the journal (journalctl -u redis-server@${INSTALL_DEFAULTS.redisInstance}).
logfile ""

dir /var/lib/redis
dbfilename ${INSTALL_DEFAULTS.redisInstance}.rdb
appendonly yes
appenddirname ${INSTALL_DEFAULTS.redisInstance}-appendonly
appendfsync everysec

# ferry keeps its keys bounded (docs/redis-keys.md: about 8.5 MiB once retention is reached); the
# cap is what a runaway would meet, with writes refused rather than keys dropped.
maxmemory ${r.maxmemory}
maxmemory-policy noeviction

# Whoever can write here can stall or roll back every operation (README, "Security model"), so
# beyond loopback Redis answers only with a password (--redis-password-file). Stronger: ACL users
# per component (issue 14), e.g. \`user default off\` and one user each for the scheduler and the
# workers, in an aclfile.
${r.password ? `requirepass ${redact ? '<redacted>' : r.password}` : '# requirepass: none (loopback and the unix socket only)'}
`;
}
