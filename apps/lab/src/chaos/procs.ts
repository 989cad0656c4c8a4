import { readdir, readFile } from 'node:fs/promises';

/** Process snapshots through /proc: what a killed daemon leaves running behind it. */

export interface ProcInfo {
  pid: number;
  ppid: number;
  startTime: number;
  cmd: string;
}

async function info(pid: number): Promise<ProcInfo | null> {
  const stat = await readFile(`/proc/${pid}/stat`, 'utf8').catch(() => null);
  if (!stat) return null;
  const rest = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  if (rest[0] === 'Z' || rest[0] === 'X') return null;
  const cmd = (await readFile(`/proc/${pid}/cmdline`, 'utf8').catch(() => '')).split('\0').filter(Boolean);
  return { pid, ppid: Number(rest[1]), startTime: Number(rest[19]), cmd: cmd.slice(0, 3).join(' ').slice(0, 120) };
}

/** Every live descendant of `root` (children, grandchildren, ...). */
export async function descendants(root: number): Promise<ProcInfo[]> {
  const all: ProcInfo[] = [];
  for (const e of await readdir('/proc')) {
    const pid = Number(e);
    if (!Number.isInteger(pid) || pid <= 1) continue;
    const i = await info(pid);
    if (i) all.push(i);
  }
  const out: ProcInfo[] = [];
  let frontier = new Set([root]);
  while (frontier.size) {
    const next = new Set<number>();
    for (const p of all) {
      if (frontier.has(p.ppid)) {
        out.push(p);
        next.add(p.pid);
      }
    }
    frontier = next;
  }
  return out;
}

/** Those of `procs` that still run (same PID and start time). */
export async function stillAlive(procs: readonly ProcInfo[]): Promise<ProcInfo[]> {
  const out: ProcInfo[] = [];
  for (const p of procs) {
    const i = await info(p.pid);
    if (i && i.startTime === p.startTime) out.push(p);
  }
  return out;
}

/** Live processes whose command line contains every one of `needles`. */
export async function findProcs(...needles: string[]): Promise<ProcInfo[]> {
  const out: ProcInfo[] = [];
  for (const e of await readdir('/proc')) {
    const pid = Number(e);
    if (!Number.isInteger(pid) || pid <= 1 || pid === process.pid) continue;
    const full = (await readFile(`/proc/${pid}/cmdline`, 'utf8').catch(() => '')).split('\0').join(' ');
    if (!needles.every((n) => full.includes(n))) continue;
    const i = await info(pid);
    if (i) out.push({ ...i, cmd: full.slice(0, 200) });
  }
  return out;
}
