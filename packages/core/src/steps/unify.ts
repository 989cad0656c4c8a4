import { z } from 'zod';
import { ContainerName } from '../names.js';
import { StepBase } from './common.js';

export const UnifyInput = StepBase.extend({
  containers: z.array(ContainerName).min(1),
  mode: z.enum(['dedupe', 'hardlink']),
  dryRun: z.boolean(),
  revert: z.boolean(),
  excludes: z.array(z.string()),
});
export type UnifyInput = z.infer<typeof UnifyInput>;

/** The engine's report: files and bytes shared, space freed by statfs, and more. */
export const UnifyOutput = z
  .object({
    filesExamined: z.number(),
    filesShared: z.number(),
    bytesShared: z.number(),
    bytesFreed: z.number(),
  })
  .loose();
export type UnifyOutput = z.infer<typeof UnifyOutput>;
