import { z } from 'zod';
import { ContainerName, MigrationId } from '../names.js';

/** Fields every step input carries: which migration, which container, which ownership epoch. */
export const StepBase = z.object({
  migrationId: MigrationId,
  container: ContainerName,
  /** Ownership epoch of the container when the step was issued (fencing). */
  epoch: z.int().nonnegative(),
});

export const TransferStats = z.object({
  /** Bytes rsync sent over the wire (after delta and compression). */
  bytesSent: z.number().nonnegative(),
  /** Bytes of file data that had to be sent literally (changed data). */
  literalBytes: z.number().nonnegative(),
  /** Files rsync created, updated or deleted. */
  filesChanged: z.number().nonnegative(),
  ms: z.number().nonnegative(),
  /**
   * A tracked pass (after the first): what changed since the previous pass began, found `by` the
   * change watcher (fanotify) or a ctime walk, and how long finding it took. Only these were
   * sent, their content compared.
   */
  changed: z
    .object({
      files: z.int().nonnegative(),
      dirs: z.int().nonnegative(),
      trees: z.int().nonnegative(),
      walkMs: z.number().nonnegative(),
      by: z.enum(['walk', 'watch']),
    })
    .optional(),
});
export type TransferStats = z.infer<typeof TransferStats>;
