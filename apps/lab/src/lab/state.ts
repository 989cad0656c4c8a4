import { mkdir, open, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { FerryError } from '@ferry/core';
import { layout } from './paths.js';
import { isAlive, procId, type ProcId } from '@ferry/infra';
import type { LabContainer, LabInfo } from './types.js';

/**
 * lab.json: the lab's record of intent. It is written BEFORE each resource is made, so a `down`
 * after a crash knows what may exist. `phase` says whether `up` finished.
 */
export interface ContainerRecord extends Omit<LabContainer, 'pid'> {
  phase: 'creating' | 'running';
  /** The process making it, while `creating`: if that process is gone, the record is debris. */
  creator?: ProcId;
}

export interface LabState {
  version: 1;
  /** `creating`: an up began; `up`: it finished; `removing`: a down began. */
  phase: 'creating' | 'up' | 'removing';
  info: LabInfo;
  containers: Record<string, ContainerRecord>;
}

export async function readState(file = layout().stateFile): Promise<LabState | null> {
  const text = await readFile(file, 'utf8').catch((e: NodeJS.ErrnoException) => {
    if (e.code === 'ENOENT') return null;
    throw e;
  });
  if (text === null) return null;
  try {
    const state = JSON.parse(text) as LabState;
    if (state.version !== 1 || !state.info) throw new Error('unknown format');
    return state;
  } catch (e) {
    throw new FerryError('LAB_STATE_CORRUPT', `${file} is not a lab state file (${(e as Error).message}); run \`ferry lab down\``);
  }
}

/** Write-then-rename, so a crash never leaves half a lab.json. */
export async function writeState(state: LabState, file = layout().stateFile): Promise<void> {
  await mkdir(dirname(file), { recursive: true });
  const tmp = `${file}.${process.pid}.tmp`;
  await writeFile(tmp, `${JSON.stringify(state, null, 2)}\n`);
  await rename(tmp, file);
}

/** The state of a lab that finished `up`, or LAB_NOT_UP. */
export async function requireUp(): Promise<LabState> {
  const state = await readState();
  if (!state || state.phase !== 'up') {
    const why = state?.phase === 'removing' ? 'a `down` did not finish' : 'an `up` did not finish';
    throw new FerryError('LAB_NOT_UP', state ? `the lab is half made (${why}); run \`ferry lab down\`, then \`ferry lab up\`` : 'no lab is up; run `ferry lab up`');
  }
  return state;
}

let chain: Promise<unknown> = Promise.resolve();

/**
 * Serialises lab-state changes: in this process by a promise chain, across processes by a lock
 * file holding the owner's PID and start time (a crashed owner's lock is taken over).
 */
export function withLabLock<T>(fn: () => Promise<T>, timeoutMs = 120_000): Promise<T> {
  const next = chain.then(() => lockedRun(fn, timeoutMs));
  chain = next.catch(() => undefined);
  return next;
}

async function lockedRun<T>(fn: () => Promise<T>, timeoutMs: number): Promise<T> {
  const file = layout().lockFile;
  await mkdir(dirname(file), { recursive: true });
  const me = await procId(process.pid);
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      const fh = await open(file, 'wx');
      await fh.writeFile(`${me?.pid} ${me?.startTime}\n`);
      await fh.close();
      break;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
    }
    const [pid, startTime] = (await readFile(file, 'utf8').catch(() => '')).trim().split(' ').map(Number);
    if (pid && startTime !== undefined && !(await isAlive({ pid, startTime }))) {
      await rm(file, { force: true });
      continue;
    }
    if (Date.now() > deadline) throw new FerryError('LAB_BUSY', `another ferry process (pid ${pid}) holds ${file}`);
    await sleep(25);
  }
  try {
    return await fn();
  } finally {
    await rm(file, { force: true });
  }
}

export function findHost(state: LabState, name: string): LabInfo['hosts'][number] {
  const host = state.info.hosts.find((h) => h.name === name);
  if (!host) {
    throw new FerryError('LAB_HOST_UNKNOWN', `no lab host "${name}"; the lab has ${state.info.hosts.map((h) => h.name).join(', ')}`);
  }
  return host;
}
