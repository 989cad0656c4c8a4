import { describe, expect, it } from 'vitest';
import { bindMountSources, parseConfig } from '../src/runtime/lxc-config.js';
import { bindEntryValue, containerTarget, escapeField, mountLines, withBindEntry, withoutLines } from '../src/runtime/lxc-mounts.js';
import { mountPoints } from '../src/runtime/live-mount.js';
import { pgrpOfStat } from '../src/exec/process-group.js';
import { attachArgs } from '../src/runtime/lxc.js';

const ROOTFS = '/var/lib/lxc/web/rootfs';
const CONFIG = `# Template used to create this container: /usr/share/lxc/templates/lxc-busybox
lxc.rootfs.path = dir:${ROOTFS}
lxc.mount.entry = shm dev/shm tmpfs defaults,create=dir 0 0
lxc.mount.entry = /lib lib none ro,bind 0 0
lxc.mount.entry = /sys/kernel/security sys/kernel/security none ro,bind,optional 0 0
`;

describe('bind mount entries in an LXC config', () => {
  it('formats an entry LXC reads (relative target, create=dir, always nosuid,nodev, ro when asked, fstab escapes)', () => {
    expect(bindEntryValue('/srv/share', '/mnt/share', false)).toBe('/srv/share mnt/share none bind,create=dir,nosuid,nodev 0 0');
    expect(bindEntryValue('/srv/share', '/mnt/share', true)).toBe('/srv/share mnt/share none bind,create=dir,nosuid,nodev,ro 0 0');
    expect(bindEntryValue('/srv/my share', '/mnt/a\\b', false)).toBe('/srv/my\\040share mnt/a\\134b none bind,create=dir,nosuid,nodev 0 0');
    expect(escapeField('a\tb')).toBe('a\\011b');
  });

  it('appends an entry that the migration preflight picks up, and removes it again', () => {
    const text = withBindEntry(CONFIG, '/srv/my share', '/mnt/share', true);
    expect(text.endsWith('lxc.mount.entry = /srv/my\\040share mnt/share none bind,create=dir,nosuid,nodev,ro 0 0\n')).toBe(true);
    expect(bindMountSources(parseConfig(text), '/var/lib/lxc/web')).toEqual(['/lib', '/srv/my share']);
    const m = mountLines(text, ROOTFS);
    expect(m.map((x) => [x.target, x.bind])).toEqual([
      ['/dev/shm', false],
      ['/lib', true],
      ['/sys/kernel/security', true],
      ['/mnt/share', true],
    ]);
    expect(m[3]!.entry).toMatchObject({ source: '/srv/my share', options: ['bind', 'create=dir', 'nosuid', 'nodev', 'ro'] });
    expect(withoutLines(text, [m[3]!.line])).toBe(CONFIG);
    expect(withBindEntry('lxc.uts.name = x', '/a', '/b', false)).toBe('lxc.uts.name = x\nlxc.mount.entry = /a b none bind,create=dir,nosuid,nodev 0 0\n');
  });

  it('reads targets as LXC does: relative below the rootfs, absolute inside it', () => {
    expect(containerTarget('mnt/share/', ROOTFS)).toBe('/mnt/share');
    expect(containerTarget('./mnt//x', ROOTFS)).toBe('/mnt/x');
    expect(containerTarget(`${ROOTFS}/mnt/x`, ROOTFS)).toBe('/mnt/x');
    expect(containerTarget('/elsewhere/x', ROOTFS)).toBeUndefined();
  });

  it('mount points from mountinfo, unescaped', () => {
    const info = [
      '95 52 254:0 /var/lib/lxc/web/rootfs / rw,relatime shared:13 - ext4 /dev/vda rw',
      '44 95 254:0 /srv/my\\040share /mnt/my\\040share ro,relatime shared:2 - ext4 /dev/vda rw',
      '',
    ].join('\n');
    expect(mountPoints(info)).toEqual(['/', '/mnt/my share']);
  });
});

describe('exec helpers', () => {
  it('process group from /proc/<pid>/stat, whatever the command name holds', () => {
    expect(pgrpOfStat('1234 (sleep) S 1200 1201 1201 0 -1 4194560 ...')).toBe(1201);
    expect(pgrpOfStat('1234 (a b) c)) R 1 77 77 0')).toBe(77);
    expect(pgrpOfStat('garbage')).toBeUndefined();
  });

  it('lxc-attach gets the command after --, the environment cleared', () => {
    expect(attachArgs('/var/lib/lxc', 'web', ['ls', '-l', '--', 'x y'])).toEqual([
      '-P', '/var/lib/lxc', '-n', 'web', '--clear-env', '-v', 'PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin', '-v', 'HOME=/root', '--', 'ls', '-l', '--', 'x y',
    ]);
  });
});
