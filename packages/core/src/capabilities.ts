import { z } from 'zod';
import { PreconditionError } from './errors/index.js';

/**
 * What a host's runtime can do; the planner, the worker and the CLI decide from these, never from
 * runtime names. Each flag may come with a reason (why not, as the runtime's probe said it).
 * exec, mounts and setIdentity are absent in what workers from before them published: absent
 * counts as "not known" where the registry is read (the worker then decides), as "no" on the worker.
 */
export const Capabilities = z.object({
  runtime: z.string(),
  /** Can freeze a container's processes (cgroup freezer). */
  freeze: z.boolean(),
  /** Can dump a running container to files and restore it (CRIU or equivalent). */
  checkpoint: z.boolean(),
  /** Why checkpoint is unavailable, as the probe said it. */
  checkpointReason: z.string().optional(),
  /** Can run a command inside a running container and stream it back (`ferry exec`). */
  exec: z.boolean().optional(),
  execReason: z.string().optional(),
  /**
   * Can list, add and remove a container's bind mounts: in its config (applied at start, also while
   * stopped) and in a running container at once (`ferry mount`, `umount`, `show`).
   */
  mounts: z.boolean().optional(),
  mountsReason: z.string().optional(),
  /** Can give a stopped copy its own hostname, MAC and address in its config (clone). */
  setIdentity: z.boolean().optional(),
  setIdentityReason: z.string().optional(),
});
export type Capabilities = z.infer<typeof Capabilities>;

/**
 * Operations a runtime declares in its capabilities, with the stable error `code` an operation
 * gets on a runtime that lacks it (and what it cannot do, for the message).
 */
export const CAPABILITY_ERRORS = {
  checkpoint: { code: 'CHECKPOINT_UNSUPPORTED', cannot: 'checkpoint and restore containers' },
  exec: { code: 'EXEC_UNSUPPORTED', cannot: 'run commands in its containers' },
  mounts: { code: 'MOUNTS_UNSUPPORTED', cannot: 'change the bind mounts of its containers' },
  setIdentity: { code: 'CLONE_UNSUPPORTED', cannot: 'give a copy its own identity' },
} as const;
export type Capability = keyof typeof CAPABILITY_ERRORS;

/** Why the runtime lacks `cap`, as it said it (undefined when it gave no reason). */
export function capabilityReason(caps: Capabilities, cap: Capability): string | undefined {
  return caps[`${cap}Reason`];
}

/**
 * The error for an operation the runtime cannot do (its capabilities say so): a precondition
 * failure (nothing was changed, not retryable) with the capability's stable code, naming the
 * operation, the runtime, the host when given, and the runtime's reason.
 */
export function capabilityMissing(caps: Capabilities, cap: Capability, what: string, host?: string): PreconditionError {
  const e = CAPABILITY_ERRORS[cap];
  const reason = capabilityReason(caps, cap);
  return new PreconditionError(
    e.code,
    `${what}: the ${caps.runtime} runtime${host ? ` of ${host}` : ''} cannot ${e.cannot}${reason ? ` (${reason})` : ''}`,
    { capability: cap, runtime: caps.runtime, ...(reason ? { reason } : {}) },
  );
}
