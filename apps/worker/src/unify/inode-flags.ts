/**
 * Inode flags (what chattr/lsattr show). Hardlink mode makes shared inodes immutable, so that no
 * container can change in place a file other containers see; the ioctl is what chattr uses, called
 * directly to avoid one process per file.
 */
import { ioctl } from './libc.js';

/** _IOR('f', 1, long) and _IOW('f', 2, long); the kernel moves an int through them. */
const FS_IOC_GETFLAGS = 0x80086601;
const FS_IOC_SETFLAGS = 0x40086602;
export const FS_IMMUTABLE_FL = 0x10;
export const FS_APPEND_FL = 0x20;

export function getFlags(fd: number): number {
  const b = Buffer.alloc(8);
  ioctl(fd, FS_IOC_GETFLAGS, b, 'FS_IOC_GETFLAGS');
  return b.readInt32LE(0);
}

export function setFlags(fd: number, flags: number): void {
  const b = Buffer.alloc(8);
  b.writeInt32LE(flags, 0);
  ioctl(fd, FS_IOC_SETFLAGS, b, 'FS_IOC_SETFLAGS');
}

/** Sets or clears the immutable flag; answers whether it was set before. */
export function setImmutable(fd: number, on: boolean): boolean {
  const flags = getFlags(fd);
  const was = (flags & FS_IMMUTABLE_FL) !== 0;
  if (was !== on) setFlags(fd, on ? flags | FS_IMMUTABLE_FL : flags & ~FS_IMMUTABLE_FL);
  return was;
}
