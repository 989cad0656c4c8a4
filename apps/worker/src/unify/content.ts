/**
 * Reading file contents: SHA-256 to find candidates, byte-by-byte comparison before hardlinking.
 * Files are opened without following symlinks and without updating atime, and the opened inode
 * is checked against the one the scan saw, so a path swapped meanwhile is never read instead.
 */
import { createHash } from 'node:crypto';
import { constants } from 'node:fs';
import { open, type FileHandle } from 'node:fs/promises';

const CHUNK = 1024 * 1024;

/**
 * Read buffers are reused: a fresh megabyte per file (thousands of files) keeps the garbage
 * collector busier than the hashing itself.
 */
const spare: Buffer[] = [];
function take(): Buffer {
  return spare.pop() ?? Buffer.allocUnsafe(CHUNK);
}
function give(b: Buffer): void {
  if (spare.length < 16) spare.push(b);
}

/** Opens read-only, O_NOFOLLOW and O_NOATIME (dropped if refused: it needs file ownership). */
export async function openRead(abs: Buffer | string): Promise<FileHandle> {
  const base = constants.O_RDONLY | constants.O_NOFOLLOW;
  try {
    return await open(abs, base | constants.O_NOATIME);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'EPERM') throw e;
    return open(abs, base);
  }
}

/** Opens and checks the inode and size are still what the scan saw; undefined when not. */
export async function openSame(
  abs: Buffer,
  want: { dev: bigint; ino: bigint; size: number },
): Promise<FileHandle | undefined> {
  let fh: FileHandle;
  try {
    fh = await openRead(abs);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ELOOP') return undefined;
    throw e;
  }
  const st = await fh.stat({ bigint: true });
  if (!st.isFile() || st.dev !== want.dev || st.ino !== want.ino || Number(st.size) !== want.size) {
    await fh.close();
    return undefined;
  }
  return fh;
}

/** SHA-256 of the file; with `size`, reading stops there (saves the read that would answer EOF). */
export async function sha256Of(fh: FileHandle, size?: number): Promise<string> {
  const h = createHash('sha256');
  const buf = take();
  try {
    let pos = 0;
    while (size === undefined || pos < size) {
      const { bytesRead } = await fh.read(buf, 0, buf.length, pos);
      if (bytesRead === 0) break;
      h.update(buf.subarray(0, bytesRead));
      pos += bytesRead;
    }
    return h.digest('hex');
  } finally {
    give(buf);
  }
}

/** True when both files hold exactly the same bytes. */
export async function sameBytes(a: FileHandle, b: FileHandle): Promise<boolean> {
  const ba = take();
  const bb = take();
  try {
    let pos = 0;
    for (;;) {
      const [ra, rb] = await Promise.all([a.read(ba, 0, CHUNK, pos), b.read(bb, 0, CHUNK, pos)]);
      if (ra.bytesRead !== rb.bytesRead) return false;
      if (ra.bytesRead === 0) return true;
      if (!ba.subarray(0, ra.bytesRead).equals(bb.subarray(0, rb.bytesRead))) return false;
      pos += ra.bytesRead;
    }
  } finally {
    give(ba);
    give(bb);
  }
}

/** Runs `fn` over items with at most `limit` in flight. */
export async function pool<T>(items: readonly T[], limit: number, fn: (t: T) => Promise<void>): Promise<void> {
  let next = 0;
  const worker = async () => {
    while (next < items.length) await fn(items[next++]!);
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
}
