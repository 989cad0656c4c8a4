import type { ContainerLoad, HostLoad, Snapshot } from './snapshot.js';
import type { RebalancePolicy } from './policy.js';

/** One planned move, with why, what it costs and what it changes. */
export interface Move {
  container: string;
  from: string;
  to: string;
  mode: 'live' | 'restart';
  /** Bytes the move copies: the root filesystem, plus memory when live. */
  costBytes: number;
  /** How much the imbalance drops (utilization points, 0..1). */
  gain: number;
  reason: string;
}

export interface RebalancePlan {
  imbalanceBefore: number;
  imbalanceAfter: number;
  /** Utilization of every host (0..1, CPU and memory weighted) before and after the moves. */
  before: Record<string, number>;
  after: Record<string, number>;
  moves: Move[];
  /** Why nothing (more) moves, when the plan stops short. */
  note: string;
}

interface HostState {
  h: HostLoad;
  cpu: number;
  mem: number;
  disk: number;
  groups: Map<string, number>;
  moves: number;
}

const util = (s: HostState, w: number) => w * (s.cpu / s.h.cpus) + (1 - w) * (s.mem / s.h.memBytes);

/** The hottest host's distance above the mean utilization. */
function imbalanceOf(hosts: HostState[], w: number): number {
  if (hosts.length === 0) return 0;
  const us = hosts.map((s) => util(s, w));
  return Math.max(...us) - us.reduce((a, b) => a + b, 0) / us.length;
}

/**
 * Plans one rebalance round: pure. Acts only when the hottest host is `threshold` above the mean;
 * then moves, one at a time, the container whose move takes the most load above the mean off a hot
 * host per byte copied (without pushing its target above the mean), until the imbalance is below
 * half the threshold, no move gains `minGain`, or the round's move caps are reached. The gap between acting (threshold) and stopping (half of it), the minimum gain
 * and the cooldown keep small load noise from moving anything back and forth.
 */
export function planRebalance(snap: Snapshot, policy: RebalancePolicy): RebalancePlan {
  const w = policy.cpuWeight;
  const hosts = new Map<string, HostState>();
  for (const h of snap.hosts) hosts.set(h.name, { h, cpu: 0, mem: 0, disk: h.freeDiskBytes, groups: new Map(), moves: 0 });
  const placed = new Map<string, string>();
  for (const c of snap.containers) {
    const s = hosts.get(c.host);
    if (!s) continue;
    placed.set(c.name, c.host);
    if (c.running) {
      s.cpu += c.cpu;
      s.mem += c.memBytes;
    }
    if (c.group) s.groups.set(c.group, (s.groups.get(c.group) ?? 0) + 1);
  }
  const all = [...hosts.values()];
  const utilization = () => Object.fromEntries(all.map((s) => [s.h.name, round(util(s, w))]));
  const before = utilization();
  const imbalanceBefore = imbalanceOf(all, w);
  const moves: Move[] = [];
  const plan = (note: string): RebalancePlan => ({
    imbalanceBefore: round(imbalanceBefore),
    imbalanceAfter: round(imbalanceOf(all, w)),
    before,
    after: utilization(),
    moves,
    note,
  });
  if (all.length < 2) return plan('fewer than two hosts');
  if (imbalanceBefore < policy.threshold) return plan(`balanced: imbalance ${pct(imbalanceBefore)} below the threshold ${pct(policy.threshold)}`);

  const moved = new Set<string>();
  while (moves.length < policy.maxMoves) {
    const imb = imbalanceOf(all, w);
    if (imb < policy.threshold / 2) return plan(`balanced: imbalance ${pct(imb)} below half the threshold`);
    const best = bestMove(snap, all, hosts, moved, policy);
    if (!best) return plan(`no move gains ${pct(policy.minGain)} within the constraints`);
    apply(best.c, best.from, best.to);
    moved.add(best.c.name);
    moves.push(best.move);
  }
  return plan(`the round's cap of ${policy.maxMoves} moves`);

  function apply(c: ContainerLoad, from: HostState, to: HostState) {
    from.cpu -= c.cpu;
    from.mem -= c.memBytes;
    from.disk += c.diskBytes;
    to.cpu += c.cpu;
    to.mem += c.memBytes;
    to.disk -= c.diskBytes;
    if (c.group) {
      from.groups.set(c.group, (from.groups.get(c.group) ?? 1) - 1);
      to.groups.set(c.group, (to.groups.get(c.group) ?? 0) + 1);
    }
    from.moves += 1;
    to.moves += 1;
  }
}

