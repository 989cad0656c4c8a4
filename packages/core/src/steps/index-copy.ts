import { z } from 'zod';
import { StepBase } from './common.js';

/**
 * Target, after the last pre-copy pass and before the freeze: the metadata of every entry of the
 * copy, taken while the container still runs at the source. The restore step then brings it up
 * to date with only what the final pass sent, instead of walking the whole copy while the
 * container is down (see apps/worker/native/treemeta.c).
 */
export const IndexCopyInput = StepBase;
export type IndexCopyInput = z.infer<typeof IndexCopyInput>;

export const IndexCopyOutput = z.object({
  /** Whether the index was taken; when not, restore walks the copy. */
  indexed: z.boolean(),
  ms: z.number().nonnegative(),
  /** Why not, when not. */
  skipped: z.string().optional(),
});
export type IndexCopyOutput = z.infer<typeof IndexCopyOutput>;
