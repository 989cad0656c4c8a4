import type { ContainerLoad, HostLoad, Snapshot } from './snapshot.js';
import type { RebalancePolicy } from './policy.js';
import { fits } from './plan-rebalance.js';

export interface Placement {
  container: string;
  from: string;
  to: string;
  mode: 'live' | 'restart';
}

export interface DrainPlan {
  host: string;
  moves: Placement[];
  /** Containers that fit nowhere, with why: a drain with any of these moves nothing. */
  unplaceable: { container: string; why: string }[];
}

interface Room {
  h: HostLoad;
  cpu: number;
  mem: number;
  disk: number;
  groups: Map<string, number>;
}

function rooms(snap: Snapshot): Map<string, Room> {
  const m = new Map<string, Room>(snap.hosts.map((h) => [h.name, { h, cpu: 0, mem: 0, disk: h.freeDiskBytes, groups: new Map() }]));
  for (const c of snap.containers) {
    const r = m.get(c.host);
    if (!r) continue;
    if (c.running) {
      r.cpu += c.cpu;
      r.mem += c.memBytes;
    }
    if (c.group) r.groups.set(c.group, (r.groups.get(c.group) ?? 0) + 1);
  }
  return m;
}

const util = (r: Room, w: number) => w * (r.cpu / r.h.cpus) + (1 - w) * (r.mem / r.h.memBytes);

/** The host a container would go to: where it fits, is least utilized afterwards, and moves live if it can. */
function choose(c: ContainerLoad, from: HostLoad | undefined, all: Iterable<Room>, policy: RebalancePolicy): Room | undefined {
  let best: Room | undefined;
  let bestKey = Infinity;
  for (const r of all) {
    if (!fits(c, r, policy)) continue;
    const live = (from?.live ?? false) && r.h.live;
    if (c.running && !live && !policy.allowRestart) continue;
    const after = policy.cpuWeight * ((r.cpu + c.cpu) / r.h.cpus) + (1 - policy.cpuWeight) * ((r.mem + c.memBytes) / r.h.memBytes);
    // Live first, then the least utilized after the move.
    const key = (live ? 0 : 1) + after;
    if (key < bestKey) {
      bestKey = key;
      best = r;
    }
  }
  return best;
}

function take(r: Room, c: ContainerLoad) {
  if (c.running) {
    r.cpu += c.cpu;
    r.mem += c.memBytes;
  }
  r.disk -= c.diskBytes;
  if (c.group) r.groups.set(c.group, (r.groups.get(c.group) ?? 0) + 1);
}

/**
 * Where a container should go (`ferry migrate|clone --to auto`): the host it fits on that is least
 * utilized afterwards, live-capable first. Undefined when it fits nowhere.
 */
export function placeOne(snap: Snapshot, c: ContainerLoad, policy: RebalancePolicy): string | undefined {
  const all = rooms(snap);
  return choose(c, all.get(c.host)?.h, all.values(), policy)?.h.name;
}

/**
 * Where a new copy of `source` should go (`ferry clone --to auto`): any host it fits on (the
 * high-water mark counting the copy as running as its source does, once started), its source's
 * included, that is least utilized afterwards. The copy is made stopped, so no live path is needed;
 * the source's pins are not the copy's.
 */
export function placeCopy(snap: Snapshot, source: ContainerLoad, name: string, policy: RebalancePolicy): string | undefined {
  // On a host name no host has: no host is "where it already is".
  const copy: ContainerLoad = { name, host: '', running: true, cpu: source.cpu, memBytes: source.memBytes, diskBytes: source.diskBytes };
  return choose(copy, undefined, rooms(snap).values(), { ...policy, allowRestart: true })?.h.name;
}

/**
 * Empties a host (`ferry drain`): every container on it, largest first, goes where `placeOne`
 * would put it, the host itself taking nothing. Pins hold a container to its host, so a pinned
 * container is unplaceable. All or nothing: any unplaceable container means no move is planned.
 */
export function planDrain(snap: Snapshot, host: string, policy: RebalancePolicy): DrainPlan {
  const all = rooms(snap);
  const self = all.get(host);
  const others = [...all.values()].filter((r) => r.h.name !== host);
  const leaving = snap.containers
    .filter((c) => c.host === host)
    .sort((a, b) => b.cpu / (self?.h.cpus ?? 1) + b.memBytes / (self?.h.memBytes ?? 1) - (a.cpu / (self?.h.cpus ?? 1) + a.memBytes / (self?.h.memBytes ?? 1)));
  const moves: Placement[] = [];
  const unplaceable: DrainPlan['unplaceable'] = [];
  for (const c of leaving) {
    // Pinned in place (or to this host): it stays, so the host cannot be emptied. Pinned to another
    // host: that host or nothing.
    if (c.pinned === true || c.pinned === host) {
      unplaceable.push({ container: c.name, why: `pinned to ${host}` });
      continue;
    }
    const to = choose(c, self?.h, c.pinned === undefined ? others : others.filter((r) => r.h.name === c.pinned), policy);
    if (!to) {
      unplaceable.push({ container: c.name, why: whyNot(c, self?.h, others, policy) });
      continue;
    }
    take(to, c);
    moves.push({ container: c.name, from: host, to: to.h.name, mode: (self?.h.live ?? false) && to.h.live ? 'live' : 'restart' });
  }
  return { host, moves: unplaceable.length ? [] : moves, unplaceable };
}

function whyNot(c: ContainerLoad, from: HostLoad | undefined, others: Room[], policy: RebalancePolicy): string {
  if (others.length === 0) return 'no other host';
  if (others.every((r) => r.h.cordoned)) return 'every other host is cordoned';
  if (c.running && !policy.allowRestart && !others.some((r) => (from?.live ?? false) && r.h.live)) return 'no host it can move to live, and restart moves are not allowed';
  if (others.every((r) => r.disk < c.diskBytes)) return `no host has ${Math.ceil(c.diskBytes / 2 ** 20)} MiB free`;
  return `no host has room under the ${Math.round(policy.highWater * 100)} % high-water mark (or an anti-affinity group rules them out)`;
}
