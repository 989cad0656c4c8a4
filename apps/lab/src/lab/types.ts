/** Public shapes of the lab: what `ferry lab up --json` and friends print. */

export interface LabHost {
  /** Lab host name: `h1`, `h2`, ... */
  name: string;
  netns: string;
  address: string;
  sshPort: number;
  lxcPath: string;
  /** The worker's own state directory (`--state-dir`). */
  stateDir: string;
  /** Root-namespace end of the host's veth: set it down to cut the host off the switch. */
  uplink: string;
  /**
   * The host's mount namespace (nsfs file). Run host commands with
   * `nsenter --mount=<mountNs> --net=/run/netns/<netns> -- cmd` (what hostExec does), not with
   * `ip netns exec`, whose fresh /sys hides the cgroup mounts LXC needs.
   */
  mountNs: string;
}

export interface LabInfo {
  /** The lab directory (`<ferry state dir>/lab`); everything the lab writes lives below it. */
  stateDir: string;
  /** Redis the lab's workers and scheduler use; empty until services were started once. */
  redisUrl: string;
  /** The lab started ferry's embedded redis-server, so `down` stops it. */
  redisStarted?: boolean;
  prefix: string;
  switch: { bridge: string; address: string };
  hosts: LabHost[];
  client: { netns: string; address: string };
  sshKey: string;
  knownHosts: string;
  /** The workers offer live migration (`ferry worker --live`): set by `ferry lab up --live`. */
  live?: boolean;
}

export interface LabContainer {
  name: string;
  /** The host it was created on (a migration may since have moved it). */
  host: string;
  lxcPath: string;
  rootfs: string;
  ip: string;
  mac: string;
  /** PID of the container's init, in the root PID namespace. */
  pid: number;
}

export interface LabUpOptions {
  /** Number of hosts, 1..8 (default 2). */
  hosts?: number;
  /** Start a worker per host and the scheduler (default true). */
  startServices?: boolean;
  /**
   * Workers offer live migration (checkpoint/restore, where criu works). Unset keeps what a lab
   * that is up has; a different value restarts its workers with it.
   */
  live?: boolean;
}

export interface LabContainerOptions {
  name: string;
  host: string;
  /** MiB of incompressible data under /data/bulk (default 0). */
  sizeMb?: number;
  /**
   * Run a loop that rewrites small files under /data/churn about every 100 ms. `first-boot`: the
   * chaos writer instead (new files, appends, renames, deletes, chmod, same-size rewrites with the
   * mtime put back, under /srv/chaos), on the container's first boot only.
   */
  writer?: boolean | 'first-boot';
  /** Small files (about 100 bytes each, 1,000 per directory) under /data/small (default 0). */
  files?: number;
  /**
   * Run ferry-memsvc holding this many MiB (0 = no memsvc; default): a service whose state lives
   * only in memory (a tick counter on :8080, a line echo on :9000 for held connections), the proof
   * of what live migration keeps. Needs apps/lab/native/ferry-memsvc (scripts/setup.sh builds it).
   */
  memoryMb?: number;
  /**
   * Burn this much CPU, in thousandths of a core (a busy loop held to it by the container's CPU
   * quota): real load for rebalancing to see. 0 or absent: none.
   */
  cpuMilli?: number;
  /**
   * Instead of the busybox template: a directory holding a root file system, moved in as the
   * container's (the directory is consumed). Its /sbin/init must serve /srv/www over HTTP on
   * port 80; the lab writes the page if the image has none. `sizeMb`, `writer`, `files` must be unset.
   */
  image?: string;
}
