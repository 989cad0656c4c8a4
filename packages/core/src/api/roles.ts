import { z } from 'zod';

/**
 * Who may do what through ferry's API (README "Security model"): each role can do everything the
 * ones before it can.
 * - viewer: read: operations (status, list, watch, logs), hosts, a container's details (show), the
 *   rebalancing plan, history and policy, anti-affinity groups.
 * - operator: move and place containers: migrate, clone, checkpoint, restore, retry, cancel,
 *   rebalance (rounds, automatic rounds, policy), drain, cordon, pin, anti-affinity.
 * - admin: what reaches into a host or a container's files, and ferry itself: unify, mount and
 *   umount, gc, API tokens, the audit log.
 */
export const API_ROLES = ['viewer', 'operator', 'admin'] as const;
export const ApiRole = z.enum(API_ROLES, { error: "role is one of 'viewer', 'operator', 'admin'" });
export type ApiRole = z.infer<typeof ApiRole>;

/** Whether a token of role `have` may do what needs `need`. */
export function roleAllows(have: ApiRole, need: ApiRole): boolean {
  return API_ROLES.indexOf(have) >= API_ROLES.indexOf(need);
}
