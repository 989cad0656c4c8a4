import { isIP } from 'node:net';
import { readFileSync } from 'node:fs';
import { AbsolutePath, parseRedisUrl, ValidationError } from '@ferry/core';
import { MetricsFlag } from '@ferry/infra';
import { EXIT, ExitError } from '../exit-error.js';
import { plainValue } from './env-file.js';
import { INSTALL_DEFAULTS } from './defaults.js';


interface Common {
  prefix: string;
  dryRun: boolean;
  force: boolean;
  ferryBin: string;
  stateDir: string;
  controlKey: string;
  hostKeys: string;
  metrics?: string;
}
export interface WorkerInstall extends Common {
  component: 'worker';
  host: string;
  address: string;
  lxcPath: string;
  redisUrl: string;
  sshKey?: string;
  knownHosts?: string;
  sshPort?: string;
  sshUser?: string;
  live: boolean;
  criu?: string;
  mountRoots: string[];
}
export interface LocalRedis {
  binds: string[];
  port: number;
  password?: string;
  maxmemory: string;
}
export interface SchedulerInstall extends Common {
  component: 'scheduler';
  redisUrl: string;
  /** ferry's own Redis on this host (Debian's redis-server@ferry); absent with --redis-url. */
  redis?: LocalRedis;
}
export type Install = WorkerInstall | SchedulerInstall;

/** Commander's parsed options, as they come (strings, booleans, repeated lists). */
export type RawInstall = Record<string, string | boolean | string[] | undefined>;

/** Every problem found, each naming its option; thrown together as one exit 2. */
class Problems {
  readonly list: string[] = [];
  add(flag: string, message: string) {
    this.list.push(`${flag}: ${message}`);
  }
  throwIfAny(component: string) {
    if (this.list.length) throw new ExitError(EXIT.badInput, `install ${component}: ${this.list.join('; ')} (nothing written)`);
  }
}

const str = (v: unknown) => (typeof v === 'string' ? v : undefined);
const HOME_DIRS = /^\/(root|home|run\/user)(\/|$)/;

function path(p: Problems, flag: string, v: string | undefined, fallback: string): string {
  const value = v ?? fallback;
  if (!AbsolutePath.safeParse(value).success) p.add(flag, `'${value}' is not a normalized absolute path`);
  else if (!plainValue(value)) p.add(flag, `'${value}' has characters an environment file cannot hold unquoted`);
  return value;
}

function common(p: Problems, o: RawInstall, keyDefaults: { controlKey: string }): Common {
  const prefix = path(p, '--prefix', str(o.prefix), '/');
  const stateDir = path(p, '--state-dir', str(o.stateDir), INSTALL_DEFAULTS.stateDir);
  const metrics = str(o.metrics);
  if (metrics !== undefined) {
    const m = MetricsFlag.safeParse(metrics);
    if (!m.success) p.add('--metrics', m.error.issues.map((i) => i.message).join(', '));
  }
  return {
    prefix,
    dryRun: Boolean(o.dryRun),
    force: Boolean(o.force),
    ferryBin: path(p, '--ferry-bin', str(o.ferryBin), INSTALL_DEFAULTS.ferryBin),
    stateDir,
    controlKey: path(p, '--control-key', str(o.controlKey), `${stateDir}/keys/${keyDefaults.controlKey}`),
    hostKeys: path(p, '--host-keys', str(o.hostKeys), `${stateDir}/keys/hosts`),
    ...(metrics !== undefined ? { metrics } : {}),
  };
}

function redisUrl(p: Problems, v: string): void {
  try {
    parseRedisUrl(v, '--redis-url');
  } catch (e) {
    if (!(e instanceof ValidationError)) throw e;
    for (const x of e.problems) p.add(x.path, x.message);
    return;
  }
  if (!plainValue(v)) p.add('--redis-url', 'has characters an environment file cannot hold unquoted (percent-encode them)');
}

/** Which worker flag a problem of parseHostConfig is about. */
const WORKER_FLAGS: Record<string, string> = {
  host: '--host', address: '--address', sshPort: '--ssh-port', sshUser: '--ssh-user', lxcPath: '--lxc-path', sshKey: '--ssh-key',
  knownHosts: '--known-hosts', stateDir: '--state-dir', live: '--live', criu: '--criu', mountRoots: '--mount-root',
  controlKey: '--control-key', hostKeys: '--host-keys', metrics: '--metrics',
};

/** The worker's environment as its env file will set it (checked by the worker's own parser). */
export function workerEnv(w: WorkerInstall): Record<string, string | undefined> {
  return {
    REDIS_URL: w.redisUrl,
    FERRY_STATE_DIR: w.stateDir,
    FERRY_HOST: w.host,
    FERRY_ADDRESS: w.address,
    FERRY_LXC_PATH: w.lxcPath,
    FERRY_SSH_PORT: w.sshPort,
    FERRY_SSH_USER: w.sshUser,
    FERRY_SSH_KEY: w.sshKey,
    FERRY_KNOWN_HOSTS: w.knownHosts,
    FERRY_CONTROL_PUB: w.controlKey,
    FERRY_HOST_KEYS: w.hostKeys,
    FERRY_WORKER_METRICS: w.metrics,
    FERRY_LIVE: w.live ? '1' : undefined,
    FERRY_CRIU: w.criu,
    FERRY_MOUNT_ROOTS: w.mountRoots.length ? w.mountRoots.join(':') : undefined,
  };
}

