import type { Peer } from '@ferry/core';
import type { MetricsListen } from '@ferry/infra';

/** What a worker knows about its own host. */
export interface HostConfig extends Peer {
  /** Private key the worker uses to reach peers' sshd (rsync transport). */
  sshKey: string;
  /** known_hosts with every peer's pinned host key; strict checking always on. */
  knownHosts: string;
  /** Network namespace the worker's host lives in, when not the root one (lab only; informational). */
  netns?: string;
  /** Where the worker keeps per-migration scratch files (dumps, markers). */
  stateDir: string;
  /**
   * Offer live migration (checkpoint/restore) when criu works: FERRY_LIVE=1. Off by default, so a
   * working criu alone never moves `--mode auto` migrations onto the live path.
   */
  live?: boolean;
  /** The criu to use (FERRY_CRIU); default: ferry's private build when installed, else `criu` on PATH. */
  criu?: string;
  /**
   * Host directories that may be bind-mounted into containers here (`--mount-root`, repeatable, or
   * FERRY_MOUNT_ROOTS, colon-separated): `ferry mount` sources and the bind mounts of a config
   * adopted from a peer must resolve below one of them. Absent or empty: none may.
   */
  mountRoots?: readonly string[];
  /** The control plane's public key file (`--control-key`, FERRY_CONTROL_PUB; default `<state dir>/keys/control.pub`). */
  controlKeyFile?: string;
  /** Where this worker writes its public key as `<host>.pub` (`--host-keys`, FERRY_HOST_KEYS; default `<state dir>/keys/hosts`). */
  hostKeysDir?: string;
  /** A Prometheus endpoint (`--metrics`, FERRY_WORKER_METRICS); none when absent. */
  metrics?: MetricsListen;
}
