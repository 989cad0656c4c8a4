import { join } from 'node:path';
import { z } from 'zod';
import { AbsolutePath, Address, HostName, parseOrThrow, SshUser, ValidationError } from '@ferry/core';
import { MetricsFlag, stateDir, trustPaths } from '@ferry/infra';
import type { HostConfig } from './config.js';
import { mountRootProblems, splitMountRoots } from './runtime/mount-roots.js';

const Raw = z.object({
  host: HostName,
  // The registry's own schemas (Peer): a worker that could not be described there refuses to start.
  address: Address,
  sshPort: z.coerce.number().int().min(1).max(65535).default(22),
  sshUser: SshUser.default('root'),
  lxcPath: AbsolutePath.default('/var/lib/lxc'),
  sshKey: z.string().startsWith('/', 'must be an absolute path').optional(),
  knownHosts: z.string().startsWith('/', 'must be an absolute path').optional(),
  stateDir: z.string().startsWith('/', 'must be an absolute path').optional(),
  live: z
    .union([z.boolean(), z.enum(['0', '1', 'true', 'false'])])
    .transform((v) => v === true || v === '1' || v === 'true')
    .optional(),
  // lxc-checkpoint runs the `criu` first on its PATH: a path must name a file called criu.
  criu: z
    .string()
    .refine((v) => v === 'criu' || /^\/.*\/criu$/.test(v), 'must be `criu` or an absolute path to a file named criu')
    .optional(),
  mountRoots: z.array(AbsolutePath).default([]),
  controlKey: z.string().startsWith('/', 'must be an absolute path').optional(),
  hostKeys: z.string().startsWith('/', 'must be an absolute path').optional(),
  metrics: MetricsFlag.optional(),
});

/** Worker settings from flags, falling back to FERRY_* variables; every problem reported at once. */
export function parseHostConfig(flags: Record<string, unknown>, env: NodeJS.ProcessEnv = process.env): HostConfig {
  const pick = (k: string, e: string) => flags[k] ?? env[e];
  const raw = parseOrThrow(Raw, {
    host: pick('host', 'FERRY_HOST'),
    address: pick('address', 'FERRY_ADDRESS'),
    sshPort: pick('sshPort', 'FERRY_SSH_PORT'),
    sshUser: pick('sshUser', 'FERRY_SSH_USER'),
    lxcPath: pick('lxcPath', 'FERRY_LXC_PATH'),
    sshKey: pick('sshKey', 'FERRY_SSH_KEY'),
    knownHosts: pick('knownHosts', 'FERRY_KNOWN_HOSTS'),
    stateDir: pick('stateDir', 'FERRY_WORKER_STATE_DIR'),
    live: pick('live', 'FERRY_LIVE') || undefined,
    criu: pick('criu', 'FERRY_CRIU') || undefined,
    controlKey: pick('controlKey', 'FERRY_CONTROL_PUB') || undefined,
    hostKeys: pick('hostKeys', 'FERRY_HOST_KEYS') || undefined,
    metrics: pick('metrics', 'FERRY_WORKER_METRICS'),
    // --mount-root DIR (repeatable; an empty list counts as not given), else FERRY_MOUNT_ROOTS (a:b).
    mountRoots: ((f) => (f.length ? f : splitMountRoots(env.FERRY_MOUNT_ROOTS)))(splitMountRoots((flags.mountRoot ?? flags.mountRoots) as string | string[] | undefined)),
  });
  const home = env.HOME ?? '/root';
  const state = raw.stateDir ?? join(stateDir(env), 'worker', raw.host);
  const problems = mountRootProblems(raw.mountRoots, raw.lxcPath, [state]);
  if (problems.length) throw new ValidationError(problems.map((message) => ({ path: 'mountRoots', message })));
  return {
    name: raw.host,
    address: raw.address,
    sshPort: raw.sshPort,
    sshUser: raw.sshUser,
    lxcPath: raw.lxcPath,
    sshKey: raw.sshKey ?? join(home, '.ssh', 'id_ed25519'),
    knownHosts: raw.knownHosts ?? join(home, '.ssh', 'known_hosts'),
    stateDir: state,
    ...(raw.live ? { live: true } : {}),
    ...(raw.criu ? { criu: raw.criu } : {}),
    ...(raw.mountRoots.length ? { mountRoots: raw.mountRoots } : {}),
    controlKeyFile: raw.controlKey ?? trustPaths(env).controlPub,
    hostKeysDir: raw.hostKeys ?? trustPaths(env).hostKeys,
    ...(raw.metrics ? { metrics: raw.metrics } : {}),
  };
}
