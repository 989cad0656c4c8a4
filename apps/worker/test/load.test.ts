import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { HostInfo } from '@ferry/core';
import { LxcRuntime } from '../src/runtime/lxc.js';
import { CgroupReader } from '../src/load/cgroup-reader.js';
import { CgroupLoadMeter } from '../src/load/load-meter.js';
import { DiskSizes } from '../src/load/disk-sizes.js';
import { describeHost } from '../src/heartbeat.js';
import type { HostConfig } from '../src/config.js';
import { makeContainer, rand, removeLxcPath, tempDir, waitFor } from './helpers.js';

vi.setConfig({ testTimeout: 60_000, hookTimeout: 60_000 });

const log = pino({ level: 'silent' });
// One busy loop (a whole CPU when it gets one) and 32 MiB held in memory by a child of init.
const BUSY = 'dd if=/dev/zero of=/dev/shm/held bs=1M count=32 2>/dev/null\nwhile true; do :; done\n';

describe('load measured from a real container (cgroup v1, v2 or hybrid, as this machine has)', () => {
  let lxcPath: string;
  let rt: LxcRuntime;
  const busy = `test-${rand()}`;
  const idle = `test-${rand()}`;

  beforeAll(async () => {
    lxcPath = await tempDir('ferry-load-');
    await makeContainer(lxcPath, busy, { init: BUSY, extra: ['lxc.mount.entry = tmpfs dev/shm tmpfs rw,create=dir,size=64m 0 0'] });
    await makeContainer(lxcPath, idle);
    await writeFile(join(lxcPath, idle, 'rootfs', 'data'), Buffer.alloc(8 * 2 ** 20, 1));
    rt = new LxcRuntime({ lxcPath });
    await rt.start(busy);
  });
  afterAll(async () => removeLxcPath(lxcPath));

  it("reads the container's CPU time and memory from its cgroup, found from its init's pid", async () => {
    const pid = (await rt.info(busy))!.pid!;
    const reader = new CgroupReader();
    const a = await reader.read(pid);
    await sleep(1000);
    const b = await reader.read(pid);
    expect(a.cpuNs).toBeGreaterThan(0);
    const cpus = (b.cpuNs! - a.cpuNs!) / 1e9;
    // A busy loop on a 2-core machine others also use: most of a CPU, never much more than one.
    expect(cpus).toBeGreaterThan(0.3);
    expect(cpus).toBeLessThan(1.2);
    // The 32 MiB on its tmpfs are shared memory, charged to its cgroup.
    await waitFor(async () => ((await reader.read(pid)).memBytes ?? 0) > 30 * 2 ** 20, 10_000, 'the memory charged');
  });

  it('the meter: smoothed CPU and memory per running container, rootfs sizes in the background, the host capacity', async () => {
    const meter = new CgroupLoadMeter(rt, log, { disks: new DiskSizes(log, 60_000) });
    try {
      let m = await meter.measure(await rt.list());
      expect(m.capacity.cpus).toBeGreaterThanOrEqual(1);
      expect(m.capacity.memBytes).toBeGreaterThan(2 ** 30);
      for (let i = 0; i < 4; i++) {
        await sleep(500);
        m = await meter.measure(await rt.list());
      }
      const b = m.containers.get(busy)!;
      const i = m.containers.get(idle)!;
      expect(b.cpu).toBeGreaterThan(0.3);
      expect(b.memBytes).toBeGreaterThan(30 * 2 ** 20);
      expect(i).toMatchObject({ cpu: 0, memBytes: 0 });
      // du ran meanwhile: the idle one's rootfs holds busybox and 8 MiB of data.
      await waitFor(async () => (await meter.measure(await rt.list())).containers.get(idle)?.diskBytes !== undefined, 20_000, 'rootfs sizes');
      m = await meter.measure(await rt.list());
      expect(m.containers.get(idle)!.diskBytes).toBeGreaterThan(8 * 2 ** 20);
      expect(m.containers.get(busy)!.diskBytes).toBeGreaterThan(2 ** 20);
    } finally {
      meter.stop();
    }
  });

  it('describeHost publishes capacity and load, in the registry schema', async () => {
    const host = { name: 'h1', address: '127.0.0.1', sshPort: 22, sshUser: 'root', lxcPath } as HostConfig;
    const meter = new CgroupLoadMeter(rt, log);
    try {
      await describeHost(host, rt, meter);
      await sleep(500);
      const info = HostInfo.parse(await describeHost(host, rt, meter));
      expect(info.capacity?.cpus).toBeGreaterThanOrEqual(1);
      expect(info.containers.find((c) => c.name === busy)?.load?.cpu).toBeGreaterThan(0);
      expect(info.containers.find((c) => c.name === idle)?.state).toBe('STOPPED');
    } finally {
      meter.stop();
    }
  });
});

describe('a meter that fails', () => {
  it('costs the beat its load figures, never the host description', async () => {
    const lxcPath = await tempDir('ferry-load-');
    try {
      const host = { name: 'h1', address: '127.0.0.1', sshPort: 22, sshUser: 'root', lxcPath } as HostConfig;
      const info = await describeHost(host, new LxcRuntime({ lxcPath }), { measure: () => Promise.reject(new Error('boom')), stop: () => undefined }, log);
      expect(info.capacity).toBeUndefined();
      expect(info.containers).toEqual([]);
      expect(HostInfo.parse(info).name).toBe('h1');
    } finally {
      await removeLxcPath(lxcPath);
    }
  });
});
