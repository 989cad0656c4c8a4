import { z } from 'zod';
import { ContainerName, Ipv4, Mac } from '../names.js';
import { Hostname } from '../clone-request.js';
import { Peer } from '../host.js';
import { StepBase } from './common.js';

/**
 * Target host: give the copy its own identity — name, hostname, IP, MAC, machine-id, no SSH host
 * keys of the source — then start it if the source was running.
 */
export const CloneIdentityInput = StepBase.extend({
  /** The clone's name (`container` is the source's). */
  name: ContainerName,
  source: Peer,
  hostname: Hostname,
  ip: Ipv4.optional(),
  mac: Mac,
  start: z.boolean(),
});
export type CloneIdentityInput = z.infer<typeof CloneIdentityInput>;

export const CloneIdentityOutput = z.object({
  running: z.boolean(),
  ip: Ipv4.optional(),
  mac: Mac,
  machineId: z.string(),
  removedHostKeys: z.array(z.string()),
});
export type CloneIdentityOutput = z.infer<typeof CloneIdentityOutput>;
