import { spawn } from 'node:child_process';
import { mkdir, open, readFile, rm, writeFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import { FerryError } from '@ferry/core';
import { isAlive, procId, stopProcess, type ProcId } from '@ferry/infra';

/**
 * The only place the lab spawns a process other than through `run()`: long-running daemons
 * (workers, scheduler) that must outlive the command that started them. They run detached,
 * with output to a log file, and a pidfile holding PID + start time.
 */

/** Marks every lab daemon's environment, so `down` finds them even without pidfiles. */
export const LAB_ENV = 'FERRY_LAB_DIR';

export interface DaemonSpec {
  argv: string[];
  env: NodeJS.ProcessEnv;
  logFile: string;
  pidFile: string;
  /** How long to watch for an immediate exit (bad arguments, missing build) before trusting it. */
  settleMs?: number;
}

export async function readPidFile(file: string): Promise<ProcId | null> {
  const text = await readFile(file, 'utf8').catch(() => null);
  if (!text) return null;
  try {
    const id = JSON.parse(text) as ProcId;
    return (await isAlive(id)) ? id : null;
  } catch {
    return null;
  }
}

export async function startDaemon(spec: DaemonSpec): Promise<ProcId> {
  await mkdir(dirname(spec.logFile), { recursive: true });
  await mkdir(dirname(spec.pidFile), { recursive: true });
  const log = await open(spec.logFile, 'a');
  const child = spawn(spec.argv[0]!, spec.argv.slice(1), {
    detached: true, // own process group: a Ctrl-C of the starting command does not reach it
    stdio: ['ignore', log.fd, log.fd],
    env: spec.env,
  });
  // Listeners first, before any await: 'spawn' may fire while we wait on something else.
  const exited = new Promise<number | string>((res) => child.once('exit', (code, sig) => res(sig ?? code ?? -1)));
  const spawned = new Promise<void>((res, rej) => {
    child.once('spawn', res);
    child.once('error', (e) => rej(new FerryError('LAB_DAEMON_FAILED', `could not start ${spec.argv.join(' ')}: ${e.message}`)));
  });
  await log.close(); // the child has its own copy of the descriptor
  await spawned;
  child.unref();
  const id = await procId(child.pid!);
  if (!id) throw new FerryError('LAB_DAEMON_FAILED', `${spec.argv.join(' ')} exited at once; see ${spec.logFile}`);
  await writeFile(spec.pidFile, `${JSON.stringify(id)}\n`);
  const early = await Promise.race([exited, new Promise<null>((r) => setTimeout(() => r(null), spec.settleMs ?? 500))]);
  if (early !== null) {
    await rm(spec.pidFile, { force: true });
    const tail = (await readFile(spec.logFile, 'utf8').catch(() => '')).trim().slice(-800);
    throw new FerryError('LAB_DAEMON_EXITED', `${spec.argv.join(' ')} exited (${early}) right after start: ${tail}`);
  }
  return id;
}

/** Stops the daemon named by `pidFile` (no-op if not running) and removes the pidfile. */
export async function stopDaemon(pidFile: string, sig: NodeJS.Signals, graceMs?: number): Promise<boolean> {
  const id = await readPidFile(pidFile);
  const gone = id ? await stopProcess(id, sig, graceMs) : true;
  if (gone) await rm(pidFile, { force: true });
  return gone;
}
