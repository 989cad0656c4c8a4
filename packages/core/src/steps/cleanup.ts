import { z } from 'zod';
import { StepBase } from './common.js';

export const CleanupInput = StepBase.extend({ keepSource: z.boolean() });
export type CleanupInput = z.infer<typeof CleanupInput>;

export const CleanupOutput = z.object({ removed: z.boolean(), kept: z.boolean() });
export type CleanupOutput = z.infer<typeof CleanupOutput>;
