import { z } from 'zod';
import { HostName, ContainerName, Ipv4, Mac } from './names.js';
import { Capabilities } from './capabilities.js';

/** How peers reach a host over SSH (rsync's transport). The host key is pinned in known_hosts. */
export const Peer = z.object({
  name: HostName,
  address: z.string().min(1),
  sshPort: z.int().min(1).max(65535),
  sshUser: z.string().min(1),
  lxcPath: z.string().startsWith('/'),
});
export type Peer = z.infer<typeof Peer>;

export const ContainerState = z.enum(['RUNNING', 'STOPPED', 'FROZEN', 'STARTING', 'STOPPING', 'ABORTING', 'FREEZING', 'THAWED']);
export type ContainerState = z.infer<typeof ContainerState>;

export const ContainerSummary = z.object({
  name: ContainerName,
  state: ContainerState,
  ip: Ipv4.optional(),
  mac: Mac.optional(),
});
export type ContainerSummary = z.infer<typeof ContainerSummary>;

/** What a worker publishes about its host in the registry. */
export const HostInfo = Peer.extend({
  capabilities: Capabilities,
  containers: z.array(ContainerSummary),
  freeBytes: z.number().nonnegative(),
  lastSeen: z.number(),
  workerPid: z.int(),
});
export type HostInfo = z.infer<typeof HostInfo>;
