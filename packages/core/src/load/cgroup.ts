/**
 * Reading a container's CPU and memory use from its cgroup: pure parsing of the kernel's files, cgroup
 * v1 (a hierarchy per controller: `cpuacct`, `memory`), v2 (one unified hierarchy) and hybrid layouts
 * (both mounted; v1 controllers are read first there, where LXC puts its limits). The worker reads the
 * files (apps/worker/src/load); what they mean is decided here.
 */

/** Where the hierarchies are mounted, from /proc/self/mounts. */
export interface CgroupMounts {
  /** v1 hierarchy carrying `cpuacct` (alone or as `cpu,cpuacct`). */
  cpuacct?: string;
  /** v1 hierarchy carrying `memory`. */
  memory?: string;
  /** The cgroup2 (unified) mount. */
  unified?: string;
}

const unescape = (s: string) => s.replace(/\\(\d{3})/g, (_, o: string) => String.fromCharCode(parseInt(o, 8)));

export function parseCgroupMounts(text: string): CgroupMounts {
  const out: CgroupMounts = {};
  for (const line of text.split('\n')) {
    const f = line.split(' ');
    if (f.length < 4) continue;
    const [dir, type, opts] = [unescape(f[1]!), f[2]!, f[3]!.split(',')];
    if (type === 'cgroup2' && out.unified === undefined) out.unified = dir;
    if (type !== 'cgroup') continue;
    if (opts.includes('cpuacct') && out.cpuacct === undefined) out.cpuacct = dir;
    if (opts.includes('memory') && out.memory === undefined) out.memory = dir;
  }
  return out;
}

/** `/proc/<pid>/cgroup`: v1 controller → path, and the v2 path (`0::/...`). */
export interface ProcCgroups {
  v1: Map<string, string>;
  unified?: string;
}

export function parseProcCgroup(text: string): ProcCgroups {
  const out: ProcCgroups = { v1: new Map() };
  for (const line of text.split('\n')) {
    const m = /^(\d+):([^:]*):(\/.*)$/.exec(line.trim());
    if (!m) continue;
    const [, id, controllers, path] = m;
    if (id === '0' && controllers === '') out.unified = path!;
    else for (const c of controllers!.split(',')) if (c) out.v1.set(c, path!);
  }
  return out;
}

/** A cgroup directory to read one figure from, and how (v1 or v2 files). */
export interface CgroupDir {
  kind: 'v1' | 'v2';
  dir: string;
}

/** Joins a mount and a kernel-given path; never the hierarchy's root itself (that is the whole host). */
function under(mount: string, path: string | undefined): string | undefined {
  if (path === undefined || path === '/' || path.split('/').includes('..')) return undefined;
  return `${mount.replace(/\/+$/, '')}${path}`;
}

/**
 * The directories holding a process's CPU time and memory use: v1 `cpuacct` and `memory` where
 * mounted and the process is placed in them, else its v2 cgroup (whose `cpu.stat` always has
 * `usage_usec`, and `memory.current` where the memory controller is enabled).
 */
export function cgroupDirs(mounts: CgroupMounts, proc: ProcCgroups): { cpu?: CgroupDir; memory?: CgroupDir } {
  const v2 = mounts.unified ? under(mounts.unified, proc.unified) : undefined;
  const cpu1 = mounts.cpuacct ? under(mounts.cpuacct, proc.v1.get('cpuacct')) : undefined;
  const mem1 = mounts.memory ? under(mounts.memory, proc.v1.get('memory')) : undefined;
  const cpu = cpu1 ? { kind: 'v1' as const, dir: cpu1 } : v2 ? { kind: 'v2' as const, dir: v2 } : undefined;
  const memory = mem1 ? { kind: 'v1' as const, dir: mem1 } : v2 ? { kind: 'v2' as const, dir: v2 } : undefined;
  return { ...(cpu ? { cpu } : {}), ...(memory ? { memory } : {}) };
}

/** The file a CPU time counter is read from, relative to its cgroup dir. */
export const cpuFile = (kind: 'v1' | 'v2') => (kind === 'v1' ? 'cpuacct.usage' : 'cpu.stat');

/** CPU time used (ns) from `cpuacct.usage` (v1, ns) or `cpu.stat` (v2, `usage_usec`); undefined if unreadable. */
export function parseCpuNs(kind: 'v1' | 'v2', text: string): number | undefined {
  if (kind === 'v1') {
    const t = text.trim();
    return /^\d+$/.test(t) ? Number(t) : undefined;
  }
  const m = /^usage_usec (\d+)$/m.exec(text);
  return m ? Number(m[1]) * 1000 : undefined;
}

/** The files memory in use is read from: usage, and the stat that says how much of it is reclaimable. */
export const memoryFiles = (kind: 'v1' | 'v2') => (kind === 'v1' ? ['memory.usage_in_bytes', 'memory.stat'] : ['memory.current', 'memory.stat']);

function statField(stat: string, name: string): number | undefined {
  const m = new RegExp(`^${name} (\\d+)$`, 'm').exec(stat);
  return m ? Number(m[1]) : undefined;
}

/**
 * Memory in use (bytes): the cgroup's usage less its inactive file cache (what the kernel takes
 * back first; docker's and the kubelet's "working set"). v1's stat names it `total_inactive_file`
 * (hierarchical), v2's `inactive_file`. Undefined if the usage is unreadable.
 */
export function parseMemoryBytes(kind: 'v1' | 'v2', usageText: string, statText: string): number | undefined {
  const t = usageText.trim();
  if (!/^\d+$/.test(t)) return undefined;
  const usage = Number(t);
  const inactive = (kind === 'v1' ? (statField(statText, 'total_inactive_file') ?? statField(statText, 'inactive_file')) : statField(statText, 'inactive_file')) ?? 0;
  return Math.max(0, usage - inactive);
}
