import { z } from 'zod';

/** What a host's runtime can do; the planner decides from these, never from runtime names. */
export const Capabilities = z.object({
  runtime: z.string(),
  /** Can freeze a container's processes (cgroup freezer). */
  freeze: z.boolean(),
  /** Can dump a running container to files and restore it (CRIU or equivalent). */
  checkpoint: z.boolean(),
  /** Why checkpoint is unavailable, as the probe said it. */
  checkpointReason: z.string().optional(),
});
export type Capabilities = z.infer<typeof Capabilities>;
