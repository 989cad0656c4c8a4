import { z } from 'zod';
import { StepBase } from './common.js';

/** Compensation: thaw or restart the source so it runs again, as it did before the migration. */
export const ResumeSourceInput = StepBase.extend({ wasRunning: z.boolean() });
export type ResumeSourceInput = z.infer<typeof ResumeSourceInput>;

export const ResumeSourceOutput = z.object({ action: z.enum(['thawed', 'restored', 'started', 'none']), running: z.boolean() });
export type ResumeSourceOutput = z.infer<typeof ResumeSourceOutput>;
