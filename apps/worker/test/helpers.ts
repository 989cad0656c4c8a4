/**
 * Test fixtures on the real machine: busybox LXC containers in temporary LXC paths, network
 * namespaces with an sshd (own host key, pinned known_hosts), root-namespace bridges.
 * Everything is named test-<random> / f<random> and removed by the returned `close()`.
 */
import { randomBytes } from 'node:crypto';
import { chmod, chown, copyFile, lchown, link, mkdir, mkdtemp, open, readFile, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import pino from 'pino';
import { run } from '@ferry/infra';
import { catalogue, type Peer, type StepInput, type StepName } from '@ferry/core';
import type { HostConfig } from '../src/config.js';
import type { Progress, StepContext } from '../src/context.js';
import type { Runtime } from '../src/runtime/runtime.js';
import { LxcRuntime } from '../src/runtime/lxc.js';
import { steps } from '../src/steps/index.js';

export const rand = (n = 4) => randomBytes(n).toString('hex');
export const sh = (file: string, args: string[], opts: Parameters<typeof run>[2] = {}) => run(file, args, opts);

export async function tempDir(prefix = 'ferry-test-'): Promise<string> {
  return mkdtemp(join(tmpdir(), prefix));
}

export interface ContainerOpts {
  /** Shell script run as the container's init (by busybox sh). Default: sleep forever. */
  init?: string;
  net?: { link: string; ip: string; prefix: number; mac: string };
  /** Extra config lines. */
  extra?: string[];
  /** What CRIU needs (LAB-NOTES): no console, and no AppArmor line on a kernel without it. */
  criu?: boolean;
}

/** A busybox container written by hand (no template, no network unless asked). */
export async function makeContainer(lxcPath: string, name: string, o: ContainerOpts = {}): Promise<string> {
  const dir = join(lxcPath, name);
  const rootfs = join(dir, 'rootfs');
  for (const d of ['bin', 'sbin', 'etc', 'proc', 'sys', 'dev', 'tmp', 'root', 'var/log', 'mnt', 'usr/bin', 'usr/sbin']) {
    await mkdir(join(rootfs, d), { recursive: true });
  }
  await copyFile('/bin/busybox', join(rootfs, 'bin/busybox'));
  await chmod(join(rootfs, 'bin/busybox'), 0o755);
  await run('chroot', [rootfs, '/bin/busybox', '--install', '-s']);
  await writeFile(join(rootfs, 'init.sh'), o.init ?? 'while true; do sleep 1; done\n');
  await writeFile(join(rootfs, 'etc/hostname'), `${name}\n`);
  const net = o.net
    ? [
        'lxc.net.0.type = veth',
        `lxc.net.0.link = ${o.net.link}`,
        'lxc.net.0.flags = up',
        'lxc.net.0.name = eth0',
        `lxc.net.0.ipv4.address = ${o.net.ip}/${o.net.prefix}`,
        `lxc.net.0.hwaddr = ${o.net.mac}`,
      ]
    : ['lxc.net.0.type = empty'];
  const config = [
    `lxc.uts.name = ${name}`,
    `lxc.rootfs.path = dir:${rootfs}`,
    'lxc.init.cmd = /bin/sh /init.sh',
    'lxc.mount.auto = proc:mixed sys:ro',
    'lxc.autodev = 1',
    'lxc.tty.max = 0',
    'lxc.pty.max = 1',
    ...(o.criu ? ['lxc.console.path = none'] : ['lxc.apparmor.profile = unconfined']),
    `lxc.log.file = ${dir}/lxc.log`,
    'lxc.log.level = WARN',
    ...net,
    ...(o.extra ?? []),
    '',
  ].join('\n');
  await writeFile(join(dir, 'config'), config, { mode: 0o640 });
  return dir;
}

/** Force-stops and removes every container of an LXC path, then the path. */
export async function removeLxcPath(lxcPath: string): Promise<void> {
  const r = await run('lxc-ls', ['-P', lxcPath, '-1']).catch(() => ({ stdout: '' }));
  for (const n of r.stdout.split(/\s+/).filter(Boolean)) {
    await run('lxc-stop', ['-P', lxcPath, '-n', n, '-k']).catch(() => undefined);
  }
  await rm(lxcPath, { recursive: true, force: true });
}

export async function lxcState(lxcPath: string, name: string): Promise<string> {
  return (await run('lxc-info', ['-P', lxcPath, '-n', name, '-s', '-H'])).stdout.trim();
}

export async function waitFor(cond: () => Promise<boolean>, timeoutMs = 10_000, what = 'condition'): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (Date.now() < end) {
    if (await cond()) return;
    await sleep(100);
  }
  throw new Error(`timed out waiting for ${what}`);
}

