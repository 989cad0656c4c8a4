/**
 * The few libc calls node does not offer (ioctl, xattrs, nanosecond times, syncfs), through
 * the koffi FFI. The addon is loaded on first use, so that importing the worker never needs it.
 * Everything here works on file descriptors: names with any bytes need no string conversion,
 * and an fd pins the inode we checked, so a path swapped behind our back cannot redirect us.
 */
import { createRequire } from 'node:module';
import type * as Koffi from 'koffi';

type Fn = (...args: unknown[]) => number;

interface Libc {
  ioctl: Fn;
  ioctlInt: Fn;
  syncfs: Fn;
  futimens: Fn;
  flistxattr: Fn;
  fgetxattr: Fn;
  fsetxattr: Fn;
  fremovexattr: Fn;
}

let libc: Libc | undefined;
let koffi: typeof Koffi;

function load(): Libc {
  if (libc) return libc;
  koffi = createRequire(import.meta.url)('koffi') as typeof Koffi;
  const lib = koffi.load('libc.so.6');
  // ioctl is variadic in C; on Linux (x86-64 and arm64 ABIs) a fixed third pointer argument is
  // passed exactly like the variadic one, and a fixed signature keeps each call cheap.
  libc = {
    ioctl: lib.func('int ioctl(int fd, unsigned long request, void *arg)') as Fn,
    ioctlInt: lib.func('ioctl', 'int', ['int', 'unsigned long', 'intptr_t']) as Fn,
    syncfs: lib.func('int syncfs(int fd)') as Fn,
    futimens: lib.func('int futimens(int fd, void *times)') as Fn,
    flistxattr: lib.func('intptr_t flistxattr(int fd, void *list, size_t size)') as Fn,
    fgetxattr: lib.func('intptr_t fgetxattr(int fd, const char *name, void *value, size_t size)') as Fn,
    fsetxattr: lib.func('int fsetxattr(int fd, const char *name, const void *value, size_t size, int flags)') as Fn,
    fremovexattr: lib.func('int fremovexattr(int fd, const char *name)') as Fn,
  };
  return libc;
}

/** An errno from a libc call, with the symbolic name when known (EOPNOTSUPP, EPERM, ...). */
export class ErrnoError extends Error {
  override name = 'ErrnoError';
  constructor(
    readonly call: string,
    readonly errno: number,
  ) {
    super(`${call} failed: ${errnoName(errno)} (${errno})`);
  }
  get code(): string {
    return errnoName(this.errno);
  }
}

/** Names that share a number with another; the kernel's own spelling is preferred. */
const PREFERRED = ['EOPNOTSUPP', 'EAGAIN', 'EDEADLK'];

export function errnoName(n: number): string {
  load();
  const table = koffi.os.errno;
  for (const name of PREFERRED) if (table[name] === n) return name;
  for (const [name, v] of Object.entries(table)) if (v === n) return name;
  return `errno ${n}`;
}

function check(call: string, r: number): number {
  if (r < 0) throw new ErrnoError(call, koffi.errno());
  return r;
}

/** ioctl(fd, request, buf); the kernel reads and writes `buf` in place. */
export function ioctl(fd: number, request: number, buf: Buffer, what = 'ioctl'): number {
  return check(what, load().ioctl(fd, request, buf));
}

/** _IOW(0x94, 9, int): makes `destFd` share all blocks of `srcFd` (a reflink copy). */
export function ficlone(destFd: number, srcFd: number): void {
  check('FICLONE', load().ioctlInt(destFd, 0x40049409, srcFd));
}

/** Flushes the whole file system holding `fd`, so that statfs counts what was just freed. */
export function syncfs(fd: number): void {
  check('syncfs', load().syncfs(fd));
}

/** Sets atime and mtime with nanosecond precision (node's utimes goes through a double). */
export function futimens(fd: number, atimeNs: bigint, mtimeNs: bigint): void {
  const b = Buffer.alloc(32);
  b.writeBigInt64LE(atimeNs / 1_000_000_000n, 0);
  b.writeBigInt64LE(atimeNs % 1_000_000_000n, 8);
  b.writeBigInt64LE(mtimeNs / 1_000_000_000n, 16);
  b.writeBigInt64LE(mtimeNs % 1_000_000_000n, 24);
  check('futimens', load().futimens(fd, b));
}

/** Every extended attribute of the open file (all namespaces, ACLs included), name → value. */
export function readXattrs(fd: number): Map<string, Buffer> {
  const c = load();
  const out = new Map<string, Buffer>();
  let size = check('flistxattr', c.flistxattr(fd, null, 0));
  if (size === 0) return out;
  let list = Buffer.alloc(size);
  for (;;) {
    const r = c.flistxattr(fd, list, list.length);
    if (r >= 0) {
      list = list.subarray(0, r);
      break;
    }
    if (koffi.errno() !== koffi.os.errno.ERANGE!) check('flistxattr', r);
    size = check('flistxattr', c.flistxattr(fd, null, 0));
    list = Buffer.alloc(size);
  }
  for (const raw of list.toString('latin1').split('\0')) {
    if (!raw) continue;
    const name = Buffer.from(raw, 'latin1').toString('utf8');
    for (;;) {
      const len = c.fgetxattr(fd, name, null, 0);
      if (len < 0 && koffi.errno() === koffi.os.errno.ENODATA!) break; // removed meanwhile
      check(`fgetxattr ${name}`, len);
      const value = Buffer.alloc(len);
      const r = c.fgetxattr(fd, name, value, value.length);
      if (r < 0 && koffi.errno() === koffi.os.errno.ERANGE!) continue; // grew meanwhile
      check(`fgetxattr ${name}`, r);
      out.set(name, value.subarray(0, r));
      break;
    }
  }
  return out;
}

export function setXattr(fd: number, name: string, value: Buffer): void {
  check(`fsetxattr ${name}`, load().fsetxattr(fd, name, value, value.length, 0));
}

export function removeXattr(fd: number, name: string): void {
  check(`fremovexattr ${name}`, load().fremovexattr(fd, name));
}
