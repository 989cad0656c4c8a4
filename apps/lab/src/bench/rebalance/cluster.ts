import type { ContainerLoad, HostLoad, Snapshot } from '@ferry/core';

const GiB = 2 ** 30;

/** A deterministic generator (mulberry32): the same cluster and noise for every strategy. */
export function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export type Shape = 'skewed' | 'uniform';

/**
 * A synthetic cluster: `hosts` hosts of 16 CPUs and 64 GiB, `perHost` containers on each. Uniform:
 * every container draws the same load distribution. Skewed: the first tenth of the hosts carry
 * containers three times as busy.
 */
export function cluster(hosts: number, perHost: number, shape: Shape, seed: number): Snapshot {
  const r = rng(seed);
  const hs: HostLoad[] = Array.from({ length: hosts }, (_, i) => ({ name: `h${i}`, cpus: 16, memBytes: 64 * GiB, freeDiskBytes: 2000 * GiB, cordoned: false, live: true }));
  const cs: ContainerLoad[] = [];
  hs.forEach((h, i) => {
    const hot = shape === 'skewed' && i < Math.max(1, Math.round(hosts / 10));
    for (let k = 0; k < perHost; k++) {
      const f = hot ? 3 : 1;
      cs.push({ name: `${h.name}-c${k}`, host: h.name, running: true, cpu: f * 0.25 * r(), memBytes: f * 0.8 * GiB * r(), diskBytes: (0.5 + 8 * r()) * GiB });
    }
  });
  return { at: 0, hosts: hs, containers: cs };
}

/** Load noise of a round: every container's CPU and memory move by up to ±`amount` of their base. */
export function withNoise(base: ContainerLoad[], r: () => number, amount: number): Map<string, { cpu: number; memBytes: number }> {
  return new Map(base.map((c) => [c.name, { cpu: c.cpu * (1 + amount * (2 * r() - 1)), memBytes: c.memBytes * (1 + amount * (2 * r() - 1)) }]));
}

/** Utilization (0..1) of each host: CPU and memory weighted `w` : 1 - w. */
export function utilizations(s: Snapshot, w = 0.5): Map<string, number> {
  const load = new Map(s.hosts.map((h) => [h.name, { cpu: 0, mem: 0 }]));
  for (const c of s.containers) {
    const l = load.get(c.host);
    if (l && c.running) {
      l.cpu += c.cpu;
      l.mem += c.memBytes;
    }
  }
  return new Map(s.hosts.map((h) => [h.name, w * (load.get(h.name)!.cpu / h.cpus) + (1 - w) * (load.get(h.name)!.mem / h.memBytes)]));
}

/** The hottest host's distance above the mean utilization: what every strategy is judged by. */
export function imbalance(s: Snapshot, w = 0.5): number {
  const us = [...utilizations(s, w).values()];
  return Math.max(...us) - us.reduce((a, b) => a + b, 0) / us.length;
}
