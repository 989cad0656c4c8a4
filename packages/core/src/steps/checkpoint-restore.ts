import { z } from 'zod';
import { StepBase } from './common.js';

/** Host: restore a checkpointed container in place from its images, then remove them. */
export const CheckpointRestoreInput = StepBase;
export type CheckpointRestoreInput = z.infer<typeof CheckpointRestoreInput>;

export const CheckpointRestoreOutput = z.object({
  running: z.boolean(),
  pid: z.int().optional(),
  /** When the checkpoint being restored was taken. */
  checkpointAt: z.number().optional(),
  startedAt: z.number().optional(),
});
export type CheckpointRestoreOutput = z.infer<typeof CheckpointRestoreOutput>;
