import { readdir, readFile } from 'node:fs/promises';

/** The process group of `/proc/<pid>/stat` content (field 5; `comm` may hold spaces and parentheses). */
export function pgrpOfStat(stat: string): number | undefined {
  const close = stat.lastIndexOf(')');
  if (close < 0) return undefined;
  // After "pid (comm) ": state ppid pgrp ...
  const fields = stat.slice(close + 2).split(' ');
  const pgrp = Number(fields[2]);
  return Number.isInteger(pgrp) ? pgrp : undefined;
}

/** PIDs of the processes in process group `pgid` (host PID view), leader included. */
export async function groupMembers(pgid: number): Promise<number[]> {
  const pids = (await readdir('/proc')).filter((n) => /^\d+$/.test(n));
  const found: number[] = [];
  await Promise.all(
    pids.map(async (p) => {
      try {
        if (pgrpOfStat(await readFile(`/proc/${p}/stat`, 'utf8')) === pgid) found.push(Number(p));
      } catch {
        /* gone meanwhile */
      }
    }),
  );
  return found.sort((a, b) => a - b);
}

/**
 * Sends `signal` to a process group. With `exceptLeader`, every member but the leader gets it: the
 * leader is the runtime's exec helper (`lxc-attach` on LXC), which must live on to report how the
 * command ended (it dies of SIGTERM, SIGHUP, ... itself, and its exit status would then hide the
 * command's).
 * Returns how many processes were signalled.
 */
export async function signalGroup(pgid: number, signal: NodeJS.Signals, opts: { exceptLeader?: boolean } = {}): Promise<number> {
  if (!opts.exceptLeader) {
    try {
      process.kill(-pgid, signal);
      return 1;
    } catch {
      return 0;
    }
  }
  let n = 0;
  for (const pid of await groupMembers(pgid)) {
    if (pid === pgid) continue;
    try {
      process.kill(pid, signal);
      n++;
    } catch {
      /* gone meanwhile */
    }
  }
  return n;
}
