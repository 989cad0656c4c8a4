import { z } from 'zod';
import { HostName, ContainerName, Ipv4, Mac } from './names.js';
import { Capabilities } from './capabilities.js';

/**
 * Where a host is reached: an IPv4 or IPv6 literal or a DNS name. Nothing else, and never
 * anything an ssh or rsync argument parser could take for an option.
 */
export const Address = z.union([
  z.ipv4(),
  z.ipv6(),
  z.string().regex(/^(?=.{1,253}$)[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$/),
], { error: 'not an IPv4 or IPv6 address or a DNS name' });

/** A POSIX login name (what `useradd` accepts by default). */
export const SshUser = z.string().regex(/^[a-z_][a-z0-9_-]{0,31}$/, 'not a login name (lowercase letters, digits, _ and -, at most 32)');

/** An absolute path with no `.` or `..` segments and no repeated or trailing slashes. */
export const AbsolutePath = z
  .string()
  .regex(/^(?:\/(?!\.{1,2}(?:\/|$))[^/\0]+)+$|^\/$/, 'not a normalized absolute path (no ., .., // or trailing /)');

/** How peers reach a host over SSH (rsync's transport). The host key is pinned in known_hosts. */
export const Peer = z.object({
  name: HostName,
  address: Address,
  sshPort: z.int().min(1).max(65535),
  sshUser: SshUser,
  lxcPath: AbsolutePath,
});
export type Peer = z.infer<typeof Peer>;

export const ContainerState = z.enum(['RUNNING', 'STOPPED', 'FROZEN', 'STARTING', 'STOPPING', 'ABORTING', 'FREEZING', 'THAWED']);
export type ContainerState = z.infer<typeof ContainerState>;

/** A container's load as its host's worker measured it (see load/): smoothed over about a minute. */
export const ContainerLoadFigures = z.object({
  /** CPUs in use (CPU seconds per second, from its cgroup's CPU time). */
  cpu: z.number().nonnegative(),
  /** Memory in use (its cgroup's usage less inactive file cache). */
  memBytes: z.number().nonnegative(),
  /** Bytes its root filesystem occupies (refreshed in the background; absent until first measured). */
  diskBytes: z.number().nonnegative().optional(),
});
export type ContainerLoadFigures = z.infer<typeof ContainerLoadFigures>;

export const ContainerSummary = z.object({
  name: ContainerName,
  state: ContainerState,
  ip: Ipv4.optional(),
  mac: Mac.optional(),
  /** Absent from workers that do not measure load. */
  load: ContainerLoadFigures.optional(),
  /**
   * Set when the container is checkpointed on this host (`ferry checkpoint`): stopped, with a
   * complete checkpoint on disk (read from disk with every beat, so it survives a worker restart).
   */
  checkpoint: z.object({ at: z.number() }).optional(),
});
export type ContainerSummary = z.infer<typeof ContainerSummary>;

/** What a worker publishes about its host in the registry. */
export const HostInfo = Peer.extend({
  capabilities: Capabilities,
  containers: z.array(ContainerSummary),
  /** Free bytes on the LXC path. */
  freeBytes: z.number().nonnegative(),
  /** What the host has to give: CPUs and memory bytes (absent from workers that do not measure load). */
  capacity: z.object({ cpus: z.number().positive(), memBytes: z.number().positive() }).optional(),
  lastSeen: z.number(),
  workerPid: z.int(),
});
export type HostInfo = z.infer<typeof HostInfo>;

/** A container's state as ferry shows it: `checkpointed` for a stopped one with a checkpoint on disk. */
export function shownState(c: Pick<ContainerSummary, 'state' | 'checkpoint'>): string {
  return c.checkpoint && c.state === 'STOPPED' ? 'checkpointed' : c.state;
}

/** What a host's running containers use, summed from their load figures (`ferry hosts`, the dashboard). */
export function hostUsage(h: Pick<HostInfo, 'containers'>): { running: number; cpu: number; memBytes: number } {
  const running = h.containers.filter((c) => c.state === 'RUNNING');
  return { running: running.length, cpu: running.reduce((a, c) => a + (c.load?.cpu ?? 0), 0), memBytes: running.reduce((a, c) => a + (c.load?.memBytes ?? 0), 0) };
}