export interface SshPeerFixture {
  netns: string;
  /** Address of the sshd inside the namespace. */
  address: string;
  /** Address of the root-namespace end of the veth. */
  rootAddress: string;
  port: number;
  /** Client key and pinned known_hosts for the root-namespace side. */
  key: string;
  knownHosts: string;
  /** A known_hosts with a different (wrong) key for the same host. */
  wrongKnownHosts: string;
  dir: string;
  close(): Promise<void>;
}

/**
 * A network namespace joined to the root one by a veth pair (198.18.<octet>.1/24 root side,
 * .2 inside), running its own sshd on port 2222 with a fresh host key. `beforeSshd` runs after
 * the namespace exists and before sshd starts (mounts made later are not seen by sshd: `/` is a
 * private mount here and `ip netns exec` gives sshd its own mount namespace).
 */
export async function sshPeer(octet: number, beforeSshd?: (dir: string) => Promise<void>): Promise<SshPeerFixture> {
  const id = rand(3);
  const netns = `test-${id}`;
  const vr = `fr${id}`;
  const vn = `fn${id}`;
  const dir = await tempDir('ferry-sshd-');
  const address = `198.18.${octet}.2`;
  const rootAddress = `198.18.${octet}.1`;
  const port = 2222;
  const close = async () => {
    const pid = await readFile(join(dir, 'sshd.pid'), 'utf8').catch(() => '');
    if (pid.trim()) {
      try {
        process.kill(Number(pid.trim()), 'SIGTERM');
      } catch {
        /* gone */
      }
    }
    await run('ip', ['link', 'del', vr]).catch(() => undefined);
    await run('ip', ['netns', 'del', netns]).catch(() => undefined);
    await rm(dir, { recursive: true, force: true });
  };
  try {
    await run('ip', ['netns', 'add', netns]);
    await run('ip', ['link', 'add', vr, 'type', 'veth', 'peer', 'name', vn]);
    await run('ip', ['link', 'set', vn, 'netns', netns]);
    await run('ip', ['addr', 'add', `${rootAddress}/24`, 'dev', vr]);
    await run('ip', ['link', 'set', vr, 'up']);
    await run('ip', ['-n', netns, 'addr', 'add', `${address}/24`, 'dev', vn]);
    await run('ip', ['-n', netns, 'link', 'set', vn, 'up']);
    await run('ip', ['-n', netns, 'link', 'set', 'lo', 'up']);
    await run('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', join(dir, 'host')]);
    await run('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', join(dir, 'other-host')]);
    await run('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', join(dir, 'client')]);
    await copyFile(join(dir, 'client.pub'), join(dir, 'authorized_keys'));
    await chmod(join(dir, 'authorized_keys'), 0o600);
    const pub = (f: string) => readFile(join(dir, f), 'utf8').then((t) => t.trim().split(' ').slice(0, 2).join(' '));
    await writeFile(join(dir, 'known_hosts'), `[${address}]:${port} ${await pub('host.pub')}\n`);
    await writeFile(join(dir, 'wrong_known_hosts'), `[${address}]:${port} ${await pub('other-host.pub')}\n`);
    await writeFile(
      join(dir, 'sshd_config'),
      [
        `ListenAddress ${address}`,
        `Port ${port}`,
        `HostKey ${join(dir, 'host')}`,
        `AuthorizedKeysFile ${join(dir, 'authorized_keys')}`,
        `PidFile ${join(dir, 'sshd.pid')}`,
        'PasswordAuthentication no',
        'KbdInteractiveAuthentication no',
        'PermitRootLogin prohibit-password',
        'StrictModes no',
        'UsePAM no',
        'SetEnv SHLVL=1', // no ~/.bashrc per command (see the lab's sshd config)
        '',
      ].join('\n'),
    );
    await mkdir('/run/sshd', { recursive: true });
    if (beforeSshd) await beforeSshd(dir);
    await run('ip', ['netns', 'exec', netns, '/usr/sbin/sshd', '-f', join(dir, 'sshd_config'), '-E', join(dir, 'sshd.log')]);
    await waitFor(
      async () => (await readFile(join(dir, 'sshd.pid'), 'utf8').catch(() => '')) !== '',
      5000,
      'sshd pid file',
    );
  } catch (e) {
    await close();
    throw e;
  }
  return {
    netns,
    address,
    rootAddress,
    port,
    key: join(dir, 'client'),
    knownHosts: join(dir, 'known_hosts'),
    wrongKnownHosts: join(dir, 'wrong_known_hosts'),
    dir,
    close,
  };
}

