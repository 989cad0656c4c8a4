import { dirname } from 'node:path';
import type { SchedulerInstall } from './options.js';
import { INSTALL_DEFAULTS } from './defaults.js';
import { stateDirectory } from './worker-unit.js';

/** ferry-scheduler.service: a Node process that talks to Redis and keeps its keys; it needs no power of root's. */
export function schedulerUnit(s: SchedulerInstall, envPath: string): string {
  const redis = s.redis ? [`redis-server@${INSTALL_DEFAULTS.redisInstance}.service`] : [];
  const underState = (p: string) => p === s.stateDir || p.startsWith(`${s.stateDir}/`);
  // It writes its state dir, and makes the control key (and its .pub) on first start.
  const writable = [...(/^\/var\/lib\//.test(s.stateDir) ? [] : [s.stateDir]), ...(underState(dirname(s.controlKey)) ? [] : [dirname(s.controlKey)])];
  return `# ferry scheduler: plans operations and advances them through the hosts' queues. Written by
# \`ferry install scheduler\`; settings in ${envPath}.
[Unit]
Description=ferry scheduler
Wants=${['network-online.target', ...redis].join(' ')}
After=${['network-online.target', ...redis].join(' ')}

[Service]
Type=exec
EnvironmentFile=${envPath}
ExecStart=${s.ferryBin} scheduler
${[stateDirectory(s.stateDir), ...writable.map((p) => `ReadWritePaths=${p}`)].join('\n')}
# Back 5 s after a crash; any number of schedulers may run, and one that is away loses nothing
# (operations are records in Redis, advanced by whichever scheduler reads them).
Restart=on-failure
RestartSec=5s
# SIGTERM to the scheduler alone, so it finishes the transition in hand; then SIGKILL to anything
# left (with REDIS_URL set it starts no process of its own).
KillMode=mixed
TimeoutStopSec=30s

# Logs: JSON lines (pino) on stderr, into the journal: journalctl -u ferry-scheduler -o cat.
StandardOutput=journal
StandardError=journal
SyslogIdentifier=ferry-scheduler

# Hardening: it runs as root only to own root's files (its private key, 0600); without any
# capability it can reach nothing else of root's.
CapabilityBoundingSet=
NoNewPrivileges=yes
ProtectSystem=strict
ProtectHome=yes
PrivateTmp=yes
PrivateDevices=yes
ProtectKernelTunables=yes
ProtectKernelModules=yes
ProtectKernelLogs=yes
ProtectControlGroups=yes
ProtectClock=yes
ProtectHostname=yes
ProtectProc=invisible
RestrictAddressFamilies=AF_INET AF_INET6 AF_UNIX
RestrictNamespaces=yes
RestrictRealtime=yes
RestrictSUIDSGID=yes
LockPersonality=yes
SystemCallArchitectures=native
SystemCallFilter=@system-service
# A call outside the filter fails with EPERM rather than killing the process: libuv tries
# io_uring and falls back when it is refused.
SystemCallErrorNumber=EPERM
UMask=0077
# Not set: MemoryDenyWriteExecute: V8's JIT (node) needs writable and executable pages.

[Install]
WantedBy=multi-user.target
`;
}
