import { readFile } from 'node:fs/promises';
import { CommandError, FerryError } from '@ferry/core';
import { run } from '@ferry/infra';

/**
 * Bind mounts into and out of a RUNNING container's mount namespace.
 *
 * The host directory lives in the host's mount namespace and the container has its own: a plain
 * `mount --bind` cannot join them (the source must be in the caller's namespace; util-linux 2.38's
 * `mount -N` looks the source up inside the target namespace; LXC 5 has no CLI for it, only
 * liblxc's `lxc_container.mount()`). The new mount API can, measured here on 6.18:
 *
 *   1. `open_tree(source, OPEN_TREE_CLONE)` in the host's namespace: a detached copy of the bind
 *      mount, held by a file descriptor; `mount_setattr(MOUNT_ATTR_RDONLY)` on it for `ro`;
 *   2. `setns(/proc/<init pid>/ns/mnt)`: from here on `/` is the container's root;
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
my ($op, $nsfile, $nr_setns, $nr_umount2, @rest) = @ARGV;
$nr_setns += 0; $nr_umount2 += 0;
my $e1 = ""; my $e2 = ""; my $e3 = "";
if ($op eq "mount") {
  my ($src, $rel, $ro) = @rest;
  # open_tree(AT_FDCWD, src, OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC)
  my $tree = syscall(428, -100, $src, 1 | 0x80000);
  fail("open_tree $src: $!") if $tree < 0;
  if ($ro) {
    # struct mount_attr { attr_set = MOUNT_ATTR_RDONLY, attr_clr, propagation, userns_fd }
    my $attr = pack("QQQQ", 1, 0, 0, 0);
    syscall(442, $tree, $e3, 0x1000, $attr, 32) == 0 or fail("mount_setattr ro: $!");
  }
  open(my $ns, "<", $nsfile) or fail("open $nsfile: $!");
  syscall($nr_setns, fileno($ns), 0x00020000) == 0 or fail("setns: $!");
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
  open(my $ns, "<", $nsfile) or fail("open $nsfile: $!");
  syscall($nr_setns, fileno($ns), 0x00020000) == 0 or fail("setns: $!");
  # umount2(path, MNT_DETACH | UMOUNT_NOFOLLOW)
  syscall($nr_umount2, $abs, 0x2 | 0x8) == 0 or fail("umount $abs: $!");
  print "unmounted\n";
} else { fail("unknown operation $op") }
`;

/** Why a live mount cannot be done here (null: it can). */
export function liveMountUnsupported(arch = process.arch): string | null {
  return ARCH_SYSCALLS[arch] ? null : `live bind mounts are not implemented for the ${arch} architecture`;
}

async function helper(op: 'mount' | 'umount', pid: number, args: string[], perl: string): Promise<void> {
  const nr = ARCH_SYSCALLS[process.arch];
  if (!nr) throw new FerryError('LIVE_MOUNT_UNSUPPORTED', liveMountUnsupported()!);
  try {
    await run(perl, ['-e', PERL, '--', op, `/proc/${pid}/ns/mnt`, String(nr.setns), String(nr.umount2), ...args], {
      timeoutMs: 30_000,
      env: { PATH: process.env.PATH ?? '/usr/bin:/bin', LC_ALL: 'C' },
    });
  } catch (e) {
    if (e instanceof CommandError) {
      if (e.failure.exitCode === null && !e.failure.timedOut && !e.failure.signal) {
        throw new FerryError('LIVE_MOUNT_UNSUPPORTED', `cannot run ${perl} for the live mount: ${e.failure.stderrTail.trim()}`);
      }
      const why = e.failure.stderrTail.trim().replace(/^ferry-mount: /gm, '') || e.message;
      throw new FerryError(op === 'mount' ? 'LIVE_MOUNT_FAILED' : 'LIVE_UMOUNT_FAILED', why, { details: { ...e.failure } });
    }
    throw e;
  }
}

/**
 * Bind-mounts host directory `source` at `target` (absolute, normalized, no symlinks) in the mount
 * namespace of process `pid` (the container's init), creating missing directories there.
 */
export async function liveBindMount(pid: number, source: string, target: string, readOnly: boolean, perl = 'perl'): Promise<void> {
  await helper('mount', pid, [source, target.replace(/^\/+/, ''), readOnly ? '1' : ''], perl);
}

/** Detaches the mount at `target` in the mount namespace of `pid`. */
export async function liveUnmount(pid: number, target: string, perl = 'perl'): Promise<void> {
  await helper('umount', pid, [target], perl);
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
