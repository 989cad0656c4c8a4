/**
 * A copy's LXC config comes from a peer and is not trusted: restore and clone-identity screen it
 * (config-policy.ts) before anything of it runs here. Real LXC: each hostile config is refused
 * with CONFIG_NOT_ALLOWED naming its line, the copy stays STOPPED and nothing ran on the host;
 * legitimate configs (the tests' own, a shared dir from a mount root) still start.
 */
import { mkdir, readFile, rm, stat, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import type { Peer } from '@ferry/core';
import type { HostConfig } from '../src/config.js';
import { LxcRuntime } from '../src/runtime/lxc.js';
import { callStep, lxcState, makeContainer, rand, rejection, removeLxcPath, stepContext, tempDir, type TestContext } from './helpers.js';

vi.setConfig({ testTimeout: 60_000, hookTimeout: 60_000 });

describe('a copy whose config came from a peer', () => {
  let base: string;
  let lxcPath: string;
  let shared: string;
  let sentinel: string;
  let ctx: TestContext;
  /** The peer the copy came from: its paths are in the copied config. */
  const source: Peer = { name: 'hostA', address: '127.0.0.1', sshPort: 22, sshUser: 'root', lxcPath: '/var/lib/ferry-test-peer/lxc' };

  beforeAll(async () => {
    base = await tempDir('ferry-peer-config-');
    lxcPath = join(base, 'lxc');
    shared = join(base, 'shared');
    sentinel = join(base, 'pwned');
    for (const d of [lxcPath, shared, join(base, 'state')]) await mkdir(d, { recursive: true });
    const host: HostConfig = {
      name: 'hostB',
      address: '127.0.0.1',
      sshPort: 22,
      sshUser: 'root',
      lxcPath,
      sshKey: '/nonexistent',
      knownHosts: '/nonexistent',
      stateDir: join(base, 'state'),
      mountRoots: [shared],
    };
    ctx = stepContext(host, new LxcRuntime({ lxcPath, mountRoots: [shared], protectedDirs: [host.stateDir] }));
    // Another container on this host: its files are no peer's to mount.
    await makeContainer(lxcPath, 'other');
  });

  afterAll(async () => {
    await removeLxcPath(lxcPath);
    await rm(base, { recursive: true, force: true });
  });

  /** A container dir as a migration's rsync leaves it: the source's paths in its config, the marker. */
  async function arrived(extra: string[], migrationId: string): Promise<string> {
    const name = `pc-${rand()}`;
    const dir = await makeContainer(lxcPath, name, { extra });
    const cfg = join(dir, 'config');
    await writeFile(cfg, (await readFile(cfg, 'utf8')).split(dir).join(`${source.lxcPath}/${name}`));
    await writeFile(join(dir, '.ferry-migration'), `${migrationId}\n`);
    return name;
  }

  const restore = (name: string, migrationId: string) =>
    callStep('restore', ctx, { migrationId, container: name, epoch: 1, source, method: 'stop', start: true });

  const hostile = (): Array<[string, string[]]> => [
    ['a hook (runs a program on the host as root)', [`lxc.hook.pre-start = /bin/sh -c "touch ${sentinel}"`]],
    ['a network script', [`lxc.net.0.script.up = /bin/sh -c "touch ${sentinel}"`]],
    ['an include from outside the system config dir', [`lxc.include = ${join(base, 'evil.conf')}`]],
    ['a bind mount of host /', ['lxc.mount.entry = / mnt/host none rbind,create=dir 0 0']],
    ['a bind mount of /root/.ssh', ['lxc.mount.entry = /root/.ssh mnt/ssh none bind,create=dir,optional 0 0']],
    ["a bind mount of another container's rootfs", ['lxc.mount.entry = LXC/other/rootfs mnt/other none bind,create=dir 0 0']],
    ['a bind mount of a link in its own dir that leads to /', ['lxc.mount.entry = SRC/escape mnt/x none bind,create=dir 0 0']],
    ["another container's rootfs as its own", ['lxc.rootfs.path = dir:LXC/other/rootfs']],
    ['a log file outside its dir', [`lxc.log.file = ${join(base, 'state', 'worker.json')}`]],
    ['a host-wide sysctl', [`lxc.sysctl.kernel.core_pattern = |/bin/sh -c "touch ${sentinel}"`]],
    ['block devices of the host', ['lxc.cgroup2.devices.allow = b 8:* rwm']],
    ['a block device mounted', ['lxc.mount.entry = /dev/sda1 mnt/disk ext4 defaults,create=dir 0 0']],
    ["the host's network namespace (PID 1's) joined", ['lxc.namespace.share.net = 1']],
  ];

  it('refuses every hostile config before it starts: CONFIG_NOT_ALLOWED naming line and key; nothing ran, nothing mounted', async () => {
    await writeFile(join(base, 'evil.conf'), `lxc.hook.pre-start = /bin/sh -c "touch ${sentinel}"\n`);
    for (const [what, extra] of hostile()) {
      const mid = `m-${rand()}`;
      const fill = (l: string) => l.replace('LXC/', `${lxcPath}/`);
      const name = await arrived(extra.map(fill), mid);
      const dir = join(lxcPath, name);
      // The copy's own link out (SRC: its dir as the source named it; the rewrite makes it this one).
      await symlink('/', join(dir, 'escape'));
      const cfg = join(dir, 'config');
      await writeFile(cfg, (await readFile(cfg, 'utf8')).split('SRC/').join(`${source.lxcPath}/${name}/`));
      const before = await readFile(cfg, 'utf8');
      const e = await rejection(restore(name, mid));
      expect(e, what).toMatchObject({ code: 'CONFIG_NOT_ALLOWED', retryable: false });
      const key = extra[0]!.split('=')[0]!.trim();
      const line = before.split('\n').map((l, i) => (l.startsWith(`${key} `) ? i + 1 : 0)).reduce((a, b) => Math.max(a, b), 0);
      expect(String(e?.message), what).toContain(`config line ${line} (${key})`);
      expect(await lxcState(lxcPath, name), what).toBe('STOPPED');
      expect(await readFile(cfg, 'utf8'), `${what}: config left as it came`).toBe(before);
      await expect(stat(sentinel), `${what}: nothing ran on the host`).rejects.toThrow();
    }
  });

  it("starts a legitimate copy: its own files, a shared dir from a mount root; an unconfined AppArmor profile dropped (commented, the host's default applies)", async () => {
    const mid = `m-${rand()}`;
    await writeFile(join(shared, 'note'), 'shared\n');
    const name = await arrived(
      [
        `lxc.mount.entry = ${shared} mnt/shared none bind,create=dir,nosuid,nodev,ro 0 0`,
        `lxc.mount.entry = ${source.lxcPath}/NAME/data srv/data none bind,create=dir 0 0`,
        'lxc.mount.entry = shm dev/shm tmpfs defaults,create=dir 0 0',
        'lxc.mount.entry = /sys/kernel/security sys/kernel/security none ro,bind,optional 0 0',
      ],
      mid,
    );
    const dir = join(lxcPath, name);
    const cfg = join(dir, 'config');
    await writeFile(cfg, (await readFile(cfg, 'utf8')).replace('NAME', name));
    await mkdir(join(dir, 'data'));
    expect(await readFile(cfg, 'utf8')).toContain('lxc.apparmor.profile = unconfined');
    const out = await restore(name, mid);
    expect(out).toMatchObject({ running: true });
    expect(await lxcState(lxcPath, name)).toBe('RUNNING');
    const after = await readFile(cfg, 'utf8');
    expect(after).toMatch(/^# ferry: dropped, not accepted from a peer \(an unconfined AppArmor profile .*\): lxc\.apparmor\.profile = unconfined$/m);
    expect(after).not.toMatch(/^lxc\.apparmor\.profile/m);
    expect(after).toContain(`lxc.mount.entry = ${dir}/data srv/data`);
    const pid = (out as { pid: number }).pid;
    expect(await readFile(`/proc/${pid}/root/mnt/shared/note`, 'utf8')).toBe('shared\n');
    // LXC applied nosuid,nodev,ro to the shared dir.
    const line = (await readFile(`/proc/${pid}/mountinfo`, 'utf8')).split('\n').find((l) => l.split(' ')[4] === '/mnt/shared');
    expect(line?.split(' ')[5]?.split(',')).toEqual(expect.arrayContaining(['ro', 'nosuid', 'nodev']));
    await ctx.runtime.stop(name);
  });

  it('clone-identity screens the copy the same way', async () => {
    const mid = `m-${rand()}`;
    const name = await arrived([`lxc.hook.start-host = /bin/sh -c "touch ${sentinel}"`], mid);
    const e = await rejection(
      callStep('clone-identity', ctx, { migrationId: mid, container: name, epoch: 1, name, source, hostname: name, mac: '02:00:00:aa:bb:cc', start: true }),
    );
    expect(e).toMatchObject({ code: 'CONFIG_NOT_ALLOWED' });
    expect(String(e?.message)).toContain('(lxc.hook.start-host)');
    expect(await lxcState(lxcPath, name)).toBe('STOPPED');
    await expect(stat(sentinel)).rejects.toThrow();
  });
});
