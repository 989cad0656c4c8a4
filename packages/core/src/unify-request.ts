import { z } from 'zod';
import { ContainerName, HostName } from './names.js';
import { parseOrThrow } from './request.js';

/**
 * `vunify`/`hashify` as a workflow: share identical files among containers of one host.
 * `container` is the first of `containers`: the container its steps are fenced by.
 */
export const UnifyRequest = z
  .object({
    containers: z.array(ContainerName).min(1, 'name at least one container').max(64),
    container: ContainerName,
    host: HostName,
    mode: z.enum(['dedupe', 'hardlink']).default('dedupe'),
    dryRun: z.boolean().default(false),
    revert: z.boolean().default(false),
    /** Extra exclusion rules in the vunify format, applied before the defaults. */
    excludes: z.array(z.string()).default([]),
  })
  .refine((r) => new Set(r.containers).size === r.containers.length, { path: ['containers'], message: 'a container is named twice' })
  .refine((r) => !r.revert || r.mode === 'hardlink', { path: ['revert'], message: 'only hardlink mode can be reverted (dedupe changes no file)' });
export type UnifyRequest = z.infer<typeof UnifyRequest>;

export function parseUnifyRequest(input: unknown): UnifyRequest {
  return parseOrThrow(UnifyRequest, input);
}
