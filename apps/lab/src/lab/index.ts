import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { ContainerName, FerryError, ValidationError } from '@ferry/core';
import { run, type RunOptions, type RunResult } from '@ferry/infra';
import { createContainer, destroyContainer, startContainer } from './container.js';
import { teardown } from './down.js';
import { hostRun } from './hostenv.js';
import { setLink } from './netns.js';
import { waitPublished } from './registry.js';
import { layout } from './paths.js';
import { forgetContainer, markRunning, reserveContainer } from './reserve.js';
import { daemonPid, labRedisUrl, startSchedulerDaemon, startWorkerDaemon, stopNamedDaemon } from './services.js';
import { findHost, readState, requireUp, withLabLock, writeState, type LabState } from './state.js';
import { startLabServices, up } from './up.js';
import type { LabContainer, LabContainerOptions, LabInfo, LabUpOptions } from './types.js';

/**
 * The lab: ferry on one machine. N hosts, each a network namespace on a shared bridge with its own
 * sshd, LXC path and worker, plus a client namespace. Needs root.
 */
export type { LabContainer, LabContainerOptions, LabHost, LabInfo, LabUpOptions } from './types.js';
export { LAB_METRICS } from './metrics.js';

function requireRoot(): void {
  if (process.getuid?.() !== 0) throw new FerryError('LAB_NEEDS_ROOT', 'the lab makes network namespaces and containers: run it as root');
}

/** Brings a lab up, or returns the one already up (LAB_ALREADY_UP if it has another host count). */
export async function labUp(opts: LabUpOptions = {}): Promise<LabInfo> {
  requireRoot();
  return withLabLock(() => up(opts));
}

/** Removes everything the lab made; fine with no lab, a half lab, or twice in a row. */
export async function labDown(): Promise<void> {
  requireRoot();
  await withLabLock(() => teardown());
}

/** The lab that is up, or null (also null while an `up` is unfinished or crashed). */
export async function labInfo(): Promise<LabInfo | null> {
  const state = await readState();
  return state?.phase === 'up' ? state.info : null;
}

/** Creates a container on a lab host, starts it, and returns once the client gets its web page. */
export async function labContainerCreate(opts: LabContainerOptions): Promise<LabContainer> {
  requireRoot();
  const name = ContainerName.safeParse(opts.name);
  if (!name.success) throw new ValidationError([{ path: 'name', message: name.error.issues[0]?.message ?? 'invalid' }]);
  const sizeMb = opts.sizeMb ?? 0;
  if (!Number.isInteger(sizeMb) || sizeMb < 0 || sizeMb > 1 << 20) {
    throw new ValidationError([{ path: 'sizeMb', message: 'must be a whole number of MiB, 0 or more' }]);
  }
  const files = opts.files ?? 0;
  if (!Number.isInteger(files) || files < 0 || files > 10_000_000) {
    throw new ValidationError([{ path: 'files', message: 'must be a whole number of files, 0 to 10,000,000' }]);
  }
  const memoryMb = opts.memoryMb;
  if (memoryMb !== undefined && (!Number.isInteger(memoryMb) || memoryMb < 0 || memoryMb > 1 << 16)) {
    throw new ValidationError([{ path: 'memoryMb', message: 'must be a whole number of MiB, 0 to 65536' }]);
  }
  const cpuMilli = opts.cpuMilli;
  if (cpuMilli !== undefined && (!Number.isInteger(cpuMilli) || cpuMilli < 0 || cpuMilli > 64_000)) {
    throw new ValidationError([{ path: 'cpuMilli', message: 'must be a whole number of thousandths of a core, 0 to 64000' }]);
  }
  if (opts.image !== undefined && (!opts.image.startsWith('/') || sizeMb || files || opts.writer || memoryMb || cpuMilli)) {
    throw new ValidationError([{ path: 'image', message: 'must be an absolute path, and comes without sizeMb, files, writer, memoryMb or cpuMilli' }]);
  }
  const { rec, host, clientNetns } = await reserveContainer(name.data, opts.host);
  let pid: number;
  try {
    await createContainer(rec, layout(), {
      sizeMb,
      writer: opts.writer ?? false,
      files,
      ...(memoryMb ? { memoryMb } : {}),
      ...(cpuMilli ? { cpuMilli } : {}),
      ...(opts.image ? { image: opts.image } : {}),
    });
    pid = await startContainer(rec, host, clientNetns);
  } catch (e) {
    await destroyContainer(rec.lxcPath, rec.name, host).catch(() => undefined);
    await forgetContainer(rec.name).catch(() => undefined);
    throw e;
  }
  await markRunning(rec.name);
  // With services up, hand the container out only once its worker has published it.
  const info = (await requireUp()).info;
  if (info.redisUrl && (await daemonPid(info, `worker-${host.name}`)) && !(await waitPublished(info, host.name, rec.name))) {
    throw new FerryError(
      'LAB_WORKER_UNAWARE',
      `${rec.name} runs on ${host.name}, but its worker has not published it within 10 s; see ${join(info.stateDir, 'logs', `worker-${host.name}.log`)}`,
    );
  }
  return { name: rec.name, host: rec.host, lxcPath: rec.lxcPath, rootfs: rec.rootfs, ip: rec.ip, mac: rec.mac, pid };
}

