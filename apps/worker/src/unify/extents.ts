/**
 * FIEMAP: where a file's data lives on disk. Used to tell "already shares every block with the
 * store object" (skip: nothing to do, and a dry run can say so) and "no block of this store object
 * is shared with anything any more" (garbage: the object only pins space).
 */
import { ioctl } from './libc.js';

/** _IOWR('f', 11, struct fiemap) */
const FS_IOC_FIEMAP = 0xc020660b;
const FIEMAP_FLAG_SYNC = 0x1;
const HEADER = 32;
const EXTENT = 56;
const BATCH = 256;
const FIEMAP_EXTENT_LAST = 0x1;
const FIEMAP_EXTENT_UNKNOWN = 0x2;
const FIEMAP_EXTENT_DELALLOC = 0x4;
const FIEMAP_EXTENT_SHARED = 0x2000;

export interface Extent {
  logical: bigint;
  physical: bigint;
  length: bigint;
  flags: number;
}

/** Every extent of the open file (data flushed first, so delayed allocations have addresses). */
export function extents(fd: number): Extent[] {
  const out: Extent[] = [];
  let start = 0n;
  for (;;) {
    const buf = Buffer.alloc(HEADER + EXTENT * BATCH);
    buf.writeBigUInt64LE(start, 0);
    buf.writeBigUInt64LE(0xffffffffffffffffn - start, 8);
    buf.writeUInt32LE(FIEMAP_FLAG_SYNC, 16);
    buf.writeUInt32LE(BATCH, 24);
    ioctl(fd, FS_IOC_FIEMAP, buf, 'FIEMAP');
    const n = buf.readUInt32LE(20);
    if (n === 0) return out;
    let last = false;
    for (let i = 0; i < n; i++) {
      const o = HEADER + EXTENT * i;
      const e: Extent = {
        logical: buf.readBigUInt64LE(o),
        physical: buf.readBigUInt64LE(o + 8),
        length: buf.readBigUInt64LE(o + 16),
        flags: buf.readUInt32LE(o + 40),
      };
      out.push(e);
      last ||= (e.flags & FIEMAP_EXTENT_LAST) !== 0;
    }
    if (last) return out;
    const tail = out[out.length - 1]!;
    start = tail.logical + tail.length;
  }
}

/** True when both files map the same logical ranges to the same disk blocks. */
export function sameBlocks(a: readonly Extent[], b: readonly Extent[]): boolean {
  const usable = (e: Extent) => (e.flags & (FIEMAP_EXTENT_UNKNOWN | FIEMAP_EXTENT_DELALLOC)) === 0;
  if (a.length === 0 || a.length !== b.length) return false;
  return a.every((x, i) => {
    const y = b[i]!;
    return usable(x) && usable(y) && x.logical === y.logical && x.physical === y.physical && x.length === y.length;
  });
}

/** True when at least one block of the file is also used by another file. */
export function anyShared(list: readonly Extent[]): boolean {
  return list.some((e) => (e.flags & FIEMAP_EXTENT_SHARED) !== 0);
}
