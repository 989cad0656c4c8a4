/**
 * FIDEDUPERANGE: ask the kernel to make byte ranges of other files share the blocks of a source
 * file. The kernel locks both files, compares the bytes and only then remaps, so a file that
 * changed since we hashed it is answered "differs" and left alone: safe on running containers.
 * It changes neither contents, mtime, mode, owner nor xattrs (no file_modified() for dedupe).
 */
import { ioctl } from './libc.js';

/** _IOWR(0x94, 54, struct file_dedupe_range) */
const FIDEDUPERANGE = 0xc0189436;
const HEADER = 24; // src_offset u64, src_length u64, dest_count u16, reserved u16 + u32
const INFO = 32; // dest_fd s64, dest_offset u64, bytes_deduped u64, status s32, reserved u32
const STATUS_DIFFERS = 1;

/**
 * The kernel clamps one request (1 GiB in vfs_dedupe_file_range, 16 MiB on btrfs); smaller steps
 * also keep each blocking call short, since this runs on the event loop thread.
 */
export const DEDUPE_STEP = 16 * 1024 * 1024;
/** Destinations per call: the info array must fit one page-sized allocation in the kernel. */
const MAX_DESTS = 64;

export type DedupeOutcome =
  | { fd: number; result: 'same'; bytes: number }
  | { fd: number; result: 'differs'; bytes: number }
  | { fd: number; result: 'error'; bytes: number; errno: number };

/**
 * Dedupes the whole of `srcFd` (`size` bytes) into each destination fd at the same offsets.
 * A destination that differs or fails is dropped from later steps; `bytes` says how far it got.
 * `between` runs after each call (used to yield to the event loop).
 */
export async function dedupeWhole(
  srcFd: number,
  destFds: readonly number[],
  size: number,
  between: () => Promise<void> = async () => {},
): Promise<DedupeOutcome[]> {
  const out = new Map<number, DedupeOutcome>(destFds.map((fd) => [fd, { fd, result: 'same', bytes: 0 }]));
  for (let i = 0; i < destFds.length; i += MAX_DESTS) {
    let live = destFds.slice(i, i + MAX_DESTS);
    let off = 0;
    while (off < size && live.length) {
      const len = Math.min(DEDUPE_STEP, size - off);
      const buf = Buffer.alloc(HEADER + INFO * live.length);
      buf.writeBigUInt64LE(BigInt(off), 0);
      buf.writeBigUInt64LE(BigInt(len), 8);
      buf.writeUInt16LE(live.length, 16);
      live.forEach((fd, k) => {
        buf.writeBigInt64LE(BigInt(fd), HEADER + INFO * k);
        buf.writeBigUInt64LE(BigInt(off), HEADER + INFO * k + 8);
      });
      ioctl(srcFd, FIDEDUPERANGE, buf, 'FIDEDUPERANGE');
      const next: number[] = [];
      live.forEach((fd, k) => {
        const done = Number(buf.readBigUInt64LE(HEADER + INFO * k + 16));
        const status = buf.readInt32LE(HEADER + INFO * k + 24);
        const o = out.get(fd)!;
        // The kernel reports the whole request on success; anything shorter is not a state we
        // can continue from safely, so it counts as a failure for that destination.
        if (status === 0 && done === len) {
          o.bytes += done;
          next.push(fd);
        } else if (status === STATUS_DIFFERS) out.set(fd, { fd, result: 'differs', bytes: o.bytes });
        else out.set(fd, { fd, result: 'error', bytes: o.bytes + Math.max(0, done), errno: status < 0 ? -status : 0 });
      });
      live = next;
      off += len;
      await between();
    }
  }
  return destFds.map((fd) => out.get(fd)!);
}
