import { ewma } from './ewma.js';

/** What the worker read for one container at one moment (raw counters, unsmoothed). */
export interface ContainerSample {
  name: string;
  running: boolean;
  /** Cumulative CPU time of its cgroup (ns), when readable. */
  cpuNs?: number;
  /** Memory in use now (bytes), when readable. */
  memBytes?: number;
}

/** A container's smoothed use: CPUs (CPU seconds per second) and memory bytes. */
export interface SmoothedLoad {
  cpu: number;
  memBytes: number;
}

interface Track {
  at: number;
  cpuNs?: number;
  cpu?: number;
  mem?: number;
}

/** Smoothing window: a spike of a few seconds barely moves the average; a change held for minutes does. */
export const LOAD_TAU_MS = 60_000;

/**
 * Turns raw cgroup counters into smoothed loads, pure: CPU use is the counter's delta over the wall
 * time between two samples, each figure then averaged with `ewma` over `tauMs`. A counter that went
 * backwards (the container restarted in a new cgroup) starts over; a stopped container counts 0 and
 * its history is dropped, as is that of a container no longer listed.
 */
export class LoadTracker {
  private readonly tracks = new Map<string, Track>();
  constructor(private readonly tauMs = LOAD_TAU_MS) {}

  observe(at: number, samples: readonly ContainerSample[]): Map<string, SmoothedLoad> {
    const out = new Map<string, SmoothedLoad>();
    const seen = new Set<string>();
    for (const s of samples) {
      seen.add(s.name);
      if (!s.running) {
        this.tracks.delete(s.name);
        out.set(s.name, { cpu: 0, memBytes: 0 });
        continue;
      }
      const t = this.tracks.get(s.name);
      const dt = t ? at - t.at : 0;
      let cpu = t?.cpu;
      if (t && s.cpuNs !== undefined && t.cpuNs !== undefined && s.cpuNs >= t.cpuNs && dt > 0) {
        cpu = ewma(t.cpu, (s.cpuNs - t.cpuNs) / (dt * 1e6), dt, this.tauMs);
      }
      const mem = s.memBytes === undefined ? t?.mem : ewma(t?.mem, s.memBytes, dt, this.tauMs);
      this.tracks.set(s.name, { at, ...(s.cpuNs !== undefined ? { cpuNs: s.cpuNs } : {}), ...(cpu !== undefined ? { cpu } : {}), ...(mem !== undefined ? { mem } : {}) });
      out.set(s.name, { cpu: cpu ?? 0, memBytes: Math.round(mem ?? 0) });
    }
    for (const name of [...this.tracks.keys()]) if (!seen.has(name)) this.tracks.delete(name);
    return out;
  }
}
