import { z } from 'zod';
import { ContainerName } from '../names.js';
import { Peer } from '../host.js';
import { StepBase, TransferStats } from './common.js';

/** Source host: copy a container's directory to a new name, here or on a peer. */
export const CloneCopyInput = StepBase.extend({
  /** The clone's name on the target. */
  name: ContainerName,
  peer: Peer,
  /** The copy is taken frozen (running source, `--freeze`), then the source is thawed. */
  freeze: z.boolean(),
  bwlimitKBps: z.int().min(1).optional(),
});
export type CloneCopyInput = z.infer<typeof CloneCopyInput>;

export const CloneCopyOutput = TransferStats.extend({
  /** Container on the target used as the rsync basis (only differences sent). */
  basis: z.string().optional(),
  frozen: z.boolean(),
});
export type CloneCopyOutput = z.infer<typeof CloneCopyOutput>;
