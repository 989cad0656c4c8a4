import type { WorkerInstall } from './options.js';
import { INSTALL_DEFAULTS } from './defaults.js';

/**
 * ferry-worker.service. The comments travel in the unit: an operator reading it on a host learns
 * why it is as it is, and a change that drops a reason shows in review.
 */
export function workerUnit(w: WorkerInstall, envPath: string): string {
  const localRedis = w.redisUrl === `unix://${INSTALL_DEFAULTS.redisSocket}`;
  const after = ['network-online.target', 'lxc-net.service', ...(localRedis ? [`redis-server@${INSTALL_DEFAULTS.redisInstance}.service`] : [])];
  return `# ferry worker for host ${w.host}: runs this host's steps with LXC, rsync over SSH, the cgroup
# freezer, fanotify and CRIU, as root. Written by \`ferry install worker\`; settings in ${envPath}.
[Unit]
Description=ferry worker (host ${w.host})
Wants=network-online.target
After=${after.join(' ')}

[Service]
Type=exec
EnvironmentFile=${envPath}
ExecStart=${w.ferryBin} worker
${stateDirectory(w.stateDir)}
# Back 5 s after a crash: long enough not to spin, well inside the 30 s of silence after which the
# reconciler takes a host as gone. A clean stop (exit 0) stays stopped.
Restart=on-failure
RestartSec=5s

# Stopping. KillMode=process: SIGTERM goes to the worker alone, which stops taking jobs, gives its
# running steps 10 s, then aborts them (their own child processes get SIGTERM, SIGKILL 2 s later)
# and hands them back to the queue, where a successor resumes them (steps are idempotent).
# - control-group (the default) would signal every process of the unit at the same instant: an
#   rsync, ssh or criu dies under a step that is still running, which then fails instead of being
#   handed back, and a criu dump killed half-way can leave a container seized or frozen.
# - mixed would SIGKILL whatever is left in the unit's cgroup once the worker has exited. LXC run
#   as root starts a container's monitor and payload in cgroups of their own, under init's cgroup
#   (lxc.monitor.NAME, lxc.payload.NAME), so they are not in it; but between lxc-start's fork and
#   the monitor's move, with lxc.cgroup.relative = 1 (containers below the worker's cgroup), or
#   while lxc-checkpoint restores one, container processes are, and a container whose
#   monitor is killed is killed with it (its init's parent-death signal is SIGKILL).
# - process leaves those alone. What it may leave behind of the worker's own (an rsync, an ssh, a
#   criu still finishing) the next worker settles before it runs anything: transfers killed, the
#   rest waited for, container monitors left alone (predecessor.ts, settleOrphans). Docker,
#   containerd and Incus, whose containers must outlive their daemons, do the same.
KillMode=process
# The worker's stop takes about 15 s at most (10 s for steps, 2 s for their children, then its
# log lines); only past this is the worker itself killed (KillMode=process: it alone).
TimeoutStopSec=60s
# As LXC's own units (lxc.service, lxc@.service): cgroups LXC makes below ours (lxc.cgroup.relative
# = 1) are the container manager's, not systemd's to rearrange.
Delegate=yes

# Logs: JSON lines (pino) on stderr, into the journal: journalctl -u ferry-worker -o cat.
StandardOutput=journal
StandardError=journal
SyslogIdentifier=ferry-worker

# Hardening: none of systemd's sandboxing, each for a reason. The worker is root with every
# capability by design (it creates namespaces, mounts, freezes cgroups, ptraces with CRIU, marks
# file systems with fanotify, writes files of any owner with rsync); what limits what it does is
# the control plane's signature on every job, not a sandbox.
# - Not set: NoNewPrivileges, CapabilityBoundingSet, SystemCallFilter, RestrictNamespaces,
#   RestrictAddressFamilies, RestrictSUIDSGID, LockPersonality, ProtectClock, ProtectHostname.
#   Each is inherited by every process the worker starts, and lxc-start's children become the
#   containers: a container would run with no_new_privs (no sudo, su or ping inside; LXC's
#   AppArmor profile change is refused), without the capabilities LXC grants it, under a seccomp
#   filter on top of its own, unable to make namespaces (nested containers), sockets of other
#   families (AF_PACKET for arping, AF_NETLINK), setuid files (package installs) or personality
#   changes (CRIU restores a task's personality).
# - Not set: MemoryDenyWriteExecute: V8's JIT (node) needs writable and executable pages.
# - Not set: ProtectSystem, ProtectHome, PrivateTmp, PrivateDevices, ProtectKernelTunables,
#   ProtectKernelModules, ProtectControlGroups, ProtectProc, ReadOnlyPaths. Each gives the worker a
#   mount namespace of its own, and ferry's mounts assume the host's: mount roots are made
#   nosuid,nodev by bind mounts the host (and lxc-autostart's containers) must see, a live
#   \`ferry mount\` clones its source from the worker's view (a read-only /usr, /etc or /home there
#   would arrive read-only in the container), and containers started by lxc-start begin from a copy
#   of the worker's mounts. ProtectKernelTunables and ProtectControlGroups would also make
#   /proc/sys and /sys/fs/cgroup read-only (LXC's network setup, the freezer); PrivateDevices
#   would hide /dev/fuse, /dev/net/tun and the loop devices LXC binds into containers.

[Install]
WantedBy=multi-user.target
`;
}

/** The state dir: systemd makes it (0700) when it is under /var/lib; elsewhere it is the operator's. */
export function stateDirectory(dir: string): string {
  const m = /^\/var\/lib\/(.+)$/.exec(dir);
  return m ? `StateDirectory=${m[1]}\nStateDirectoryMode=0700` : `# State dir ${dir} (not under /var/lib: made by ferry itself)`;
}
