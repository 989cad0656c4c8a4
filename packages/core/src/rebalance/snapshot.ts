import { z } from 'zod';
import { ContainerName, HostName } from '../names.js';

/** A host's capacity and what it carries, as its worker measured it (smoothed). */
export const HostLoad = z.object({
  name: HostName,
  cpus: z.number().positive(),
  memBytes: z.number().positive(),
  freeDiskBytes: z.number().nonnegative(),
  /** Takes no container (a drain in progress, or an operator's cordon). */
  cordoned: z.boolean().default(false),
  /** Can checkpoint/restore (live moves), as its runtime declares. */
  live: z.boolean().default(false),
});
export type HostLoad = z.infer<typeof HostLoad>;

export const ContainerLoad = z.object({
  name: ContainerName,
  host: HostName,
  running: z.boolean(),
  /** CPUs in use, smoothed (cgroup CPU time per second of wall time). */
  cpu: z.number().nonnegative(),
  memBytes: z.number().nonnegative(),
  /** Root filesystem size: what a move copies. */
  diskBytes: z.number().nonnegative(),
  /** Pinned: never moved by a round (with a host: kept there). */
  pinned: z.union([z.literal(true), HostName]).optional(),
  /** Anti-affinity: containers of one group never share a host. */
  group: z.string().optional(),
  /** Not moved again before this time (ms): after a move or a failed one. */
  cooldownUntil: z.number().optional(),
});
export type ContainerLoad = z.infer<typeof ContainerLoad>;

export interface Snapshot {
  at: number;
  hosts: HostLoad[];
  containers: ContainerLoad[];
}
