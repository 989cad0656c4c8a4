import type { StepInput, StepName, StepOutput } from '@ferry/core';
import type { Step } from '../context.js';
import { abortable } from '../transfer/abort.js';
import { arpRefresh } from './arp-refresh.js';
import { checkpoint } from './checkpoint.js';
import { cleanup } from './cleanup.js';
import { cloneCopy } from './clone-copy.js';
import { cloneIdentity } from './clone-identity.js';
import { discardTarget } from './discard-target.js';
import { preflight } from './preflight.js';
import { restore } from './restore.js';
import { resumeSource } from './resume-source.js';
import { rsyncTransfer } from './rsync-transfer.js';
import { unify } from './unify.js';
import { checkpointDump } from './checkpoint-dump.js';
import { checkpointRestore } from './checkpoint-restore.js';
import { indexCopy } from './index-copy.js';

export { arpRefresh, checkpoint, checkpointDump, checkpointRestore, cleanup, cloneCopy, cloneIdentity, discardTarget, indexCopy, preflight, restore, resumeSource, rsyncTransfer };

/** Every step, by name. Inputs arrive parsed by the core schemas. */
export const steps: { [N in StepName]: Step<StepInput<N>, StepOutput<N>> } = {
  preflight: abortable(preflight),
  'rsync-transfer': abortable(rsyncTransfer),
  checkpoint: abortable(checkpoint),
  'index-copy': abortable(indexCopy),
  restore: abortable(restore),
  'arp-refresh': abortable(arpRefresh),
  cleanup: abortable(cleanup),
  'discard-target': abortable(discardTarget),
  'resume-source': abortable(resumeSource),
  unify: abortable(unify),
  'clone-copy': abortable(cloneCopy),
  'clone-identity': abortable(cloneIdentity),
  'checkpoint-dump': abortable(checkpointDump),
  'checkpoint-restore': abortable(checkpointRestore),
};
