import { z } from 'zod';
import { Peer } from '../host.js';
import { VerifyLevel } from '../request.js';
import { StepBase, TransferStats } from './common.js';

export const CheckpointInput = StepBase.extend({
  peer: Peer,
  /** `live`: dump the running state; `restart`: stop it after the final sync. */
  mode: z.enum(['live', 'restart']),
  wasRunning: z.boolean(),
  bwlimitKBps: z.int().min(1).optional(),
  verify: VerifyLevel,
});
export type CheckpointInput = z.infer<typeof CheckpointInput>;

export const CheckpointOutput = z.object({
  /** What was done to the source: a CRIU dump, a stop, or nothing (it was not running). */
  method: z.enum(['dump', 'stop', 'none']),
  frozenAt: z.number().optional(),
  finalPass: TransferStats,
  /** Digest of the source's root filesystem taken at rest (see `verify`); the copy must match it. */
  manifestDigest: z.string().optional(),
  /** How that digest was taken: `changed` covers the paths the final pass sent, pushed beside it. */
  verify: VerifyLevel.optional(),
  /**
   * The final pass ran once, and its list (pushed beside the copy) is all it changed there: the
   * target may bring the index it took before the freeze (index-copy) up to date with that list
   * instead of walking its copy. Not set after a re-run of the final pass.
   */
  metaPatch: z.boolean().optional(),
  /** `changed`: where the metadata sum came from — the index taken before the freeze, or a walk at rest. */
  verifyMeta: z.enum(['index', 'walk']).optional(),
  /** Live: the CRIU dump (processes and memory) — its size, and the time to write it and to send it. */
  dump: z.object({ bytes: z.number().nonnegative(), dumpMs: z.number().nonnegative(), sendMs: z.number().nonnegative() }).optional(),
});
export type CheckpointOutput = z.infer<typeof CheckpointOutput>;
