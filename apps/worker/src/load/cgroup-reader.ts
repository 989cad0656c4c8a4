import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { cgroupDirs, cpuFile, memoryFiles, parseCgroupMounts, parseCpuNs, parseMemoryBytes, parseProcCgroup, type CgroupMounts } from '@ferry/core';

const read = (p: string) => readFile(p, 'utf8').catch(() => undefined);

/**
 * Reads a running container's raw CPU time and memory in use from its cgroup (v1, v2 or hybrid),
 * found from its init's `/proc/<pid>/cgroup`: a few small files, no process spawned. What the
 * files mean is decided in core (load/cgroup.ts).
 */
export class CgroupReader {
  private mounts?: Promise<CgroupMounts>;

  constructor(
    private readonly procRoot = '/proc',
    private readonly mountsFile = '/proc/self/mounts',
  ) {}

  async read(pid: number): Promise<{ cpuNs?: number; memBytes?: number }> {
    this.mounts ??= read(this.mountsFile).then((t) => parseCgroupMounts(t ?? ''));
    const procText = await read(join(this.procRoot, String(pid), 'cgroup'));
    if (procText === undefined) return {};
    const dirs = cgroupDirs(await this.mounts, parseProcCgroup(procText));
    const out: { cpuNs?: number; memBytes?: number } = {};
    if (dirs.cpu) {
      const t = await read(join(dirs.cpu.dir, cpuFile(dirs.cpu.kind)));
      const ns = t === undefined ? undefined : parseCpuNs(dirs.cpu.kind, t);
      if (ns !== undefined) out.cpuNs = ns;
    }
    if (dirs.memory) {
      const [usageFile, statFile] = memoryFiles(dirs.memory.kind) as [string, string];
      const [usage, stat] = await Promise.all([read(join(dirs.memory.dir, usageFile)), read(join(dirs.memory.dir, statFile))]);
      const mem = usage === undefined ? undefined : parseMemoryBytes(dirs.memory.kind, usage, stat ?? '');
      if (mem !== undefined) out.memBytes = mem;
    }
    return out;
  }
}
