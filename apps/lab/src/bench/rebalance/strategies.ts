import { planRebalance, RebalancePolicy, type ContainerLoad, type Snapshot } from '@ferry/core';
import { imbalance, utilizations } from './cluster.js';

export interface PlannedMove {
  container: string;
  to: string;
}

/** A strategy: one round's moves from a snapshot. */
export type Strategy = (s: Snapshot) => PlannedMove[];

const HIGH_WATER = 0.85;
// Every host of the synthetic clusters has the same capacity (cluster.ts): 16 CPUs, 64 GiB.
const weight = (c: ContainerLoad, s: Snapshot) => {
  const h = s.hosts[0]!;
  return 0.5 * (c.cpu / h.cpus) + 0.5 * (c.memBytes / h.memBytes);
};
const fitsUnder = (s: Snapshot, c: ContainerLoad, to: string, u: Map<string, number>) => (u.get(to) ?? 1) + weight(c, s) <= HIGH_WATER;

/** ferry's policy (packages/core/src/rebalance), as automatic rounds run it. */
export const ferry: Strategy = (s) => planRebalance(s, RebalancePolicy.parse({ cooldownMs: 5 })).moves.map((m) => ({ container: m.container, to: m.to }));

/** Greedy: the largest container from the hottest host to the coldest, every round there is a gap. */
export const greedy: Strategy = (s) => {
  const u = [...utilizations(s).entries()].sort((a, b) => b[1] - a[1]);
  const [hot, cold] = [u[0]![0], u.at(-1)![0]];
  if (hot === cold) return [];
  const c = s.containers.filter((x) => x.host === hot && x.running).sort((a, b) => weight(b, s) - weight(a, s))[0];
  return c && fitsUnder(s, c, cold, new Map(u)) ? [{ container: c.name, to: cold }] : [];
};

/**
 * Like Incus's cluster rebalancing: when a host is more than 20 % above the average, move one
 * instance from it to the least loaded host, one at a time.
 */
export const incusLike: Strategy = (s) => {
  const u = utilizations(s);
  const mean = [...u.values()].reduce((a, b) => a + b, 0) / u.size;
  const [hot, hu] = [...u.entries()].sort((a, b) => b[1] - a[1])[0]!;
  if (hu <= mean * 1.2) return [];
  const cold = [...u.entries()].sort((a, b) => a[1] - b[1])[0]![0];
  // The instance whose move brings the host closest to the average.
  const excess = hu - mean;
  const c = s.containers.filter((x) => x.host === hot && x.running).sort((a, b) => Math.abs(weight(a, s) - excess) - Math.abs(weight(b, s) - excess))[0];
  return c && fitsUnder(s, c, cold, u) ? [{ container: c.name, to: cold }] : [];
};

/**
 * Like the Kubernetes descheduler's LowNodeUtilization: hosts above the high watermark give
 * containers to hosts below the low watermark until they are under it (largest first).
 */
export function deschedulerLike(low = 0.25, high = 0.45): Strategy {
  return (s) => {
    const u = utilizations(s);
    const moves: PlannedMove[] = [];
    const under = [...u.entries()].filter(([, v]) => v < low).map(([h]) => h);
    const over = new Set([...u.entries()].filter(([, v]) => v > high).map(([h]) => h));
    const onHost = new Map<string, ContainerLoad[]>();
    for (const c of s.containers) if (c.running && over.has(c.host)) onHost.set(c.host, [...(onHost.get(c.host) ?? []), c]);
    for (const [h] of [...u.entries()].filter(([, v]) => v > high).sort((a, b) => b[1] - a[1])) {
      for (const c of (onHost.get(h) ?? []).sort((a, b) => weight(b, s) - weight(a, s))) {
        if ((u.get(h) ?? 0) <= high) break;
        const to = under.sort((a, b) => (u.get(a) ?? 0) - (u.get(b) ?? 0)).find((t) => (u.get(t) ?? 1) + weight(c, s) < high);
        if (!to) continue;
        moves.push({ container: c.name, to });
        u.set(h, (u.get(h) ?? 0) - weight(c, s));
        u.set(to, (u.get(to) ?? 0) + weight(c, s));
      }
    }
    return moves;
  };
}

/** The lowest imbalance any placement reaches (exhaustive: small clusters only). */
export function optimum(s: Snapshot): number {
  const hosts = s.hosts.map((h) => h.name);
  const cs = s.containers;
  let best = Infinity;
  const place = [...cs.map((c) => c.host)];
  const rec = (i: number) => {
    if (i === cs.length) {
      best = Math.min(best, imbalance({ ...s, containers: cs.map((c, k) => ({ ...c, host: place[k]! })) }));
      return;
    }
    for (const h of hosts) {
      place[i] = h;
      rec(i + 1);
    }
  };
  rec(0);
  return best;
}