export async function parseWorkerInstall(o: RawInstall): Promise<WorkerInstall> {
  const p = new Problems();
  for (const flag of ['host', 'address'] as const) if (str(o[flag]) === undefined) p.add(`--${flag}`, 'required');
  const w: WorkerInstall = {
    component: 'worker',
    ...common(p, o, { controlKey: 'control.pub' }),
    host: str(o.host) ?? '',
    address: str(o.address) ?? '',
    lxcPath: str(o.lxcPath) ?? INSTALL_DEFAULTS.lxcPath,
    redisUrl: str(o.redisUrl) ?? `unix://${INSTALL_DEFAULTS.redisSocket}`,
    live: Boolean(o.live),
    mountRoots: Array.isArray(o.mountRoot) ? o.mountRoot : [],
  };
  for (const [k, flag] of [['sshKey', 'ssh-key'], ['knownHosts', 'known-hosts'], ['sshPort', 'ssh-port'], ['sshUser', 'ssh-user'], ['criu', 'criu']] as const) {
    const v = str(o[k]);
    if (v === undefined) continue;
    if (!plainValue(v)) p.add(`--${flag}`, `'${v}' has characters an environment file cannot hold unquoted`);
    w[k] = v;
  }
  redisUrl(p, w.redisUrl);
  p.throwIfAny('worker');
  // The worker's own parser, on exactly what its env file will say: what installs, starts.
  const { parseHostConfig } = await import('@ferry/worker');
  try {
    parseHostConfig({}, Object.fromEntries(Object.entries(workerEnv(w)).filter(([, v]) => v !== undefined)));
  } catch (e) {
    if (!(e instanceof ValidationError)) throw e;
    for (const q of e.problems) p.add(WORKER_FLAGS[String(q.path ?? '').split('.')[0]!] ?? String(q.path), q.message);
  }
  for (const [flag, v] of [['--host', w.host], ['--address', w.address], ['--lxc-path', w.lxcPath], ...w.mountRoots.map((r) => ['--mount-root', r])] as const) {
    if (!plainValue(v)) p.add(flag, `'${v}' has characters an environment file cannot hold unquoted`);
  }
  p.throwIfAny('worker');
  return w;
}

const PASSWORD = /^[A-Za-z0-9._~+/=-]{16,512}$/;
const SIZE = /^[1-9]\d*(b|k|kb|m|mb|g|gb)?$/i;
const isLoopback = (a: string) => a === '::1' || a.startsWith('127.');

export function parseSchedulerInstall(o: RawInstall): SchedulerInstall {
  const p = new Problems();
  const c = common(p, o, { controlKey: 'control.key' });
  // The unit hides home directories from the scheduler (ProtectHome=yes): its files cannot live there.
  for (const [flag, v] of [['--state-dir', c.stateDir], ['--control-key', c.controlKey], ['--host-keys', c.hostKeys]] as const) {
    if (HOME_DIRS.test(v)) p.add(flag, `'${v}' is under a home directory, which the scheduler's unit hides (ProtectHome=yes)`);
  }
  const external = str(o.redisUrl);
  const binds = Array.isArray(o.redisBind) ? o.redisBind : [];
  const localOnly = ['--redis-bind', '--redis-port', '--redis-password-file', '--redis-maxmemory'].filter((f) => o[camel(f)] !== undefined);
  if (external !== undefined) {
    redisUrl(p, external);
    for (const f of localOnly) p.add(f, 'is for ferry\'s own Redis on this host; with --redis-url it is yours to configure');
    p.throwIfAny('scheduler');
    return { component: 'scheduler', ...c, redisUrl: external };
  }
  for (const b of binds) if (!isIP(b)) p.add('--redis-bind', `'${b}' is not an IPv4 or IPv6 address`);
  const portText = str(o.redisPort) ?? String(INSTALL_DEFAULTS.redisPort);
  const port = Number(portText);
  if (!/^\d+$/.test(portText) || port < 1 || port > 65535) p.add('--redis-port', `'${portText}' is not a port (1-65535)`);
  const maxmemory = str(o.redisMaxmemory) ?? INSTALL_DEFAULTS.redisMaxmemory;
  if (!SIZE.test(maxmemory)) p.add('--redis-maxmemory', `'${maxmemory}' is not a size (512mb, 2gb)`);
  let password: string | undefined;
  const pwFile = str(o.redisPasswordFile);
  if (pwFile !== undefined) {
    try {
      password = readFileSync(pwFile, 'utf8').split('\n')[0]!.trim();
      if (!PASSWORD.test(password)) p.add('--redis-password-file', `the first line of ${pwFile} must be 16-512 characters of A-Z a-z 0-9 . _ ~ + / = - (e.g. openssl rand -base64 32)`);
    } catch (e) {
      p.add('--redis-password-file', `cannot read ${pwFile}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
    }
  }
  // Issue 14: whoever writes to ferry's Redis can stall or roll back every operation. Beyond this
  // host it is reachable only with a password.
  if (binds.some((b) => !isLoopback(b)) && pwFile === undefined) p.add('--redis-password-file', 'required when --redis-bind names an address other than loopback (Redis must not be reachable from the network without a password)');
  p.throwIfAny('scheduler');
  const redis: LocalRedis = { binds, port, maxmemory, ...(password ? { password } : {}) };
  // A password cannot travel in a unix:// URL (ferry's connection takes none there): TCP on loopback then.
  const url = password ? `redis://:${encodeURIComponent(password)}@127.0.0.1:${port}` : `unix://${INSTALL_DEFAULTS.redisSocket}`;
  return { component: 'scheduler', ...c, redisUrl: url, redis };
}

const camel = (flag: string) => flag.replace(/^--/, '').replace(/-([a-z])/g, (_, ch: string) => ch.toUpperCase());
