import { z } from 'zod';
import { Peer } from '../host.js';
import { PrecopyLimits } from '../request.js';
import { StepBase, TransferStats } from './common.js';

export const RsyncTransferInput = StepBase.extend({
  peer: Peer,
  bwlimitKBps: z.int().min(1).optional(),
  precopy: PrecopyLimits,
  /** A stopped container needs a single pass: nothing changes under it. */
  wasRunning: z.boolean(),
  /**
   * After the last pass, index the rootfs's metadata in the background for the checkpoint that
   * follows (the default verification), while the target indexes its copy.
   */
  indexAhead: z.boolean().optional(),
});
export type RsyncTransferInput = z.infer<typeof RsyncTransferInput>;

export const RsyncTransferOutput = z.object({
  passes: z.array(TransferStats),
  bytesTransferred: z.number().nonnegative(),
  /** Why pre-copy stopped (see `precopyDecision`). */
  stopReason: z.string(),
});
export type RsyncTransferOutput = z.infer<typeof RsyncTransferOutput>;
