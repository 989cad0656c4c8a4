import { existsSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describeRedisTarget, FerryError } from '@ferry/core';
import { ensureRedis, loadOrCreatePrivateKey, trustPaths, type ProcId } from '@ferry/infra';
import { LAB_ENV, readPidFile, startDaemon, stopDaemon } from './daemon.js';
import { mountRootProblems } from '@ferry/worker';
import { hostArgv } from './hostenv.js';
import { labMetricsEnv } from './metrics.js';
import { layout, type Layout } from './paths.js';
import type { LabHost, LabInfo } from './types.js';

/** The lab's ferry daemons: one worker per host (inside its namespace) and the scheduler. */

/**
 * The compiled `ferry` CLI, `apps/cli/dist/main.js`: the lab runs the real binary for its workers and
 * scheduler (and the chaos suite for its commands). Found from this module whether it runs compiled
 * (apps/lab/dist/lab/) or from source under vitest (apps/lab/src/lab/): both are two levels below
 * apps/lab, beside apps/cli.
 */
export function cliMain(): string {
  return fileURLToPath(new URL('../../../cli/dist/main.js', import.meta.url));
}

const pidFile = (lab: Layout, name: string) => join(lab.run, `${name}.pid`);
const logFile = (lab: Layout, name: string) => join(lab.logs, `${name}.log`);

/**
 * Redis for the lab: the namespaces only reach 198.18.0.0/15 and the shared file system, so the URL
 * must be a unix socket or an address on the lab network.
 */
export async function labRedisUrl(): Promise<{ url: string; started: boolean }> {
  const { url, target, started } = await ensureRedis();
  const nodes = target.kind === 'socket' ? [] : target.kind === 'single' ? [target.node] : target.kind === 'sentinel' ? target.sentinels : target.nodes;
  const reachable = target.kind === 'socket' || nodes.every((n) => /^198\.1[89]\./.test(n.host));
  if (!reachable) {
    throw new FerryError(
      'LAB_REDIS_UNREACHABLE',
      `REDIS_URL (${describeRedisTarget(target)}) is not reachable from the lab's namespaces; unset REDIS_URL (ferry then runs its own redis on a unix socket) or bind redis to ${'198.18.0.1'}`,
    );
  }
  return { url, started };
}

function daemonEnv(info: LabInfo): NodeJS.ProcessEnv {
  return { ...process.env, ...labMetricsEnv(), REDIS_URL: info.redisUrl, FERRY_PREFIX: info.prefix, [LAB_ENV]: info.stateDir };
}

function requireBuilt(): string {
  const main = cliMain();
  if (!existsSync(main)) throw new FerryError('LAB_CLI_NOT_BUILT', `${main} does not exist; run \`npm run build\``);
  return main;
}

/**
 * The lab's keys, where the scheduler and the CLI of this state dir find them: the control-plane
 * key made before any daemon starts (so a worker never waits for it), its public half given to each
 * worker, and one host key directory that the workers write to and the scheduler trusts. Real
 * hosts would copy control.pub out and each <host>.pub in; the lab's hosts share this file system.
 */
async function labKeys(): Promise<{ controlKey: string; controlPub: string; hostKeys: string }> {
  const paths = trustPaths();
  await loadOrCreatePrivateKey(paths.controlKey, { publicPath: paths.controlPub });
  return paths;
}

export async function startWorkerDaemon(info: LabInfo, host: LabHost): Promise<ProcId> {
  const lab = layout(info.stateDir);
  const name = `worker-${host.name}`;
  const running = await readPidFile(pidFile(lab, name));
  if (running) return running;
  await mkdir(lab.shared, { recursive: true });
  const keys = await labKeys();
  // In the host's network and mount namespaces (see hostenv.ts); the PID we record is the worker's own.
  const argv = hostArgv(host, process.execPath, [requireBuilt(), 'worker',
    '--host', host.name,
    '--address', host.address,
    '--ssh-port', String(host.sshPort),
    '--ssh-user', 'root',
    '--lxc-path', host.lxcPath,
    '--ssh-key', info.sshKey,
    '--known-hosts', info.knownHosts,
    '--state-dir', host.stateDir,
    '--control-key', keys.controlPub,
    '--host-keys', keys.hostKeys,
    ...(info.live ? ['--live'] : []),
  ]);
  // The shared dir is the workers' mount root, unless the lab lives where no mount root may (the
  // default state dir is under /root): then the lab shares nothing, and `ferry mount` is refused.
  const share = mountRootProblems([lab.shared], host.lxcPath, [host.stateDir]).length === 0;
  return startDaemon({ argv, env: { ...daemonEnv(info), ...(share ? { FERRY_MOUNT_ROOTS: lab.shared } : {}) }, logFile: logFile(lab, name), pidFile: pidFile(lab, name) });
}

/**
 * The lab's scheduler (`scheduler`), or another beside it (`scheduler-2`...: several schedulers on
 * one Redis and prefix, as issue 16 runs them). Every one signs with the same control key; another
 * keeps its replay record in a state dir of its own (as a second machine would) and serves no
 * metrics (the lab's port is the first one's).
 */
export async function startSchedulerDaemon(info: LabInfo, name = 'scheduler'): Promise<ProcId> {
  const lab = layout(info.stateDir);
  const running = await readPidFile(pidFile(lab, name));
  if (running) return running;
  const keys = await labKeys();
  const argv = [process.execPath, requireBuilt(), 'scheduler', '--control-key', keys.controlKey, '--host-keys', keys.hostKeys];
  const another = name === 'scheduler' ? {} : { FERRY_STATE_DIR: join(lab.root, name), FERRY_SCHEDULER_METRICS: 'off' };
  return startDaemon({ argv, env: { ...daemonEnv(info), ...another }, logFile: logFile(lab, name), pidFile: pidFile(lab, name) });
}

export async function daemonPid(info: LabInfo, name: string): Promise<number | null> {
  return (await readPidFile(pidFile(layout(info.stateDir), name)))?.pid ?? null;
}

export async function stopNamedDaemon(info: LabInfo, name: string, sig: NodeJS.Signals): Promise<void> {
  const file = pidFile(layout(info.stateDir), name);
  if (!(await stopDaemon(file, sig))) throw new FerryError('LAB_DAEMON_STUCK', `${name} did not exit after SIGKILL`);
}
