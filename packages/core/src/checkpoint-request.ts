import { z } from 'zod';
import { ContainerName, HostName } from './names.js';
import { parseOrThrow, VerifyLevel } from './request.js';

/**
 * The seed's OpenVZ CPT (`vzctl chkpnt`): dump a running container's processes to its host's disk
 * and leave it stopped (`checkpointed`), to be restored later (`RestoreRequest`).
 */
export const CheckpointRequest = z.object({
  container: ContainerName,
  /** The host the container runs on. */
  host: HostName,
});
export type CheckpointRequest = z.infer<typeof CheckpointRequest>;

export function parseCheckpointRequest(input: unknown): CheckpointRequest {
  return parseOrThrow(CheckpointRequest, input);
}

/**
 * Brings a checkpointed container back from its images: on its host (`to` = `from`), or on another
 * host, where its rootfs and images are moved first (the source copy is removed after the start).
 */
export const RestoreRequest = z.object({
  container: ContainerName,
  /** The host holding the checkpoint. */
  from: HostName,
  /** Where it runs again (the same host: restored in place). */
  to: HostName,
  /** Another host: how the copy is compared with the source before it starts (as a migration's). */
  verify: VerifyLevel.default('changed'),
});
export type RestoreRequest = z.infer<typeof RestoreRequest>;
export type RestoreRequestInput = z.input<typeof RestoreRequest>;

export function parseRestoreRequest(input: unknown): RestoreRequest {
  return parseOrThrow(RestoreRequest, input);
}
