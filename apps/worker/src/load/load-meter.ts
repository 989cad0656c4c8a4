import { availableParallelism, totalmem } from 'node:os';
import type { Logger } from 'pino';
import { LoadTracker, type ContainerLoadFigures, type ContainerSample } from '@ferry/core';
import type { ContainerInfo, Runtime } from '../runtime/runtime.js';
import { CgroupReader } from './cgroup-reader.js';
import { DiskSizes } from './disk-sizes.js';

/** What a host has and what its containers use, for the heartbeat. */
export interface HostMeasure {
  capacity: { cpus: number; memBytes: number };
  /** Container name → its smoothed load and last rootfs size. */
  containers: Map<string, ContainerLoadFigures>;
}

/** Measures load for the heartbeat; the fast tier's fake hosts give their own. */
export interface LoadMeter {
  measure(list: readonly ContainerInfo[]): Promise<HostMeasure>;
  stop(): void;
}

/**
 * The real meter: the host's CPUs and memory, each running container's CPU time and memory from its
 * cgroup (through its init's pid), smoothed over about a minute (core's LoadTracker), and its rootfs
 * size from `du` in the background (DiskSizes). Reading costs a few small files per container.
 */
export class CgroupLoadMeter implements LoadMeter {
  private readonly tracker = new LoadTracker();
  private readonly cgroups: CgroupReader;
  private readonly disks: DiskSizes;

  constructor(
    private readonly runtime: Pick<Runtime, 'rootfsDir'>,
    log: Logger,
    o: { cgroups?: CgroupReader; disks?: DiskSizes } = {},
  ) {
    this.cgroups = o.cgroups ?? new CgroupReader();
    this.disks = o.disks ?? new DiskSizes(log);
  }

  async measure(list: readonly ContainerInfo[]): Promise<HostMeasure> {
    const at = Date.now();
    const samples: ContainerSample[] = await Promise.all(
      list.map(async (c) => {
        const running = c.state === 'RUNNING' && c.pid !== undefined;
        return { name: c.name, running, ...(running ? await this.cgroups.read(c.pid!) : {}) };
      }),
    );
    const loads = this.tracker.observe(at, samples);
    const sizes = this.disks.get(new Map(list.map((c) => [c.name, this.runtime.rootfsDir(c.name)])));
    const containers = new Map<string, ContainerLoadFigures>();
    for (const c of list) {
      const l = loads.get(c.name) ?? { cpu: 0, memBytes: 0 };
      const disk = sizes.get(c.name);
      containers.set(c.name, { cpu: Math.round(l.cpu * 1000) / 1000, memBytes: l.memBytes, ...(disk !== undefined ? { diskBytes: disk } : {}) });
    }
    return { capacity: { cpus: availableParallelism(), memBytes: totalmem() }, containers };
  }

  stop(): void {
    this.disks.stop();
  }
}
