import type { ApiRole } from '@ferry/core';
import type { Ferry } from '../service/ferry.js';
import type { In } from '../service/inputs.js';

export type HttpMethod = 'GET' | 'POST' | 'PUT' | 'PATCH' | 'DELETE';

/**
 * How a token's container scope applies to a call:
 * - `containers`: the containers it touches, from its input: each must be in scope;
 * - `operation`: those of the operation its `id` names;
 * - `filter`: it answers with what is in scope only;
 * - `all`: it reaches every container, or ferry itself: refused to a scoped token;
 * - `none`: it touches no container (a setting only).
 */
export type ScopeRule<K extends keyof Ferry> = { containers: (i: In<K>) => string[] } | 'operation' | 'filter' | 'all' | 'none';

export interface Route<K extends keyof Ferry> {
  method: HttpMethod;
  /** Path parameters (`:id`) are input fields; the others travel in the query (GET, DELETE) or a JSON body. */
  path: string;
  role: ApiRole;
  scope: ScopeRule<K>;
  /** A null answer is 404 (no such operation or round). */
  nullable?: true;
}

const one = (i: { container: string }) => [i.container];

/**
 * The API: one route per call of Ferry, the least role it needs and how a container scope applies.
 * The server (server/app.ts) and the client (remote/remote-ferry.ts) are both made from this table.
 */
export const ROUTES: { [K in keyof Ferry]: Route<K> } = {
  operation: { method: 'GET', path: '/v1/operations/:id', role: 'viewer', scope: 'operation', nullable: true },
  operations: { method: 'GET', path: '/v1/operations', role: 'viewer', scope: 'filter' },
  hosts: { method: 'GET', path: '/v1/hosts', role: 'viewer', scope: 'filter' },
  log: { method: 'GET', path: '/v1/operations/:id/log', role: 'viewer', scope: 'operation' },
  show: { method: 'GET', path: '/v1/containers/:container', role: 'viewer', scope: { containers: one } },
  rounds: { method: 'GET', path: '/v1/rebalance/rounds', role: 'viewer', scope: 'all' },
  round: { method: 'GET', path: '/v1/rebalance/rounds/:id', role: 'viewer', scope: 'all', nullable: true },
  rebalancePlan: { method: 'GET', path: '/v1/rebalance/plan', role: 'viewer', scope: 'all' },
  autoState: { method: 'GET', path: '/v1/rebalance/auto', role: 'viewer', scope: 'none' },
  policy: { method: 'GET', path: '/v1/rebalance/policy', role: 'viewer', scope: 'none' },
  groups: { method: 'GET', path: '/v1/anti-affinity', role: 'viewer', scope: 'filter' },

  migrate: { method: 'POST', path: '/v1/migrations', role: 'operator', scope: { containers: one } },
  clone: { method: 'POST', path: '/v1/clones', role: 'operator', scope: { containers: (i) => [i.container, i.name] } },
  checkpoint: { method: 'POST', path: '/v1/checkpoints', role: 'operator', scope: { containers: one } },
  restore: { method: 'POST', path: '/v1/restores', role: 'operator', scope: { containers: one } },
  control: { method: 'POST', path: '/v1/operations/:id/:kind', role: 'operator', scope: 'operation' },
  startRound: { method: 'POST', path: '/v1/rebalance/rounds', role: 'operator', scope: 'all' },
  setAuto: { method: 'PUT', path: '/v1/rebalance/auto', role: 'operator', scope: 'all' },
  setPolicy: { method: 'PATCH', path: '/v1/rebalance/policy', role: 'operator', scope: 'all' },
  drain: { method: 'POST', path: '/v1/hosts/:host/drain', role: 'operator', scope: 'all' },
  pin: { method: 'PUT', path: '/v1/pins/:container', role: 'operator', scope: { containers: one } },
  unpin: { method: 'DELETE', path: '/v1/pins/:container', role: 'operator', scope: { containers: one } },
  cordon: { method: 'PUT', path: '/v1/cordons/:host', role: 'operator', scope: 'all' },
  uncordon: { method: 'DELETE', path: '/v1/cordons/:host', role: 'operator', scope: 'all' },
  groupAdd: { method: 'PUT', path: '/v1/anti-affinity/:group', role: 'operator', scope: { containers: (i) => i.containers } },
  groupRemove: { method: 'POST', path: '/v1/anti-affinity/remove', role: 'operator', scope: { containers: (i) => i.containers } },

  unify: { method: 'POST', path: '/v1/unifies', role: 'admin', scope: { containers: (i) => i.containers } },
  mount: { method: 'POST', path: '/v1/containers/:container/mounts', role: 'admin', scope: { containers: one } },
  umount: { method: 'POST', path: '/v1/containers/:container/umount', role: 'admin', scope: { containers: one } },
  gc: { method: 'POST', path: '/v1/gc', role: 'admin', scope: 'all' },
  tokenCreate: { method: 'POST', path: '/v1/tokens', role: 'admin', scope: 'all' },
  tokenList: { method: 'GET', path: '/v1/tokens', role: 'admin', scope: 'all' },
  tokenRevoke: { method: 'DELETE', path: '/v1/tokens/:token', role: 'admin', scope: 'all' },
  audit: { method: 'GET', path: '/v1/audit', role: 'admin', scope: 'all' },
};

/** The names of a path's parameters (`/v1/operations/:id/:kind` → id, kind). */
export function pathParams(path: string): string[] {
  return [...path.matchAll(/:([A-Za-z]+)/g)].map((m) => m[1]!);
}
