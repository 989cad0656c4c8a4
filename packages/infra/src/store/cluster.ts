import { snapshotOf, type HostInfo, type RebalancePolicy, type Snapshot, type SnapshotNote } from '@ferry/core';
import type { HostRegistry } from './host-registry.js';
import type { OperationStore } from './operation-store.js';
import type { PlacementStore } from './placement-store.js';

/** The cluster as a placement decision sees it now: hosts, the snapshot planned from, the policy. */
export interface ClusterView {
  hosts: HostInfo[];
  snapshot: Snapshot;
  notes: SnapshotNote[];
  policy: RebalancePolicy;
}

/**
 * Reads what every placement decision (a round, a drain, `--to auto`) plans from: the registry's
 * hosts and load, pins, cordons, anti-affinity groups, cooldowns, the policy, and which containers an operation holds.
 */
export async function readCluster(s: { registry: HostRegistry; placement: PlacementStore; store: OperationStore }, now = Date.now()): Promise<ClusterView> {
  const [hosts, pins, cordons, cooldowns, groups, policy] = await Promise.all([
    s.registry.list(),
    s.placement.pins(),
    s.placement.cordoned(),
    s.placement.cooldowns(now),
    s.placement.groups(),
    s.placement.policy(),
  ]);
  const names = [...new Set(hosts.flatMap((h) => h.containers.map((c) => c.name)))];
  const holders = await Promise.all(names.map((n) => s.store.lockHolder(n)));
  const busy = new Set(names.filter((_, i) => holders[i] !== null));
  const { snapshot, notes } = snapshotOf(hosts, { pins, cordons, cooldowns, groups, busy }, now);
  return { hosts, snapshot, notes, policy };
}
