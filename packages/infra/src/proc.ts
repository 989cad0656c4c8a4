import { readdir, readFile, readlink } from 'node:fs/promises';
import { setTimeout as sleep } from 'node:timers/promises';

/**
 * Process inspection through /proc. A PID alone is not an identity (PIDs are reused), so callers
 * keep PID + start time and only ever signal a process whose start time still matches.
 */

export interface ProcId {
  pid: number;
  /** Field 22 of /proc/PID/stat (clock ticks since boot); stable for the life of the process. */
  startTime: number;
}

async function stat(pid: number): Promise<{ state: string; startTime: number } | null> {
  const text = await readFile(`/proc/${pid}/stat`, 'utf8').catch(() => null);
  if (text === null) return null;
  // The command name (field 2) may contain spaces and parentheses: parse after the last ')'.
  const rest = text.slice(text.lastIndexOf(')') + 2).split(' ');
  return { state: rest[0] ?? '?', startTime: Number(rest[19]) };
}

export async function procId(pid: number): Promise<ProcId | null> {
  const s = await stat(pid);
  return s ? { pid, startTime: s.startTime } : null;
}

/** Alive = exists, same start time, and not a zombie (PID 1 here may not reap orphans). */
export async function isAlive(id: ProcId): Promise<boolean> {
  const s = await stat(id.pid);
  return s !== null && s.startTime === id.startTime && s.state !== 'Z' && s.state !== 'X';
}

export function signal(pid: number, sig: NodeJS.Signals): void {
  try {
    process.kill(pid, sig);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ESRCH') throw e;
  }
}

async function waitGone(id: ProcId, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (!(await isAlive(id))) return true;
    if (Date.now() >= deadline) return false;
    await sleep(20);
  }
}

/**
 * Sends `sig` and waits for the process to go. A SIGTERM that is not obeyed within `graceMs`
 * becomes a SIGKILL. Returns false only if even SIGKILL did not end it within 5 s.
 */
export async function stopProcess(id: ProcId, sig: NodeJS.Signals, graceMs = 10_000): Promise<boolean> {
  if (!(await isAlive(id))) return true;
  signal(id.pid, sig);
  if (await waitGone(id, sig === 'SIGKILL' ? 5000 : graceMs)) return true;
  if (sig === 'SIGKILL') return false;
  if (await isAlive(id)) signal(id.pid, 'SIGKILL');
  return waitGone(id, 5000);
}

export async function cmdline(pid: number): Promise<string[]> {
  const raw = await readFile(`/proc/${pid}/cmdline`, 'utf8').catch(() => '');
  return raw.split('\0').filter((s) => s !== '');
}

/** The process's command name (at most 15 characters), or null if it is gone. */
export async function comm(pid: number): Promise<string | null> {
  const raw = await readFile(`/proc/${pid}/comm`, 'utf8').catch(() => null);
  return raw === null ? null : raw.trim();
}

/** Processes whose PID namespace is the one `pid` is in (that process included). */
export async function pidsInPidNamespaceOf(pid: number): Promise<number[]> {
  const ns = await readlink(`/proc/${pid}/ns/pid`).catch(() => null);
  if (ns === null) return [];
  // Side by side: one at a time, a busy host's thousand processes cost tens of ms (a frozen
  // container's final pass waits for this list).
  const pids = (await readdir('/proc')).map(Number).filter((p) => Number.isInteger(p) && p > 1);
  const links = await Promise.all(pids.map((p) => readlink(`/proc/${p}/ns/pid`).catch(() => null)));
  return pids.filter((_, i) => links[i] === ns);
}

/**
 * Files a process may still write without a write(2) of its own: held open for writing, or mapped
 * shared and writable. Paths as the process sees them (its root, its mounts); latin1 strings of
 * the name's bytes. Pipes, sockets and anonymous objects are left out.
 */
export async function filesOpenForWrite(pid: number): Promise<string[]> {
  const out = new Set<string>();
  const fds = await readdir(`/proc/${pid}/fd`).catch(() => [] as string[]);
  const targets = await Promise.all(
    fds.map(async (fd) => {
      const info = await readFile(`/proc/${pid}/fdinfo/${fd}`, 'utf8').catch(() => '');
      const flags = /^flags:\s*([0-7]+)/m.exec(info)?.[1];
      if (flags === undefined || (parseInt(flags, 8) & 3) === 0) return null; // O_RDONLY
      return readlink(`/proc/${pid}/fd/${fd}`, { encoding: 'buffer' }).catch(() => null);
    }),
  );
  for (const target of targets) if (target && target[0] === 0x2f) out.add(target.toString('latin1'));
  const maps = await readFile(`/proc/${pid}/maps`).catch(() => Buffer.alloc(0));
  for (const line of maps.toString('latin1').split('\n')) {
    // address perms offset dev inode path: a shared writable mapping of a file
    const m = /^\S+ (\S{4}) \S+ \S+ \d+\s+(\/.*)$/.exec(line);
    if (m && m[1]![1] === 'w' && m[1]![3] === 's') out.add(m[2]!.replace(/ \(deleted\)$/, ''));
  }
  return [...out];
}

/** Live processes whose environment holds exactly `key=value` (the lab marks its daemons this way, a worker its tools). */
export async function pidsWithEnv(key: string, value: string): Promise<ProcId[]> {
  const needle = `${key}=${value}`;
  const found: ProcId[] = [];
  for (const entry of await readdir('/proc')) {
    const pid = Number(entry);
    if (!Number.isInteger(pid) || pid <= 1 || pid === process.pid) continue;
    const env = await readFile(`/proc/${pid}/environ`, 'utf8').catch(() => '');
    if (!env.split('\0').includes(needle)) continue;
    const id = await procId(pid);
    if (id && (await isAlive(id))) found.push(id);
  }
  return found;
}
