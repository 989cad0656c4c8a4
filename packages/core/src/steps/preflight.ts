import { z } from 'zod';
import { Ipv4, Mac } from '../names.js';
import { Peer } from '../host.js';
import { StepBase } from './common.js';

export const PreflightInput = StepBase.extend({
  /** `source`: the container is here and can be sent; `target`: it can be received here. */
  role: z.enum(['source', 'target']),
  peer: Peer,
  /** Source role: a running container is refused (a clone without `--freeze`). */
  refuseRunning: z.boolean().default(false),
  /** Source role: the container must be checkpointed here (stopped, with a complete checkpoint). */
  requireCheckpoint: z.boolean().default(false),
  /** For the target role: what the source reported. */
  expect: z
    .object({ ip: Ipv4.optional(), mac: Mac.optional(), sizeBytes: z.number().nonnegative(), bindMounts: z.array(z.string()).default([]) })
    .optional(),
});
export type PreflightInput = z.infer<typeof PreflightInput>;

export const PreflightOutput = z.object({
  role: z.enum(['source', 'target']),
  /** Source: whether the container was running when the migration began. */
  wasRunning: z.boolean().optional(),
  ip: Ipv4.optional(),
  mac: Mac.optional(),
  sizeBytes: z.number().nonnegative().optional(),
  bindMounts: z.array(z.string()).optional(),
  freeBytes: z.number().nonnegative().optional(),
});
export type PreflightOutput = z.infer<typeof PreflightOutput>;