export function hostConfig(name: string, lxcPath: string, stateDir: string, ssh: SshPeerFixture): HostConfig {
  return {
    name,
    address: ssh.address,
    sshPort: ssh.port,
    sshUser: 'root',
    lxcPath,
    sshKey: ssh.key,
    knownHosts: ssh.knownHosts,
    stateDir,
  };
}

export function peerOf(h: HostConfig): Peer {
  return { name: h.name, address: h.address, sshPort: h.sshPort, sshUser: h.sshUser, lxcPath: h.lxcPath };
}

export interface TestContext extends StepContext {
  progressLog: Progress[];
  abort: AbortController;
}

export function stepContext(host: HostConfig, runtime: Runtime): TestContext {
  const abort = new AbortController();
  const progressLog: Progress[] = [];
  return {
    host,
    runtime,
    log: pino({ level: process.env.FERRY_TEST_LOG ?? 'silent' }),
    progress: (p) => progressLog.push(p),
    peerInfo: async () => null,
    signal: abort.signal,
    progressLog,
    abort,
  };
}

/** A bridge in the root namespace (containers' lxc.net.0.link) plus a client namespace on it. */
export interface BridgeFixture {
  bridge: string;
  clientNs: string;
  clientIp: string;
  subnet: (host: number) => string;
  close(): Promise<void>;
}

export async function bridgeWithClient(octet: number): Promise<BridgeFixture> {
  const id = rand(3);
  const bridge = `fb${id}`;
  const clientNs = `test-c${id}`;
  const v1 = `fc${id}`;
  const v2 = `fd${id}`;
  const subnet = (h: number) => `198.18.${octet}.${h}`;
  const close = async () => {
    await run('ip', ['link', 'del', v1]).catch(() => undefined);
    await run('ip', ['netns', 'del', clientNs]).catch(() => undefined);
    await run('ip', ['link', 'del', bridge]).catch(() => undefined);
  };
  try {
    await run('ip', ['link', 'add', bridge, 'type', 'bridge']);
    await run('ip', ['link', 'set', bridge, 'up']);
    await run('ip', ['netns', 'add', clientNs]);
    await run('ip', ['link', 'add', v1, 'type', 'veth', 'peer', 'name', v2]);
    await run('ip', ['link', 'set', v2, 'netns', clientNs]);
    await run('ip', ['link', 'set', v1, 'master', bridge]);
    await run('ip', ['link', 'set', v1, 'up']);
    await run('ip', ['-n', clientNs, 'link', 'set', v2, 'name', 'eth0']);
    await run('ip', ['-n', clientNs, 'addr', 'add', `${subnet(10)}/24`, 'dev', 'eth0']);
    await run('ip', ['-n', clientNs, 'link', 'set', 'eth0', 'up']);
    await run('ip', ['-n', clientNs, 'link', 'set', 'lo', 'up']);
  } catch (e) {
    await close();
    throw e;
  }
  return { bridge, clientNs, clientIp: subnet(10), subnet, close };
}