interface Candidate {
  c: ContainerLoad;
  from: HostState;
  to: HostState;
  move: Move;
}

/** Where a container may go: the constraints every placement (rebalance, drain, `--to auto`) obeys. */
export function fits(c: ContainerLoad, to: { h: HostLoad; cpu: number; mem: number; disk: number; groups: Map<string, number> }, policy: RebalancePolicy): boolean {
  if (to.h.cordoned || to.h.name === c.host) return false;
  if (typeof c.pinned === 'string' && c.pinned !== to.h.name) return false;
  if (c.group && (to.groups.get(c.group) ?? 0) > 0) return false;
  if (to.disk < c.diskBytes) return false;
  const cpu = (to.cpu + (c.running ? c.cpu : 0)) / to.h.cpus;
  const mem = (to.mem + (c.running ? c.memBytes : 0)) / to.h.memBytes;
  return cpu <= policy.highWater && mem <= policy.highWater;
}

/** Most hot hosts a move is looked for on (the hottest first): keeps a round fast on large clusters. */
const SOURCES = 10;

/**
 * The move that takes the most excess off the hot hosts per byte copied. Its gain is how much
 * utilization above the mean it removes from the source, less what it adds above the mean on the
 * target: unlike the hottest host's excess alone, it does not vanish when many hosts are hot.
 */
function bestMove(snap: Snapshot, all: HostState[], hosts: Map<string, HostState>, moved: Set<string>, policy: RebalancePolicy): Candidate | undefined {
  const w = policy.cpuWeight;
  const utils = new Map(all.map((s) => [s, util(s, w)]));
  const mean = [...utils.values()].reduce((a, b) => a + b, 0) / all.length;
  const sources = new Set(
    all
      .filter((s) => utils.get(s)! > mean + policy.threshold / 2 && s.moves < policy.maxMovesPerHost)
      .sort((a, b) => utils.get(b)! - utils.get(a)!)
      .slice(0, SOURCES),
  );
  const targets = all.filter((s) => utils.get(s)! < mean && s.moves < policy.maxMovesPerHost);
  let best: Candidate | undefined;
  let bestScore = -Infinity;
  for (const c of snap.containers) {
    if (!c.running || moved.has(c.name) || c.pinned !== undefined) continue;
    if (c.cooldownUntil !== undefined && c.cooldownUntil > snap.at) continue;
    const from = hosts.get(c.host);
    if (!from || !sources.has(from)) continue;
    const uFrom = utils.get(from)!;
    const shed = w * (c.cpu / from.h.cpus) + (1 - w) * (c.memBytes / from.h.memBytes);
    for (const to of targets) {
      if (!fits(c, to, policy)) continue;
      const live = from.h.live && to.h.live;
      if (!live && !policy.allowRestart) continue;
      const uTo = utils.get(to)!;
      const add = w * (c.cpu / to.h.cpus) + (1 - w) * (c.memBytes / to.h.memBytes);
      const gain = Math.min(shed, uFrom - mean) - Math.max(0, uTo + add - mean);
      if (gain < policy.minGain) continue;
      const costBytes = c.diskBytes + (live ? c.memBytes : 0);
      const score = gain / (1 + costBytes / 2 ** 30);
      if (score > bestScore) {
        bestScore = score;
        best = {
          c,
          from,
          to,
          move: {
            container: c.name,
            from: from.h.name,
            to: to.h.name,
            mode: live ? 'live' : 'restart',
            costBytes,
            gain: round(gain),
            reason: `${from.h.name} at ${pct(uFrom)} is ${pct(uFrom - mean)} above the mean ${pct(mean)}; ${c.name} (${pct(shed)} of it) goes to ${to.h.name} at ${pct(uTo)}`,
          },
        };
      }
    }
  }
  return best;
}

const round = (x: number) => Math.round(x * 1e4) / 1e4;
const pct = (x: number) => `${(x * 100).toFixed(1)} %`;
const mib = (b: number) => Math.round(b / 2 ** 20);
