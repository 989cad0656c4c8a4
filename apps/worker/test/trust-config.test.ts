/**
 * Unit tier (no root): what a target accepts of a peer's LXC config (config-policy.ts) and which
 * host directories may be shared (mount-roots.ts), on fixtures in temporary dirs.
 */
import { mkdir, mkdtemp, rm, symlink } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { screenConfig, type ScreenContext } from '../src/runtime/config-policy.js';
import { checkBindSource, mountRootProblems, splitMountRoots } from '../src/runtime/mount-roots.js';
import { bindEntryValue } from '../src/runtime/lxc-mounts.js';
import { parseHostConfig } from '../src/config-parse.js';

let base: string;
let c: ScreenContext;
let shared: string;

beforeAll(async () => {
  base = await mkdtemp(join(tmpdir(), 'ferry-trust-'));
  shared = join(base, 'shared');
  const dir = join(base, 'lxc', 'web');
  await mkdir(join(dir, 'rootfs'), { recursive: true });
  await mkdir(join(dir, 'data'));
  await mkdir(join(shared, 'sub'), { recursive: true });
  await symlink('/etc', join(shared, 'etc-link'));
  await symlink('/', join(dir, 'escape'));
  c = { containerDir: dir, rootfs: join(dir, 'rootfs'), policy: { roots: [shared], lxcPath: join(base, 'lxc'), protectedDirs: [join(base, 'state')] } };
});

afterAll(async () => {
  await rm(base, { recursive: true, force: true });
});

/** What `lxc-create -t busybox` writes on Debian 12 (LXC 5.0.2, /etc/lxc/default.conf included). */
const busyboxTemplate = (dir: string) => `# Template used to create this container: /usr/share/lxc/templates/lxc-busybox
# Parameters passed to the template:
#lxc.include = /usr/share/lxc/config/nesting.conf
lxc.net.0.type = veth
lxc.net.0.link = lxcbr0
lxc.net.0.flags = up
lxc.apparmor.profile = generated
lxc.apparmor.allow_nesting = 1
lxc.rootfs.path = dir:${dir}/rootfs
lxc.signal.halt = SIGUSR1
lxc.signal.reboot = SIGTERM
lxc.uts.name = "bb"
lxc.autodev = 1
lxc.tty.max = 5
lxc.pty.max = 1
lxc.cap.drop = sys_module mac_admin mac_override sys_time

#lxc.apparmor.profile = unconfined

lxc.mount.auto = cgroup:mixed proc:mixed sys:ro
lxc.mount.entry = shm dev/shm tmpfs defaults,create=dir 0 0
lxc.mount.entry = mqueue dev/mqueue mqueue defaults,optional,create=dir 0 0
lxc.mount.entry = /lib lib none ro,bind 0 0
lxc.mount.entry = /usr/lib usr/lib none ro,bind 0 0
lxc.mount.entry = /lib64 lib64 none ro,bind 0 0
lxc.mount.entry = /usr/lib64 usr/lib64 none ro,bind 0 0
lxc.mount.entry = /sys/kernel/security sys/kernel/security none ro,bind,optional 0 0
`;

/** The lab's containers (apps/lab container.ts: seedConfig, criuFriendly) and an image's. */
const labConfig = (dir: string) => `lxc.include = /usr/share/lxc/config/common.conf
lxc.rootfs.path = dir:${dir}/rootfs
lxc.uts.name = web
lxc.net.0.type = veth
lxc.net.0.link = ferrybr0
lxc.net.0.flags = up
lxc.net.0.name = eth0
lxc.net.0.hwaddr = 02:00:c6:12:00:10
lxc.net.0.ipv4.address = 198.18.0.10/15
lxc.sysctl.net.ipv6.conf.all.disable_ipv6 = 1
lxc.sysctl.net.ipv6.conf.default.disable_ipv6 = 1
lxc.start.auto = 0
lxc.tty.max = 0
lxc.console.path = none
`;

