import { readFile, stat } from 'node:fs/promises';
import { CommandError, FerryError, PreconditionError } from '@ferry/core';
import { procId, run } from '@ferry/infra';

/**
 * Bind mounts into and out of a RUNNING container's mount namespace.
 *
 * The host directory lives in the host's mount namespace and the container has its own: a plain
 * `mount --bind` cannot join them (the source must be in the caller's namespace; util-linux 2.38's
 * `mount -N` looks the source up inside the target namespace; LXC 5 has no CLI for it, only
 * liblxc's `lxc_container.mount()`). The new mount API can, measured here on 6.18:
 *
 *   1. `open_tree(source, OPEN_TREE_CLONE)` in the host's namespace, the source opened first with
 *      `openat2(RESOLVE_NO_SYMLINKS)` (a link swapped in after the worker checked the path fails):
 *      a detached copy of the bind mount, held by a file descriptor; `mount_setattr` on it makes
 *      it `nosuid,nodev` always, and read-only for `ro`;
 *   2. `setns(pidfd of the init, CLONE_NEWNS)`: from here on `/` is the container's root. The
 *      init is named by PID, and a PID can be reused once its process died: the worker reads its
 *      start time and checks its root is the container's rootfs, and the helper, after taking the
 *      pidfd (which stays with that one process), checks both again; a PID that now names another
 *      process (a host process: its namespace is the host's) is refused, nothing mounted;
 *   3. the target's missing directories are created (no symlink on the way: LXC refuses those too);
 *   4. `openat2(target, RESOLVE_IN_ROOT | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS)` and
 *      `move_mount(tree → target)` attach the copy there.
 *
 * (A `move_mount` into the other namespace without `setns`, with a target opened through
 * /proc/<pid>/root, fails with EINVAL on this kernel.) `setns` into a mount namespace needs a
 * single-threaded process, which Node is not: the steps run in a short Perl program (perl-base is
 * Essential on Debian), started through `run()` with its data as separate arguments. The new mount
 * API's syscall numbers are the same on every architecture but alpha; setns and umount2 are not,
 * hence the table. Unmounting is `setns` + `umount2(MNT_DETACH | UMOUNT_NOFOLLOW)`.
 */

const ARCH_SYSCALLS: Partial<Record<string, { setns: number; umount2: number }>> = {
  x64: { setns: 308, umount2: 166 },
  arm64: { setns: 268, umount2: 39 },
  riscv64: { setns: 268, umount2: 39 },
  loong64: { setns: 268, umount2: 39 },
};

const PERL = String.raw`
use strict; use warnings;
sub fail { print STDERR "ferry-mount: $_[0]\n"; exit 3 }
my ($op, $pid, $start, $rootfs, $nr_setns, $nr_umount2, @rest) = @ARGV;
$pid += 0; $nr_setns += 0; $nr_umount2 += 0;
my $e1 = ""; my $e2 = ""; my $e3 = "";
# The init's mount namespace, by a handle that cannot be moved to another process: a pidfd
# (pidfd_open, 434 on every architecture; setns takes it since 5.8), else the namespace file
# opened before the check below. Either way the identity is checked after the handle is taken.
sub enter {
  my $pidfd = syscall(434, $pid, 0);
  my $ns;
  if ($pidfd < 0) { open($ns, "<", "/proc/$pid/ns/mnt") or fail("open /proc/$pid/ns/mnt: $!") }
  open(my $st, "<", "/proc/$pid/stat") or fail("process $pid is gone");
  my $line = <$st>; close($st);
  my @f = split / /, substr($line, rindex($line, ")") + 2);
  fail("process $pid is no longer the container's init (start time $f[19], expected $start): not mounting") if $f[19] ne $start;
  my @r = stat("/proc/$pid/root"); my @c = stat($rootfs);
  fail("process $pid does not run in the container's rootfs $rootfs: not mounting") if !@r || !@c || $r[0] != $c[0] || $r[1] != $c[1];
  my $fd = $pidfd >= 0 ? $pidfd : fileno($ns);
  syscall($nr_setns, $fd, 0x00020000) == 0 or fail("setns into the mount namespace of $pid: $!");
}
if ($op eq "mount") {
  my ($src, $rel, $ro) = @rest;
  # openat2(AT_FDCWD, src, { O_PATH|O_DIRECTORY|O_CLOEXEC, 0, RESOLVE_NO_SYMLINKS|RESOLVE_NO_MAGICLINKS })
  my $srchow = pack("QQQ", 0x200000 | 0x10000 | 0x80000, 0, 0x04 | 0x02);
  my $srcfd = syscall(437, -100, $src, $srchow, 24);
  fail("open $src without following links: $!") if $srcfd < 0;
  # open_tree(srcfd, "", OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC | AT_EMPTY_PATH)
  my $tree = syscall(428, $srcfd, $e1, 1 | 0x80000 | 0x1000);
  fail("open_tree $src: $!") if $tree < 0;
  # struct mount_attr { attr_set = NOSUID | NODEV [| RDONLY], attr_clr, propagation, userns_fd }
  my $attr = pack("QQQQ", 0x2 | 0x4 | ($ro ? 0x1 : 0), 0, 0, 0);
  syscall(442, $tree, $e3, 0x1000, $attr, 32) == 0 or fail("mount_setattr nosuid,nodev" . ($ro ? ",ro" : "") . ": $!");
  enter();
  chdir("/") or fail("chdir /: $!");
  my $path = "";
  for my $c (split m{/}, $rel) {
    next if $c eq "";
    $path .= "/$c";
    if (-l $path) { fail("$path is a symbolic link in the container") }
    if (!-e _) { mkdir($path, 0755) or (-d $path) or fail("mkdir $path: $!") }
    elsif (!-d _) { fail("$path is not a directory in the container") }
  }
  opendir(my $root, "/") or fail("opendir /: $!");
  # struct open_how { flags = O_PATH|O_DIRECTORY|O_CLOEXEC, mode, resolve = IN_ROOT|NO_SYMLINKS|NO_MAGICLINKS }
  my $how = pack("QQQ", 0x200000 | 0x10000 | 0x80000, 0, 0x10 | 0x04 | 0x02);
  my $target = syscall(437, fileno($root), $rel, $how, 24);
  fail("open $rel in the container: $!") if $target < 0;
  # move_mount(tree, "", target, "", MOVE_MOUNT_F_EMPTY_PATH | MOVE_MOUNT_T_EMPTY_PATH)
  syscall(429, $tree, $e1, $target, $e2, 0x4 | 0x40) == 0 or fail("move_mount onto /$rel: $!");
  print "mounted\n";
} elsif ($op eq "umount") {
  my ($abs) = @rest;
  enter();
  # umount2(path, MNT_DETACH | UMOUNT_NOFOLLOW)
  syscall($nr_umount2, $abs, 0x2 | 0x8) == 0 or fail("umount $abs: $!");
  print "unmounted\n";
} else { fail("unknown operation $op") }
`;

