import { mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { CommandError } from '@ferry/core';
import { bindMountSources, parseConfig, parseMountEntry, rewritePaths, rootfsPathOf } from '../src/runtime/lxc-config.js';
import { criuReason, parseLxcInfo } from '../src/runtime/lxc.js';
import { freezeCgroup, freezerDirOf, probeFreezer } from '../src/runtime/freezer.js';
import { parseProgress2Line, parseRsyncStats, transferProgress } from '../src/transfer/rsync.js';
import { classifyRsyncError, onlySourceChanged } from '../src/transfer/rsync-errors.js';
import { rsyncArgs } from '../src/transfer/rsync-flags.js';
import { keepInside } from '../src/transfer/change-tracker.js';
import { rsyncRemoteShell } from '../src/transfer/ssh.js';
import { deviceHolding } from '../src/net/gratuitous-arp.js';
import { requiredFreeBytes } from '../src/steps/preflight.js';
import { contextCgroupRoots } from '../src/exec/context-cgroup.js';
import { contextArgs } from '../src/exec/fresh-context.js';

const fail = (exitCode: number | null, stderrTail: string, extra: Partial<{ timedOut: boolean; signal: string }> = {}) =>
  new CommandError({ command: ['rsync'], exitCode, signal: extra.signal ?? null, timedOut: extra.timedOut ?? false, stderrTail });

describe('lxc config', () => {
  const text = [
    '# comment lxc.rootfs.path = dir:/old/c/rootfs',
    'lxc.rootfs.path = dir:/old/c/rootfs',
    'lxc.log.file = /old/c/lxc.log',
    'lxc.mount.entry = /old/c/data srv none bind 0 0',
    'lxc.mount.entry = /srv/shared\\040dir mnt/shared none bind,create=dir 0 0',
    'lxc.mount.entry = /sys/kernel/security sys/kernel/security none ro,bind,optional 0 0',
    'lxc.mount.entry = shm dev/shm tmpfs defaults,create=dir 0 0',
    'lxc.mount.entry = /old/c2/x y none bind 0 0',
    'lxc.net.0.hwaddr = 02:00:00:00:00:01',
  ].join('\n');

  it('parses keys and rootfs paths', () => {
    const lines = parseConfig(text);
    expect(lines[0]).toEqual({ key: 'lxc.rootfs.path', value: 'dir:/old/c/rootfs' });
    expect(rootfsPathOf('dir:/x/rootfs')).toBe('/x/rootfs');
    expect(rootfsPathOf('/x/rootfs')).toBe('/x/rootfs');
    expect(rootfsPathOf('overlay:/a:/b')).toBeUndefined();
    expect(parseMountEntry('/a\\040b c none bind,ro 0 0')).toEqual({ source: '/a b', target: 'c', fstype: 'none', options: ['bind', 'ro'] });
  });

  it('bind-mount sources: absolute, outside the container dir, not optional', () => {
    expect(bindMountSources(parseConfig(text), '/old/c')).toEqual(['/old/c2/x', '/srv/shared dir']);
  });

  it('rewrites whole path prefixes only, not comments, idempotently', () => {
    const out = rewritePaths(text, '/old/c', '/new/lxc/c');
    expect(out).toContain('lxc.rootfs.path = dir:/new/lxc/c/rootfs');
    expect(out).toContain('lxc.log.file = /new/lxc/c/lxc.log');
    expect(out).toContain('lxc.mount.entry = /new/lxc/c/data srv');
    expect(out).toContain('lxc.mount.entry = /old/c2/x y'); // /old/c2 is not /old/c
    expect(out).toContain('# comment lxc.rootfs.path = dir:/old/c/rootfs');
    expect(rewritePaths(out, '/old/c', '/new/lxc/c')).toBe(out);
    expect(rewritePaths(text, '/old/c', '/old/c')).toBe(text);
  });
});

describe('lxc and criu output', () => {
  it('lxc-info', () => {
    expect(parseLxcInfo('State:          RUNNING\nPID:            4549\n')).toEqual({ state: 'RUNNING', pid: 4549 });
    expect(parseLxcInfo('State:          STOPPED\n')).toEqual({ state: 'STOPPED' });
  });
  it('criu check reason: the first real error line', () => {
    const out = [
      'Error (criu/util.c:642): exited, status=1',
      'Error (criu/vdso.c:381): vdso: Unexpected rt vDSO area bounds',
      'Error (criu/vdso.c:613): vdso: Failed to fill self vdso symtable',
    ].join('\n');
    expect(criuReason(out)).toBe('vdso: Unexpected rt vDSO area bounds');
  });
  it('freezer probe: v1 controller, v2 cgroup.freeze, neither (fixtures, not this machine)', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'ferry-freezer-'));
    try {
      mkdirSync(join(dir, 'v1'));
      writeFileSync(join(dir, 'v1', 'tasks'), '');
      mkdirSync(join(dir, 'v2', 'child'), { recursive: true });
      writeFileSync(join(dir, 'v2', 'child', 'cgroup.freeze'), '0');
      mkdirSync(join(dir, 'empty'));
      const mounts = (lines: string[]) => {
        const f = join(dir, `mounts-${lines.length}-${Math.random()}`);
        writeFileSync(f, lines.join('\n') + '\n');
        return f;
      };
      const v1 = `cgroup ${join(dir, 'v1')} cgroup rw,nosuid,freezer 0 0`;
      const v2 = `cgroup2 ${join(dir, 'v2')} cgroup2 rw,nosuid 0 0`;
      const v2empty = `cgroup2 ${join(dir, 'empty')} cgroup2 rw 0 0`;
      expect(await probeFreezer(mounts([v2, v1]))).toEqual({ usable: true, kind: 'v1', mount: join(dir, 'v1') });
      expect(await probeFreezer(mounts([v2]))).toEqual({ usable: true, kind: 'v2', mount: join(dir, 'v2') });
      expect(await probeFreezer(mounts([v2empty]))).toEqual({ usable: false, kind: 'none' });
      expect(await probeFreezer('/nonexistent')).toEqual({ usable: false, kind: 'none' });
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('freezing through the cgroup', () => {
  it("finds the freezer cgroup from /proc/<pid>/cgroup, and never the hierarchy's root (fixtures)", async () => {
    const dir = mkdtempSync(join(tmpdir(), 'ferry-freeze-'));
    try {
      const v1 = join(dir, 'v1');
      mkdirSync(join(v1, 'lxc.payload.c1'), { recursive: true });
      writeFileSync(join(v1, 'lxc.payload.c1', 'freezer.state'), 'THAWED\n');
      writeFileSync(join(v1, 'freezer.state'), 'THAWED\n');
      const v2 = join(dir, 'v2');
      mkdirSync(join(v2, 'lxc.payload.c2'), { recursive: true });
      writeFileSync(join(v2, 'lxc.payload.c2', 'cgroup.freeze'), '0\n');
      const proc = join(dir, 'proc');
      const pid = (n: number, text: string) => {
        mkdirSync(join(proc, String(n)), { recursive: true });
        writeFileSync(join(proc, String(n), 'cgroup'), text);
      };
      pid(10, '7:pids:/x\n6:freezer:/lxc.payload.c1\n0::/\n');
      pid(11, '6:freezer:/\n0::/\n');
      pid(12, '6:freezer:/../../etc\n');
      pid(20, '0::/lxc.payload.c2\n');
      const p1 = { usable: true, kind: 'v1' as const, mount: v1 };
      const p2 = { usable: true, kind: 'v2' as const, mount: v2 };
      expect(await freezerDirOf(10, p1, proc)).toBe(join(v1, 'lxc.payload.c1'));
      expect(await freezerDirOf(11, p1, proc)).toBeUndefined();
      expect(await freezerDirOf(12, p1, proc)).toBeUndefined();
      expect(await freezerDirOf(99, p1, proc)).toBeUndefined();
      expect(await freezerDirOf(20, p2, proc)).toBe(join(v2, 'lxc.payload.c2'));
      expect(await freezerDirOf(20, { usable: false, kind: 'none' }, proc)).toBeUndefined();
      // A plain file stands in for freezer.state: what is written reads back, as FROZEN does once frozen.
      await freezeCgroup(join(v1, 'lxc.payload.c1'), 'v1', 1000);
      expect(readFileSync(join(v1, 'lxc.payload.c1', 'freezer.state'), 'utf8')).toBe('FROZEN');
      writeFileSync(join(v2, 'lxc.payload.c2', 'cgroup.events'), 'populated 1\nfrozen 0\n');
      await expect(freezeCgroup(join(v2, 'lxc.payload.c2'), 'v2', 50)).rejects.toThrow(/did not freeze/);
      expect(readFileSync(join(v2, 'lxc.payload.c2', 'cgroup.freeze'), 'utf8')).toBe('1');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('ferry run contexts', () => {
  const mounts = (...lines: string[]) => lines.map((l) => `${l} 0 0`).join('\n');
  it('cgroup: v1 memory and cpuacct hierarchies (also on hybrid hosts), else the unified one, else none (fixtures)', () => {
    const v1 = ['cgroup /sys/fs/cgroup/cpu,cpuacct cgroup rw,cpu,cpuacct', 'cgroup /sys/fs/cgroup/memory cgroup rw,memory', 'cgroup2 /sys/fs/cgroup/unified cgroup2 rw'];
    expect(contextCgroupRoots(mounts(...v1), 'h1')).toEqual([
      { kind: 'v1', dir: '/sys/fs/cgroup/memory/ferry-run/h1' },
      { kind: 'v1', dir: '/sys/fs/cgroup/cpu,cpuacct/ferry-run/h1' },
    ]);
    expect(contextCgroupRoots(mounts('cgroup2 /sys/fs/cgroup cgroup2 rw,nsdelegate'), 'h1')).toEqual([{ kind: 'v2', dir: '/sys/fs/cgroup/ferry-run/h1' }]);
    expect(contextCgroupRoots(mounts('proc /proc proc rw'), 'h1')).toEqual([]);
  });

  it('unshare: every namespace, the init script fixed, cgroups and the command as its parameters', () => {
    const args = contextArgs(['/cg/a', '/cg/b'], ['sh', '-c', 'echo "$1"', '$(id)']);
    expect(args.slice(0, args.indexOf('--'))).toEqual(expect.arrayContaining(['--pid', '--fork', '--kill-child', '--mount-proc', '--mount', '--uts', '--ipc', '--net']));
    const after = args.slice(args.indexOf('--') + 1);
    expect(after.slice(0, 2)).toEqual(['sh', '-c']);
    expect(after[2]).not.toContain('$(id)');
    expect(after.slice(3)).toEqual(['ferry-run', '2', '/cg/a', '/cg/b', 'sh', '-c', 'echo "$1"', '$(id)']);
  });
});

describe('a tracked pass stays inside the tree', () => {
  it('an entry reached through a directory that became a symlink is replaced by that symlink and its parent', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'ferry-inside-'));
    try {
      mkdirSync(join(dir, 'a/c'), { recursive: true });
      symlinkSync('/etc', join(dir, 'a/b'));
      symlinkSync('/etc', join(dir, 'top'));
      const out = await keepInside(dir, ['a/b/passwd', 'a/b/.', 'a/c/x', 'a/c/.', 'top/.', 'gone/y', '.']);
      expect(out.sort()).toEqual(['.', 'a/.', 'a/b', 'a/c/.', 'a/c/x', 'gone/y', 'top'].sort());
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('rsync output', () => {
  it('progress2 lines', () => {
    expect(parseProgress2Line('    104,857,606  99%  164.42MB/s    0:00:00 (xfr#2, to-chk=0/9)')).toEqual({
      bytes: 104857606,
      percent: 99,
      rate: '164.42MB/s',
      eta: '0:00:00',
      transferred: 2,
      toCheck: 0,
      total: 9,
    });
    expect(parseProgress2Line('         32768   0%    0.00kB/s    0:00:00  ')).toMatchObject({ bytes: 32768, percent: 0 });
    expect(parseProgress2Line('Number of files: 9')).toBeUndefined();
  });

  it('a pass that has moved no data yet reports the files it is scanning, not 0% at 0.00kB/s', () => {
    // rsync 3.x building its list (ir-chk grows) and a checksum pass comparing (to-chk): no byte sent.
    const building = parseProgress2Line('              0   0%    0.00kB/s    0:00:00 (xfr#0, ir-chk=1200/5251)')!;
    expect(transferProgress('precopy', 2, building)).toEqual({ stage: 'precopy', pass: 2, message: 'scanning 5251 files' });
    const comparing = parseProgress2Line('              0   0%    0.00kB/s    0:00:00 (xfr#0, to-chk=0/20050)')!;
    expect(transferProgress('final-sync', undefined, comparing)).toEqual({ stage: 'final-sync', message: 'scanning 20050 files' });
    expect(transferProgress('precopy', 1, parseProgress2Line('              0   0%    0.00kB/s    0:00:00  ')!)).toEqual({ stage: 'precopy', pass: 1, message: 'scanning' });
    // Once data moves, the bar.
    const moving = parseProgress2Line('         32,768   1%    3.91kB/s    0:00:00 (xfr#2, ir-chk=1598/1651)')!;
    expect(transferProgress('precopy', 1, moving)).toEqual({ stage: 'precopy', pass: 1, bytes: 32768, percent: 1, rate: '3.91kB/s' });
  });

  it('--stats', () => {
    const stats = [
      'Number of files: 9 (reg: 3, dir: 3, link: 1, dev: 1, special: 1)',
      'Number of created files: 9 (reg: 3, dir: 3, link: 1, dev: 1, special: 1)',
      'Number of deleted files: 2 (reg: 2)',
      'Number of regular files transferred: 3',
      'Total file size: 104,857,617 bytes',
      'Literal data: 104,857,606 bytes',
      'Matched data: 0 bytes',
      'Total bytes sent: 104,883,638',
      'Total bytes received: 106',
    ].join('\n');
    expect(parseRsyncStats(stats)).toEqual({ bytesSent: 104883638, literalBytes: 104857606, filesChanged: 5, totalFileSize: 104857617 });
    expect(() => parseRsyncStats('nothing')).toThrow();
  });

  it('flags and remote shell', () => {
    const args = rsyncArgs({ remoteShell: 'ssh -p 22', bwlimitKBps: 500, excludes: ['/.ferry-migration'], partialDir: '/lxc/.web.ferry-partial' });
    for (const f of ['-aHAX', '--numeric-ids', '--sparse', '--devices', '--specials', '--delete', '--partial', '--partial-dir=/lxc/.web.ferry-partial', '--info=progress2', '--stats', '--bwlimit=500', '--exclude=/.ferry-migration', '--modify-window=-1']) {
      expect(args).toContain(f);
    }
    expect(args).not.toContain('--inplace');
    expect(args).not.toContain('--checksum');
    // A relative partial dir would be excluded wherever a dir of that name stands in the tree.
    expect(() => rsyncArgs({ partialDir: '.ferry-partial' })).toThrow(/absolute/);
    expect(rsyncArgs({})).not.toContain('--partial');
    // A tracked pass: only the listed paths, content compared, listed-but-missing deleted.
    const tracked = rsyncArgs({ filesFrom: '/s/list', checksum: true });
    for (const f of ['--checksum', '--no-r', '--dirs', '--files-from=/s/list', '--from0', '--delete-missing-args']) expect(tracked).toContain(f);
    const shell = rsyncRemoteShell({ address: 'h', port: 2222, user: 'root', key: '/k ey', knownHosts: '/kh' });
    expect(shell).toBe(
      "ssh -F /dev/null -l root -i '/k ey' -p 2222 -o UserKnownHostsFile=/kh -o StrictHostKeyChecking=yes -o BatchMode=yes -o IdentitiesOnly=yes -o ConnectTimeout=5 -o ServerAliveInterval=5 -o ServerAliveCountMax=3",
    );
  });
});

describe('rsync exit classification', () => {
  const where = { peer: 'hostB', dest: '/var/lib/lxc/web' };
  it.each([
    [10, 'TRANSFER_NETWORK', true],
    [12, 'TRANSFER_NETWORK', true],
    [30, 'TRANSFER_NETWORK', true],
    [35, 'TRANSFER_NETWORK', true],
    [255, 'TRANSFER_NETWORK', true],
    [23, 'TRANSFER_PARTIAL', true],
    [24, 'TRANSFER_PARTIAL', true],
    [1, 'TRANSFER_PROTOCOL', false],
    [2, 'TRANSFER_PROTOCOL', false],
    [4, 'TRANSFER_PROTOCOL', false],
    [11, 'TRANSFER_FAILED', false],
    [3, 'TRANSFER_FAILED', false],
  ] as const)('exit %i → %s', (code, expected, retryable) => {
    expect(classifyRsyncError(fail(code, 'rsync error: something'), where)).toMatchObject({ code: expected, retryable });
  });

  it('ENOSPC wins over the exit code and names the disk', () => {
    const e = classifyRsyncError(
      fail(11, 'rsync: [receiver] write failed on "/var/lib/lxc/web/rootfs/big": No space left on device (28)\nrsync error: error in file IO (code 11)'),
      where,
    ) as Error & { code: string; retryable: boolean };
    expect(e).toMatchObject({ code: 'TARGET_DISK_FULL', retryable: false });
    expect(e.message).toContain('hostB');
    expect(e.message).toContain('/var/lib/lxc/web/rootfs/big');
    expect(classifyRsyncError(fail(23, 'write failed: No space left on device (28)'), where)).toMatchObject({ code: 'TARGET_DISK_FULL' });
  });

  it('a pass that only raced the writer (files shrunk, gone or changed under the read) is told apart from real errors', () => {
    const raced = [
      'rsync: [sender] read errors mapping "/var/lib/lxc/web/rootfs/state": No data available (61)',
      'WARNING: state failed verification -- update discarded (will try again).',
      'ERROR: state failed verification -- update discarded.',
      'file has vanished: "/var/lib/lxc/web/rootfs/tmp/x"',
      'rsync error: some files/attrs were not transferred (see previous errors) (code 23) at main.c(1338) [sender=3.2.7]',
    ].join('\n');
    expect(onlySourceChanged(23, raced)).toBe(true);
    expect(onlySourceChanged(24, 'file has vanished: "/a"\nrsync warning: some files vanished before they could be transferred (code 24)')).toBe(true);
    // Anything else among them, another exit, or nothing to go by: a real error.
    expect(onlySourceChanged(23, `${raced}\nrsync: [sender] send_files failed to open "/x": Permission denied (13)`)).toBe(false);
    expect(onlySourceChanged(11, raced)).toBe(false);
    expect(onlySourceChanged(23, '')).toBe(false);
  });

  it('timeouts, signals, host keys, a missing rsync', () => {
    expect(classifyRsyncError(fail(null, '', { timedOut: true }), where)).toMatchObject({ code: 'TRANSFER_INTERRUPTED', retryable: true });
    expect(classifyRsyncError(fail(null, '', { signal: 'SIGTERM' }), where)).toMatchObject({ code: 'TRANSFER_INTERRUPTED', retryable: true });
    expect(classifyRsyncError(fail(255, 'Host key verification failed.'), where)).toMatchObject({ code: 'PEER_HOST_KEY', retryable: false });
    expect(classifyRsyncError(fail(255, 'root@x: Permission denied (publickey).'), where)).toMatchObject({ code: 'PEER_AUTH', retryable: false });
    expect(classifyRsyncError(fail(null, 'spawn rsync ENOENT'), where)).toMatchObject({ code: 'TRANSFER_FAILED', retryable: false });
    const other = new Error('x');
    expect(classifyRsyncError(other, where)).toBe(other);
  });
});

describe('small helpers', () => {
  it('device holding an address', () => {
    const out = [
      '1: lo    inet 127.0.0.1/8 scope host lo\\       valid_lft forever preferred_lft forever',
      '5: eth1    inet 198.18.203.20/24 brd 198.18.203.255 scope global eth1\\       valid_lft forever preferred_lft forever',
    ].join('\n');
    expect(deviceHolding(out, '198.18.203.20')).toBe('eth1');
    expect(deviceHolding(out, '198.18.203.2')).toBeUndefined();
  });
  it('free space margin', () => {
    expect(requiredFreeBytes(0)).toBe(64 * 1024 * 1024);
    expect(requiredFreeBytes(1000, 2000)).toBe(64 * 1024 * 1024);
    expect(requiredFreeBytes(100 * 1024 * 1024)).toBe(Math.ceil(100 * 1024 * 1024 * 1.05) + 64 * 1024 * 1024);
  });
});

describe('isUnder: paths from a peer or a config cannot walk out', () => {
  it('normalizes before comparing', async () => {
    const { isUnder } = await import('../src/runtime/paths.js');
    expect(isUnder('/var/lib/lxc/web2/rootfs', '/var/lib/lxc/web2')).toBe(true);
    expect(isUnder('/var/lib/lxc/web2', '/var/lib/lxc/web2/')).toBe(true);
    expect(isUnder('/var/lib/lxc/web2/../../../../etc/..', '/var/lib/lxc/web2')).toBe(false);
    expect(isUnder('/var/lib/lxc/web2/../web3/rootfs', '/var/lib/lxc/web2')).toBe(false);
    expect(isUnder('/var/lib/lxc/web22', '/var/lib/lxc/web2')).toBe(false);
    expect(isUnder('/var/lib/lxc//web2/./rootfs', '/var/lib/lxc/web2')).toBe(true);
  });
});
