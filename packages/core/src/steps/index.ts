import { z } from 'zod';
import { PreflightInput, PreflightOutput } from './preflight.js';
import { RsyncTransferInput, RsyncTransferOutput } from './rsync-transfer.js';
import { CheckpointInput, CheckpointOutput } from './checkpoint.js';
import { RestoreInput, RestoreOutput } from './restore.js';
import { ArpRefreshInput, ArpRefreshOutput } from './arp-refresh.js';
import { CleanupInput, CleanupOutput } from './cleanup.js';
import { DiscardTargetInput, DiscardTargetOutput } from './discard-target.js';
import { ResumeSourceInput, ResumeSourceOutput } from './resume-source.js';
import { CloneCopyInput, CloneCopyOutput } from './clone-copy.js';
import { CloneIdentityInput, CloneIdentityOutput } from './clone-identity.js';
import { UnifyInput, UnifyOutput } from './unify.js';

export * from './common.js';
export * from './preflight.js';
export * from './rsync-transfer.js';
export * from './checkpoint.js';
export * from './restore.js';
export * from './arp-refresh.js';
export * from './cleanup.js';
export * from './discard-target.js';
export * from './resume-source.js';
export * from './clone-copy.js';
export * from './clone-identity.js';
export * from './unify.js';

/** Every step's input and output schema, by step name. */
export const StepSchemas = {
  preflight: { input: PreflightInput, output: PreflightOutput },
  'rsync-transfer': { input: RsyncTransferInput, output: RsyncTransferOutput },
  checkpoint: { input: CheckpointInput, output: CheckpointOutput },
  restore: { input: RestoreInput, output: RestoreOutput },
  'arp-refresh': { input: ArpRefreshInput, output: ArpRefreshOutput },
  cleanup: { input: CleanupInput, output: CleanupOutput },
  'discard-target': { input: DiscardTargetInput, output: DiscardTargetOutput },
  'resume-source': { input: ResumeSourceInput, output: ResumeSourceOutput },
  'clone-copy': { input: CloneCopyInput, output: CloneCopyOutput },
  'clone-identity': { input: CloneIdentityInput, output: CloneIdentityOutput },
  unify: { input: UnifyInput, output: UnifyOutput },
} as const;

export type StepName = keyof typeof StepSchemas;
export const StepName = z.enum(Object.keys(StepSchemas) as [StepName, ...StepName[]]);
export type StepInput<N extends StepName> = z.infer<(typeof StepSchemas)[N]['input']>;
export type StepOutput<N extends StepName> = z.infer<(typeof StepSchemas)[N]['output']>;