/** Why a live mount cannot be done here (null: it can). */
export function liveMountUnsupported(arch = process.arch): string | null {
  return ARCH_SYSCALLS[arch] ? null : `live bind mounts are not implemented for the ${arch} architecture`;
}

/** A container's init as the live mount names it: PID, its start time, the container's rootfs. */
export interface InitIdentity {
  pid: number;
  startTime: number;
  rootfs: string;
}

/**
 * The identity of the process `pid` if it is a container's init running in `rootfs` (its root is
 * that directory); refused (CONTAINER_INIT_CHANGED) when it is gone or runs elsewhere, e.g. a PID
 * reused by a host process after the container stopped.
 */
export async function initIdentity(pid: number, rootfs: string): Promise<InitIdentity> {
  const id = await procId(pid);
  const [root, dir] = await Promise.all([stat(`/proc/${pid}/root`).catch(() => null), stat(rootfs).catch(() => null)]);
  if (!id || !root || !dir || root.dev !== dir.dev || root.ino !== dir.ino) {
    throw new PreconditionError('CONTAINER_INIT_CHANGED', `process ${pid} is not the init of the container in ${rootfs} (gone, or its PID reused): not mounting; look again (ferry show)`);
  }
  return { pid, startTime: id.startTime, rootfs };
}

async function helper(op: 'mount' | 'umount', init: InitIdentity, args: string[], perl: string): Promise<void> {
  const nr = ARCH_SYSCALLS[process.arch];
  if (!nr) throw new FerryError('LIVE_MOUNT_UNSUPPORTED', liveMountUnsupported()!);
  try {
    await run(perl, ['-e', PERL, '--', op, String(init.pid), String(init.startTime), init.rootfs, String(nr.setns), String(nr.umount2), ...args], {
      timeoutMs: 30_000,
      env: { PATH: process.env.PATH ?? '/usr/bin:/bin', LC_ALL: 'C' },
    });
  } catch (e) {
    if (e instanceof CommandError) {
      if (e.failure.exitCode === null && !e.failure.timedOut && !e.failure.signal) {
        throw new FerryError('LIVE_MOUNT_UNSUPPORTED', `cannot run ${perl} for the live mount: ${e.failure.stderrTail.trim()}`);
      }
      const why = e.failure.stderrTail.trim().replace(/^ferry-mount: /gm, '') || e.message;
      if (/no longer the container's init|does not run in the container's rootfs|is gone$/.test(why)) {
        throw new PreconditionError('CONTAINER_INIT_CHANGED', why);
      }
      throw new FerryError(op === 'mount' ? 'LIVE_MOUNT_FAILED' : 'LIVE_UMOUNT_FAILED', why, { details: { ...e.failure } });
    }
    throw e;
  }
}

/**
 * Bind-mounts host directory `source` (resolved: no symbolic link on its path) at `target`
 * (absolute, normalized, no symlinks) in the mount namespace of the container's init, creating
 * missing directories there; always nosuid,nodev.
 */
export async function liveBindMount(init: InitIdentity, source: string, target: string, readOnly: boolean, perl = 'perl'): Promise<void> {
  await helper('mount', init, [source, target.replace(/^\/+/, ''), readOnly ? '1' : ''], perl);
}

/** Detaches the mount at `target` in the mount namespace of the container's init. */
export async function liveUnmount(init: InitIdentity, target: string, perl = 'perl'): Promise<void> {
  await helper('umount', init, [target], perl);
}

/** Mount points listed in a /proc/<pid>/mountinfo (relative to that process's root), unescaped. */
export function mountPoints(mountinfo: string): string[] {
  return mountinfo
    .split('\n')
    .map((l) => l.split(' ')[4])
    .filter((p): p is string => !!p)
    .map((p) => p.replace(/\\([0-7]{3})/g, (_, o: string) => String.fromCharCode(parseInt(o, 8))));
}

/** Mount points in the view of process `pid` (a container's init); undefined when it cannot be read. */
export async function liveMountPoints(pid: number | undefined): Promise<Set<string> | undefined> {
  if (!pid) return undefined;
  try {
    return new Set(mountPoints(await readFile(`/proc/${pid}/mountinfo`, 'utf8')));
  } catch {
    return undefined;
  }
}
