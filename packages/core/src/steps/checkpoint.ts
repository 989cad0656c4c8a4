import { z } from 'zod';
import { Peer } from '../host.js';
import { StepBase, TransferStats } from './common.js';

export const CheckpointInput = StepBase.extend({
  peer: Peer,
  /** `live`: dump the running state; `restart`: stop it after the final sync. */
  mode: z.enum(['live', 'restart']),
  wasRunning: z.boolean(),
  bwlimitKBps: z.int().min(1).optional(),
  verify: z.boolean(),
});
export type CheckpointInput = z.infer<typeof CheckpointInput>;

export const CheckpointOutput = z.object({
  /** What was done to the source: a CRIU dump, a stop, or nothing (it was not running). */
  method: z.enum(['dump', 'stop', 'none']),
  frozenAt: z.number().optional(),
  finalPass: TransferStats,
  /** SHA-256 of the source's root filesystem manifest taken while frozen (with `verify`). */
  manifestDigest: z.string().optional(),
});
export type CheckpointOutput = z.infer<typeof CheckpointOutput>;
