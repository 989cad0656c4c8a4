import { z } from 'zod';
import { Peer } from '../host.js';
import { Ipv4 } from '../names.js';
import { VerifyLevel } from '../request.js';
import { StepBase } from './common.js';

export const RestoreInput = StepBase.extend({
  /** The source host, whose paths appear in the copied config. */
  source: Peer,
  method: z.enum(['dump', 'stop', 'none']),
  /**
   * Where the dump is (method `dump`): sent beside the copy by a live migration's checkpoint step,
   * or a checkpoint taken to disk earlier (`ferry checkpoint`) that travelled inside the container dir.
   */
  images: z.enum(['migration', 'checkpoint']).default('migration'),
  /** Start the container (it was running on the source). */
  start: z.boolean(),
  /** When set, the copy must match this digest (taken the `verify` way) before it is started. */
  expectManifestDigest: z.string().optional(),
  verify: VerifyLevel.optional(),
  /** `changed`: the final pass's list is all that changed since index-copy (see CheckpointOutput). */
  metaPatch: z.boolean().optional(),
  /** The container's address: one gratuitous ARP goes out as soon as it runs (arp-refresh sends the rest). */
  ip: Ipv4.optional(),
});
export type RestoreInput = z.infer<typeof RestoreInput>;

export const RestoreOutput = z.object({
  running: z.boolean(),
  pid: z.int().optional(),
  manifestDigest: z.string().optional(),
  /** `changed`: where the copy's metadata sum came from — its index (index-copy) patched, or a walk. */
  verifyMeta: z.enum(['index', 'walk']).optional(),
  startedAt: z.number().optional(),
});
export type RestoreOutput = z.infer<typeof RestoreOutput>;
