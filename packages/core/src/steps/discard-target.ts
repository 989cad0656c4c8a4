import { z } from 'zod';
import { StepBase } from './common.js';

/** Compensation: stop and remove the target's copy, so the container runs only on the source. */
export const DiscardTargetInput = StepBase.extend({ keepCopy: z.boolean().default(false) });
export type DiscardTargetInput = z.infer<typeof DiscardTargetInput>;

export const DiscardTargetOutput = z.object({ stopped: z.boolean(), removed: z.boolean() });
export type DiscardTargetOutput = z.infer<typeof DiscardTargetOutput>;
