import { mkdir, writeFile } from 'node:fs/promises';
import { run, type RunOptions, type RunResult } from '@ferry/infra';
import type { Layout } from './paths.js';

/**
 * Where a lab host's commands run: its network namespace AND its own persistent mount namespace.
 *
 * Why not `ip netns exec`: it gives each command a new mount namespace with a fresh /sys, which
 * drops the /sys/fs/cgroup mounts. LXC then starts containers without any cgroup of their own,
 * and lxc-freeze fails ("Failed to freeze"). Plain `nsenter --net` keeps the cgroups but shows
 * the root namespace's /sys/class/net, and lxc-start refuses "bridge br0 doesn't exist".
 * So each host gets a mount namespace (kept alive by a bind mount of its nsfs file) whose /sys is
 * a sysfs of the host's network namespace with the cgroup mounts put back on top.
 *
 * The lab dir is made a shared mount before the host namespaces are made, so a file system
 * mounted below it later in the root namespace (e.g. a reflink-capable test FS) shows up on the
 * hosts too; mounts made inside a host stay there.
 */
export interface HostEnv {
  netns: string;
  mountNs: string;
}

export function hostArgv(env: HostEnv, file: string, args: readonly string[]): string[] {
  // nsenter without --pid execs the command itself: the PID it gets is the command's PID.
  return ['nsenter', `--mount=${env.mountNs}`, `--net=/run/netns/${env.netns}`, '--', file, ...args];
}

export function hostRun(env: HostEnv, file: string, args: readonly string[], opts: Omit<RunOptions, 'netns'> = {}): Promise<RunResult> {
  const [cmd, ...rest] = hostArgv(env, file, args);
  return run(cmd!, rest, opts);
}

const T = { timeoutMs: 10_000 };

/** Once per lab, before the host namespaces: the lab dir shared, the dir of the nsfs files private. */
export async function prepareLabMounts(lab: Layout): Promise<void> {
  await run('mount', ['--bind', lab.root, lab.root], T);
  await run('mount', ['--make-shared', lab.root], T);
  await mkdir(lab.nsDir, { recursive: true });
  // A mount namespace file can only be bind-mounted onto a non-shared mount.
  await run('mount', ['--bind', lab.nsDir, lab.nsDir], T);
  await run('mount', ['--make-private', lab.nsDir], T);
}

export async function createHostMountNs(lab: Layout, name: string, netns: string): Promise<HostEnv> {
  const h = lab.host(name);
  const env = { netns, mountNs: h.mountNs };
  const inNs = (args: string[], withNet = false) =>
    run('nsenter', [`--mount=${h.mountNs}`, ...(withNet ? [`--net=/run/netns/${netns}`] : []), '--', ...args], T);
  await writeFile(h.mountNs, '');
  await mkdir(h.cgroupStash, { recursive: true });
  // slave: mounts made later under the (shared) lab dir in the root namespace propagate in.
  await run('unshare', [`--mount=${h.mountNs}`, '--propagation', 'slave', 'true'], T);
  await inNs(['mount', '--rbind', '/sys/fs/cgroup', h.cgroupStash]);
  // A sysfs mounted from inside the network namespace lists that namespace's interfaces.
  await inNs(['mount', '-t', 'sysfs', netns, '/sys'], true);
  await inNs(['mount', '--rbind', h.cgroupStash, '/sys/fs/cgroup']);
  await inNs(['umount', '-R', h.cgroupStash]);
  return env;
}