describe('screenConfig: a peer config on its way to being started here', () => {
  it("accepts LXC's busybox template, the lab's configs, the tests' own; unchanged", async () => {
    for (const text of [busyboxTemplate(c.containerDir), labConfig(c.containerDir)]) {
      expect(await screenConfig(text, c)).toEqual({ text, dropped: [] });
    }
    const own = [
      `lxc.rootfs.path = ${c.rootfs}`,
      'lxc.init.cmd = /bin/sh /init.sh',
      `lxc.log.file = ${c.containerDir}/lxc.log`,
      'lxc.log.level = WARN',
      `lxc.mount.entry = ${shared}/sub mnt/shared none bind,create=dir,nosuid,nodev,ro 0 0`,
      `lxc.mount.entry = ${c.containerDir}/data srv/data none bind,create=dir 0 0`,
      'lxc.mount.entry = tmpfs dev/shm tmpfs rw,create=dir,size=64m 0 0',
      'lxc.cgroup2.memory.max = 256M',
      'lxc.cgroup.devices.allow = c 10:200 rwm',
      'lxc.cgroup2.devices.allow = c *:* m',
      'lxc.include = /usr/share/lxc/config/common.conf.d/',
      '',
    ].join('\n');
    expect(await screenConfig(own, c)).toEqual({ text: own, dropped: [] });
  });

  it('refuses what reaches outside the container, naming the line and the key', async () => {
    const refused: Array<[string, RegExp]> = [
      ['lxc.hook.pre-start = /bin/true', /hooks run programs on the host/],
      ['lxc.hook.version = 1', /hooks/],
      ['lxc.net.0.script.up = /bin/true', /network scripts/],
      ['lxc.net.0.type = phys', /phys would take a host NIC/],
      ['lxc.include = /tmp/evil.conf', /outside \/usr\/share\/lxc\/config/],
      ['lxc.include = /usr/share/lxc/config/../../../../tmp/evil.conf', /not a plain absolute path/],
      ['lxc.mount.fstab = /etc/fstab', /not a key ferry accepts/],
      ['lxc.mount.entry = / mnt none rbind,create=dir 0 0', /host's root/],
      ['lxc.mount.entry = /root/.ssh mnt none bind,create=dir 0 0', /lies in \/root/],
      ['lxc.mount.entry = /etc/shadow mnt none bind,create=file 0 0', /lies in \/etc/],
      ['lxc.mount.entry = /lib lib none bind 0 0', /only be bound read-only/],
      ['lxc.mount.entry = SHARED/etc-link mnt none bind,create=dir 0 0', /resolves to \/etc/],
      ['lxc.mount.entry = DIR/escape mnt none bind,create=dir 0 0', /host's root/],
      ['lxc.mount.entry = LXC/other/rootfs mnt none bind,create=dir 0 0', /lies in the LXC path/],
      ['lxc.mount.entry = STATE mnt none bind,create=dir 0 0', /worker's own state/],
      ['lxc.mount.entry = /srv/data mnt none bind,create=dir,optional 0 0', /not under an allowed mount root/],
      ['lxc.mount.entry = /dev/sda1 mnt ext4 defaults 0 0', /file system ext4/],
      ['lxc.mount.entry = shm ../../etc tmpfs defaults 0 0', /holds '\.\.'/],
      ['lxc.mount.entry = shm /etc tmpfs defaults 0 0', /outside the container's rootfs/],
      ['lxc.rootfs.path = dir:/', /must be the container's own/],
      ['lxc.rootfs.path = LXC/other/rootfs', /must be the container's own/],
      ['lxc.rootfs.path = lvm:/dev/vg/web', /not a directory rootfs/],
      ['lxc.rootfs.mount = /', /not a key ferry accepts/],
      ['lxc.log.file = /etc/cron.d/x', /outside the container's dir/],
      ['lxc.console.logfile = /root/.bashrc', /outside the container's dir/],
      ['lxc.console.path = /dev/sda', /only none or auto/],
      ['lxc.sysctl.kernel.core_pattern = |/bin/sh', /not a key ferry accepts/],
      ['lxc.cgroup.devices.allow = a', /device access a/],
      ['lxc.cgroup2.devices.allow = b 8:* rwm', /device access b 8:\* rwm/],
      ['lxc.cgroup2.devices.allow = c 1:1 rwm', /device access c 1:1 rwm/],
      ['lxc.cgroup.dir = ../../system.slice', /not a key ferry accepts/],
      ['lxc.cgroup.dir.container = ../../system.slice', /placed by the host/],
      ['lxc.namespace.keep = mount', /not a key ferry accepts/],
      ['lxc.namespace.share.net = 1', /not a key ferry accepts/],
      ['lxc.seccomp.notify.proxy = unix:/run/x', /not a key ferry accepts/],
      ['no equals sign here', /not a key = value line/],
    ];
    for (const [raw, why] of refused) {
      const line = raw
        .replace('SHARED', shared)
        .replace('DIR', c.containerDir)
        .replace('LXC', c.policy.lxcPath)
        .replace('STATE', c.policy.protectedDirs[0]!);
      const text = `lxc.uts.name = web\n# a comment\n${line}\n`;
      const e = await screenConfig(text, c).then(() => undefined, (err: unknown) => err as { code: string; message: string });
      expect(e, line).toMatchObject({ code: 'CONFIG_NOT_ALLOWED' });
      const key = line.includes('=') ? line.slice(0, line.indexOf('=')).trim() : line;
      expect(e!.message, line).toContain(`config line 3 (${key})`);
      expect(e!.message, line).toMatch(why);
    }
  });

  it('drops what only loosens confinement (the host default applies), as comments; idempotent', async () => {
    const text = ['lxc.uts.name = web', 'lxc.apparmor.profile = unconfined', 'lxc.apparmor.raw = mount,', 'lxc.seccomp.profile = /tmp/allow-all', 'lxc.apparmor.profile = generated', ''].join('\n');
    const r = await screenConfig(text, c);
    expect(r.dropped).toHaveLength(3);
    expect(r.dropped[0]).toMatch(/^config line 2 dropped: lxc\.apparmor\.profile = unconfined/);
    expect(r.text.split('\n')).toEqual([
      'lxc.uts.name = web',
      '# ferry: dropped, not accepted from a peer (an unconfined AppArmor profile (the host default applies)): lxc.apparmor.profile = unconfined',
      '# ferry: dropped, not accepted from a peer (lxc.apparmor.raw loosens AppArmor (the host default applies)): lxc.apparmor.raw = mount,',
      '# ferry: dropped, not accepted from a peer (a seccomp policy from outside /usr/share/lxc/config (the host default applies)): lxc.seccomp.profile = /tmp/allow-all',
      'lxc.apparmor.profile = generated',
      '',
    ]);
    expect(await screenConfig(r.text, c)).toEqual({ text: r.text, dropped: [] });
  });
});

describe('mount roots: which host directories may be shared', () => {
  it('refuses roots that are /, system trees, the LXC path or the state dir, or hold them', () => {
    expect(mountRootProblems(['/srv/ferry-shared', '/data/shares'], '/var/lib/lxc', ['/var/lib/ferry/worker/h1'])).toEqual([]);
    const p = mountRootProblems(['/', '/etc', '/root/.ssh', '/proc/1', '/var', '/var/lib/lxc/web', '/var/lib/ferry', 'rel', '/a/../b'], '/var/lib/lxc', ['/var/lib/ferry/worker/h1']);
    expect(p).toEqual([
      'mount root / would share the whole host',
      'mount root /etc overlaps /etc',
      'mount root /root/.ssh overlaps /root',
      'mount root /proc/1 overlaps /proc',
      'mount root /var overlaps /var/lib/lxc (the LXC path: other containers)',
      'mount root /var/lib/lxc/web overlaps /var/lib/lxc (the LXC path: other containers)',
      'mount root /var/lib/ferry overlaps /var/lib/ferry/worker/h1',
      'mount root rel is not a normalized absolute path',
      'mount root /a/../b is not a normalized absolute path',
    ]);
    expect(splitMountRoots('/srv/a:/srv/b, /srv/c')).toEqual(['/srv/a', '/srv/b', '/srv/c']);
    expect(splitMountRoots(['/srv/a', '/srv/b:/srv/c'])).toEqual(['/srv/a', '/srv/b', '/srv/c']);
    expect(splitMountRoots(undefined)).toEqual([]);
  });

  it('checks a source on its real path: below a root yes; a link out of it, or no roots at all, no', async () => {
    expect(await checkBindSource(join(shared, 'sub'), c.policy)).toEqual({ real: join(shared, 'sub'), refused: null });
    expect(await checkBindSource(`${shared}/sub/../sub`, c.policy)).toEqual({ real: join(shared, 'sub'), refused: null });
    expect((await checkBindSource(join(shared, 'etc-link'), c.policy)).refused).toMatch(/lies in \/etc/);
    expect((await checkBindSource(`${shared}/../lxc/web/rootfs`, c.policy)).refused).toMatch(/lies in the LXC path/);
    expect((await checkBindSource(join(shared, 'sub'), { ...c.policy, roots: [] })).refused).toMatch(/no mount roots are allowed on this host \(ferry worker --mount-root DIR, or FERRY_MOUNT_ROOTS\)/);
  });

  it('the worker reads them from --mount-root or FERRY_MOUNT_ROOTS and refuses to start on a bad one', () => {
    const env = { FERRY_HOST: 'h1', FERRY_ADDRESS: '10.0.0.1', HOME: '/root', FERRY_STATE_DIR: '/var/lib/ferry' };
    expect(parseHostConfig({}, env).mountRoots).toBeUndefined();
    expect(parseHostConfig({}, { ...env, FERRY_MOUNT_ROOTS: '/srv/a:/srv/b' }).mountRoots).toEqual(['/srv/a', '/srv/b']);
    expect(parseHostConfig({ mountRoot: ['/srv/c'] }, { ...env, FERRY_MOUNT_ROOTS: '/srv/a' }).mountRoots).toEqual(['/srv/c']);
    expect(() => parseHostConfig({ mountRoot: ['/'] }, env)).toThrow(/mountRoots: mount root \/ would share the whole host/);
    expect(() => parseHostConfig({ mountRoot: ['/var/lib'] }, env)).toThrow(/overlaps \/var\/lib\/lxc/);
  });

  it('a bind mount line is always nosuid,nodev', () => {
    expect(bindEntryValue('/srv/a', '/mnt/a', false)).toBe('/srv/a mnt/a none bind,create=dir,nosuid,nodev 0 0');
    expect(bindEntryValue('/srv/a', '/mnt/a', true)).toBe('/srv/a mnt/a none bind,create=dir,nosuid,nodev,ro 0 0');
  });
});
