import type { Capabilities, ContainerState } from '@ferry/core';

export interface ContainerInfo {
  name: string;
  state: ContainerState;
  /** PID of the container's init on this host (for nsenter), when running. */
  pid?: number;
  ip?: string;
  mac?: string;
}

export interface NetworkIdentity {
  ip?: string;
  mac?: string;
  /** Host bridge the container's interface is attached to. */
  link?: string;
}

/**
 * One interface for every container runtime (lxc today; openvz, vserver, podman, plain criu
 * elsewhere). Callers decide from `capabilities()`, never from `name`.
 */
export interface Runtime {
  readonly name: string;
  capabilities(): Promise<Capabilities>;
  /** Containers on this host, with their state. */
  list(): Promise<ContainerInfo[]>;
  /** null when the container does not exist here. */
  info(name: string): Promise<ContainerInfo | null>;
  /** Directory holding everything of the container (config and rootfs): what a transfer copies. */
  containerDir(name: string): string;
  rootfsDir(name: string): string;
  /** Identity from the container's config (works while stopped). */
  network(name: string): Promise<NetworkIdentity>;
  /** Host directories bind-mounted into the container (must exist on a target). */
  bindMounts(name: string): Promise<string[]>;
  /** Rewrites host-specific paths in a config that came from another host's container dir. */
  adoptConfig(name: string, from: { containerDir: string; rootfsDir: string }): Promise<void>;
  start(name: string): Promise<void>;
  /** Stops at once (kill): used after the final sync, when the state is already copied. */
  stop(name: string): Promise<void>;
  freeze(name: string): Promise<void>;
  unfreeze(name: string): Promise<void>;
  /** Dumps a running container into `dir` (stopping it). Only where capabilities().checkpoint. */
  checkpoint(name: string, dir: string): Promise<void>;
  /** Restores from a dump in `dir`. Only where capabilities().checkpoint. */
  restore(name: string, dir: string): Promise<void>;
  /**
   * Files (relative to `containerDir`) the container's processes hold open for writing or map
   * shared and writable: what they may still change without a write(2). Runtimes that cannot tell
   * leave it out (callers then walk the tree).
   */
  openForWrite?(name: string): Promise<string[]>;
  /** Removes the container from this host. Callers check it is stopped and owned elsewhere. */
  destroy(name: string): Promise<void>;
  /** Finishes removals `destroy` left to the background (runtimes that defer them). */
  emptyTrash?(): Promise<void>;
  /** What the container was created from (LXC: the template path recorded in its config), if known. */
  template?(name: string): Promise<string | undefined>;
  /**
   * Gives a (stopped) copy its own identity in its config: hostname, MAC and IPv4 address of its
   * first interface (none → static addresses removed). Runtimes that cannot do it leave it out.
   */
  setIdentity?(name: string, id: { hostname: string; mac: string; ip?: string }): Promise<{ ipv4?: string; notes: string[] }>;
}
