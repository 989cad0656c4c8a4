import { mkdir } from 'node:fs/promises';
import { describeRedisTarget } from '@ferry/core';
import { createLogger, openRedis } from '@ferry/infra';
import type { HostConfig } from './config.js';
import { HostWorker } from './host-worker.js';
import { LxcRuntime } from './runtime/lxc.js';
import { findCriu } from './runtime/criu.js';
import { secureMountRoots } from './runtime/mount-roots.js';
import { loadWorkerTrust } from './trust/worker-keys.js';

/** Runs this host's worker until SIGTERM/SIGINT, then hands back or finishes its steps. */
export async function runWorker(host: HostConfig): Promise<void> {
  const log = createLogger('worker', { host: host.name });
  const { redis, prefix, target } = await openRedis(process.env, { log });
  log.info({ redis: describeRedisTarget(target), prefix }, 'redis');
  await mkdir(host.lxcPath, { recursive: true });
  // Bind mounts of directories below a mount root inherit its nosuid,nodev (see mount-roots.ts).
  const roots = await secureMountRoots(host.mountRoots ?? []);
  if (roots.secured.length) log.info({ roots: roots.secured }, 'mount roots made nosuid,nodev');
  if (roots.missing.length) log.warn({ roots: roots.missing }, 'mount roots that do not exist: nothing below them can be shared');
  // Live mode only when asked (FERRY_LIVE=1): with it off the runtime reports no checkpoint.
  const runtime = new LxcRuntime({
    lxcPath: host.lxcPath,
    criu: host.criu ?? findCriu(),
    live: host.live === true,
    mountRoots: host.mountRoots ?? [],
    protectedDirs: [host.stateDir],
  });
  // A worker without the control plane's key takes no job: it waits for the key here.
  const trust = await loadWorkerTrust(host, log);
  const w = new HostWorker({ redis, prefix, host, runtime, log, trust, ...(host.metrics ? { metrics: host.metrics } : {}) });
  try {
    await w.start();
  } catch (e) {
    redis.disconnect(); // nothing else keeps the process up: it exits with the error
    throw e;
  }
  await new Promise<void>((resolve) => {
    process.once('SIGTERM', () => resolve());
    process.once('SIGINT', () => resolve());
  });
  log.info('worker stopping');
  await w.stop();
  redis.disconnect();
}
