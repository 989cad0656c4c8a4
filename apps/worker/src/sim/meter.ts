import type { ContainerInfo } from '../runtime/runtime.js';
import type { HostMeasure, LoadMeter } from '../load/load-meter.js';
import type { FakeWorld } from './world.js';

/** Every fake host's capacity: 4 CPUs, 16 GiB. */
export const FAKE_CAPACITY = { cpus: 4, memBytes: 16 * 2 ** 30 };

/**
 * FAKE. The load meter of a fake host: what `world.loads` says each listed container uses (nothing
 * unless it runs, its rootfs size always), already smoothed, on a host of FAKE_CAPACITY. The real
 * meter reads cgroups and du (apps/worker/src/load; tested on a real container in the host tier).
 */
export class FakeMeter implements LoadMeter {
  constructor(private readonly world: FakeWorld) {}

  async measure(list: readonly ContainerInfo[]): Promise<HostMeasure> {
    const containers: HostMeasure['containers'] = new Map();
    for (const c of list) {
      const l = this.world.loads.get(c.name) ?? { cpu: 0, memBytes: 0, diskBytes: 2 ** 20 };
      containers.set(c.name, c.state === 'RUNNING' ? { ...l } : { cpu: 0, memBytes: 0, diskBytes: l.diskBytes });
    }
    return { capacity: FAKE_CAPACITY, containers };
  }

  stop(): void {}
}
