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

/** How `Runtime.exec` runs a command (a subset of run()'s options). */
export interface ContainerExecOptions {
  /** Called once started, with the PID of the new process group's leader (the runtime's helper). */
  onSpawn?: (pid: number) => void;
  onStdoutBytes?: (chunk: Buffer) => void;
  onStderrBytes?: (chunk: Buffer) => void;
  /** Characters of output kept in memory (the output itself goes to the callbacks). */
  keep?: number;
  /** Aborted: the group is terminated (SIGTERM, SIGKILL 2 s later). */
  signal?: AbortSignal;
  timeoutMs?: number;
}

/** A bind mount of a host directory into a container. */
export interface BindMount {
  /** Host directory. */
  source: string;
  /** Absolute, normalized path in the container. */
  target: string;
  readOnly: boolean;
}

/** One mount a container's config makes at start, as the config writes it. */
export interface ConfigMount {
  entry: { source: string; target: string; fstype: string; options: string[] };
  /** Absolute normalized path in the container (undefined: the config names a place outside its rootfs). */
  target: string | undefined;
  bind: boolean;
}

/** What a container config read from another host says (see `Runtime.describeConfig`). */
export interface ConfigSummary {
  /** The rootfs is where a copy of the container dir puts it (or the config does not say otherwise). */
  defaultRootfs: boolean;
  /** What the container was created from, if the config says. */
  template?: string;
}

/**
 * One interface for every container runtime (lxc today; openvz, vserver, podman, plain criu
 * elsewhere). Callers decide from `capabilities()`, never from the class or `name`. Methods marked
 * "only where capabilities().X" are there on every runtime; one that lacks X refuses them with
 * `capabilityMissing` (core), the error callers give themselves when they check the flag first.
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
  /**
   * Rewrites host-specific paths in a config that came from another host's container dir and
   * screens it: nothing from a peer that reaches outside the container is started here (LXC:
   * config-policy.ts, CONFIG_NOT_ALLOWED). Returns the settings it dropped, for the log.
   */
  adoptConfig(name: string, from: { containerDir: string; rootfsDir: string }): Promise<{ dropped: string[] }>;
  /**
   * The config file of a container whose directory is `containerDir`, on this host or another one
   * (read there, e.g. over ssh, and handed to `describeConfig`). Runtimes without a config file
   * leave both out.
   */
  configPath?(containerDir: string): string;
  /** Parses a config read from `configPath(containerDir)` (on any host). */
  describeConfig?(text: string, containerDir: string): ConfigSummary;
  start(name: string): Promise<void>;
  /** Stops at once (kill): used after the final sync, when the state is already copied. */
  stop(name: string): Promise<void>;
  /**
   * Freezes a running container. Resolves with the time (ms) its tasks stopped when the runtime
   * knows it (the freezer write), else with nothing (the caller then counts from its call).
   */
  freeze(name: string): Promise<number | void>;
  /** Lets a frozen container run; also one restored frozen from a dump while reported running. */
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
   * first interface (none → static addresses removed). Only where capabilities().setIdentity.
   */
  setIdentity(name: string, id: { hostname: string; mac: string; ip?: string }): Promise<{ ipv4?: string; notes: string[] }>;

  /**
   * Runs `argv` inside the running container: all its namespaces, a clean environment (PATH and
   * HOME only), cwd /, stdin /dev/null. It starts as a new process group whose leader is the
   * runtime's helper, which stays to report how the command ended: signals meant for the command
   * go to the group but its leader (exec/process-group.ts). Resolves with the command's exit code,
   * whatever it is; rejects with run()'s CommandError when it timed out, was killed by a signal,
   * or the helper could not be started (exit code null). Only where capabilities().exec.
   */
  exec(name: string, argv: readonly string[], opts?: ContainerExecOptions): Promise<{ exitCode: number }>;

  /** Mounts the container's config makes at every start (works while stopped). Only where capabilities().mounts. */
  configMounts(name: string): Promise<ConfigMount[]>;
  /** Adds a bind mount to the container's config (applied at its next start). Only where capabilities().mounts. */
  addConfigMount(name: string, m: BindMount): Promise<void>;
  /** Removes every mount of the config at `target` (absolute path in the container). Only where capabilities().mounts. */
  removeConfigMounts(name: string, target: string): Promise<void>;
  /** Mount points as the running container's processes see them; undefined when it does not run (or cannot be read). */
  liveMounts(c: ContainerInfo): Promise<Set<string> | undefined>;
  /**
   * Bind-mounts a host directory into the running container at once, creating missing directories
   * of the target there. Only where capabilities().mounts; a runtime that cannot do it live (here)
   * throws LIVE_MOUNT_UNSUPPORTED (the config can still be changed while it is stopped).
   */
  liveBindMount(c: ContainerInfo, m: BindMount): Promise<void>;
  /** Detaches the mount at `target` in the running container. As `liveBindMount`. */
  liveUnmount(c: ContainerInfo, target: string): Promise<void>;
}