/** A tree with everything a container rootfs may hold. */
export async function buildTree(root: string): Promise<void> {
  await mkdir(join(root, 'a/b'), { recursive: true });
  await mkdir(join(root, 'empty'));
  await writeFile(join(root, 'a/f1'), 'hello\n');
  await link(join(root, 'a/f1'), join(root, 'a/b/f1link'));
  await link(join(root, 'a/f1'), join(root, 'third-link'));
  await symlink('../f1', join(root, 'a/b/sym'));
  await lchown(join(root, 'a/b/sym'), 1234, 5678);
  await symlink('/does/not/exist', join(root, 'dangling'));
  await run('setfattr', ['-n', 'user.test', '-v', 'val1', join(root, 'a/f1')]);
  await run('setfattr', ['-n', 'trusted.x', '-v', '0xdead', join(root, 'a/b')]);
  await run('setfacl', ['-m', 'u:1234:rw', join(root, 'a/f1')]);
  await writeFile(join(root, 'suid'), '#!/bin/sh\n');
  await chmod(join(root, 'suid'), 0o4755);
  await writeFile(join(root, 'owned'), 'x');
  await chown(join(root, 'owned'), 4321, 8765);
  // 64 MiB sparse file with one byte of data in the middle and one at the end.
  const fh = await open(join(root, 'sparse'), 'w');
  await fh.write('x', 32 * 1024 * 1024);
  await fh.truncate(64 * 1024 * 1024);
  await fh.close();
  await writeFile(join(root, 'random'), randomBytes(1024 * 1024));
  await run('mknod', [join(root, 'null'), 'c', '1', '3']);
  await run('mknod', [join(root, 'loopx'), 'b', '7', '200']);
  await run('mkfifo', [join(root, 'fifo')]);
  await writeFile(join(root, 'name with space'), '1');
  await writeFile(join(root, 'new\nline'), '2');
  await writeFile(join(root, 'back\\slash'), '3');
  await writeFile(Buffer.concat([Buffer.from(`${root}/bad-`), Buffer.from([0xff, 0xfe])]), '4');
  await run('setfattr', ['-n', 'user.k', '-v', 'v', join(root, 'new\nline')]);
  await run('setfattr', ['-n', 'user.k', '-v', 'w', join(root, 'back\\slash')]);
  // Named like rsync's partial dir: the container's own, so it must arrive like any other.
  await mkdir(join(root, '.ferry-partial'));
  await writeFile(join(root, '.ferry-partial/junk'), 'junk');
}


/**
 * Two hosts for step tests: own LXC paths and state dirs under `base`, a peer sshd, a bridge with a
 * client. `extraDirs` are made under `base` and are both hosts' mount roots (bind sources allowed).
 */
export interface TwoHosts {
  ssh: SshPeerFixture;
  net: BridgeFixture;
  base: string;
  hostA: HostConfig;
  hostB: HostConfig;
  ctxA: TestContext;
  ctxB: TestContext;
  close(): Promise<void>;
}

export async function twoHosts(sshOctet: number, bridgeOctet: number, prefix: string, extraDirs: string[] = []): Promise<TwoHosts> {
  const ssh = await sshPeer(sshOctet);
  const net = await bridgeWithClient(bridgeOctet);
  const base = await tempDir(prefix);
  for (const d of ['a/lxc', 'a/state', 'b/lxc', 'b/state', ...extraDirs]) await mkdir(join(base, d), { recursive: true });
  const mountRoots = extraDirs.map((d) => join(base, d));
  const hostA = { ...hostConfig('hostA', join(base, 'a/lxc'), join(base, 'a/state'), ssh), mountRoots };
  const hostB = { ...hostConfig('hostB', join(base, 'b/lxc'), join(base, 'b/state'), ssh), mountRoots };
  return {
    ssh,
    net,
    base,
    hostA,
    hostB,
    ctxA: stepContext(hostA, new LxcRuntime({ lxcPath: hostA.lxcPath, mountRoots, protectedDirs: [hostA.stateDir] })),
    ctxB: stepContext(hostB, new LxcRuntime({ lxcPath: hostB.lxcPath, mountRoots, protectedDirs: [hostB.stateDir] })),
    close: async () => {
      await removeLxcPath(join(base, 'a/lxc'));
      await removeLxcPath(join(base, 'b/lxc'));
      await removeLxcPath(base);
      await net.close();
      await ssh.close();
    },
  };
}

/** Runs a step as the worker does: its input parsed by the step's schema first. */
export const callStep = <N extends StepName>(name: N, ctx: TestContext, input: unknown) =>
  (steps[name] as (c: TestContext, i: StepInput<N>) => Promise<unknown>)(ctx, catalogue[name].input.parse(input) as StepInput<N>) as Promise<Record<string, unknown>>;

/** What a promise rejects with, or undefined if it resolves. */
export const rejection = (p: Promise<unknown>) => p.then(() => undefined, (e: unknown) => e as Record<string, unknown>);
