import { z } from 'zod';
import { StepBase } from './common.js';

/** Host: dump the running container to this host's disk (its checkpoint dir) and leave it stopped. */
export const CheckpointDumpInput = StepBase;
export type CheckpointDumpInput = z.infer<typeof CheckpointDumpInput>;

export const CheckpointDumpOutput = z.object({
  /** When the dump was complete (the manifest's time). */
  at: z.number(),
  /** Where the images are on the host. */
  dir: z.string(),
  /** Bytes of the images. */
  bytes: z.number().nonnegative(),
  /** Digest of the container's config when it was dumped (a restore in place checks it). */
  configDigest: z.string().optional(),
});
export type CheckpointDumpOutput = z.infer<typeof CheckpointDumpOutput>;