/** Stops and deletes a lab container wherever it now is (a migration may have moved it); fine if gone. */
export async function labContainerRemove(name: string): Promise<void> {
  requireRoot();
  const state = await requireUp();
  for (const h of state.info.hosts) {
    if (existsSync(join(h.lxcPath, name))) await destroyContainer(h.lxcPath, name, findHost(state, h.name));
  }
  await forgetContainer(name);
}

/** Starts the worker of `host` (no-op if it runs); returns its PID. */
export async function startWorker(host: string): Promise<number> {
  requireRoot();
  const state = await withLabLock(async () => {
    const s = await requireUp();
    findHost(s, host);
    if (!s.info.redisUrl) await recordRedis(s);
    return s;
  });
  return (await startWorkerDaemon(state.info, findHost(state, host))).pid;
}

/** Stops the worker of `host`: SIGTERM (SIGKILL if still there after 10 s) or SIGKILL at once. */
export async function stopWorker(host: string, signal: 'SIGTERM' | 'SIGKILL'): Promise<void> {
  const state = await requireUp();
  await stopNamedDaemon(state.info, `worker-${findHost(state, host).name}`, signal);
}

export async function workerPid(host: string): Promise<number | null> {
  const state = await requireUp();
  return daemonPid(state.info, `worker-${findHost(state, host).name}`);
}

/** Starts the lab's scheduler, or another beside it (`name`: `scheduler-2`...); no-op if it runs; returns its PID. */
export async function startScheduler(name = 'scheduler'): Promise<number> {
  requireRoot();
  const state = await withLabLock(async () => {
    const s = await requireUp();
    if (!s.info.redisUrl) await recordRedis(s);
    return s;
  });
  return (await startSchedulerDaemon(state.info, name)).pid;
}

export async function stopScheduler(signal: 'SIGTERM' | 'SIGKILL', name = 'scheduler'): Promise<void> {
  await stopNamedDaemon((await requireUp()).info, name, signal);
}

export async function schedulerPid(name = 'scheduler'): Promise<number | null> {
  return daemonPid((await requireUp()).info, name);
}

/** Starts all missing services of a lab that is up (e.g. one brought up with startServices: false). */
export async function startServices(): Promise<void> {
  requireRoot();
  await withLabLock(async () => startLabServices(await requireUp(), layout()));
}

/** A lab brought up without services has no Redis yet: pick it (once) before the first daemon. */
async function recordRedis(state: LabState): Promise<void> {
  const redis = await labRedisUrl();
  state.info.redisUrl = redis.url;
  if (redis.started) state.info.redisStarted = true;
  await writeState(state);
}

/**
 * Runs argv on a lab host: in its network namespace and its mount namespace (see hostenv.ts).
 * File system and PIDs are shared with the root namespace.
 */
export async function hostExec(host: string, argv: string[], opts: Omit<RunOptions, 'netns'> = {}): Promise<RunResult> {
  const h = findHost(await requireUp(), host);
  return hostRun(h, argv[0]!, argv.slice(1), { timeoutMs: 120_000, ...opts });
}

/** Runs argv inside the client namespace. */
export async function clientExec(argv: string[], opts: RunOptions = {}): Promise<RunResult> {
  const { info } = await requireUp();
  return run(argv[0]!, argv.slice(1), { timeoutMs: 120_000, ...opts, netns: info.client.netns });
}

/** Fault injection: cut a host off the switch (its uplink down), and reconnect it. */
export async function linkDown(host: string): Promise<void> {
  await setLink(findHost(await requireUp(), host).uplink, 'down');
}

export async function linkUp(host: string): Promise<void> {
  await setLink(findHost(await requireUp(), host).uplink, 'up');
}
