/**
 * Changing names inside a container's tree without leaving traces: temporary names beside the
 * target (a link is made there, then renamed over it, so the target is never missing), and the
 * directories' times put back afterwards, so that a manifest of the container sees no difference.
 */
import { constants } from 'node:fs';
import { lstat, open, readdir, unlink, type FileHandle } from 'node:fs/promises';
import { openRead } from './content.js';
import { futimens } from './libc.js';

const TMP_PREFIX = '.ferry-unify-';

/** Bytes → path text, and hex of the raw bytes when the text would not give them back. */
export function pathText(abs: Buffer): { text: string; raw?: string } {
  const text = abs.toString('utf8');
  return Buffer.from(text, 'utf8').equals(abs) ? { text } : { text, raw: abs.toString('hex') };
}

export function parentOf(abs: Buffer): Buffer {
  return abs.subarray(0, Math.max(1, abs.lastIndexOf(0x2f)));
}

let tmpCounter = 0;
/** A fresh temporary name in `dir`: links are made there, then renamed over their target. */
export function tmpIn(dir: Buffer, run: string): Buffer {
  return Buffer.concat([dir, Buffer.from(`/${TMP_PREFIX}${run}-${tmpCounter++}`)]);
}
export function tmpBeside(abs: Buffer, run: string): Buffer {
  return tmpIn(parentOf(abs), run);
}

/**
 * Runs `fn` (which adds or replaces a name in the directory of `abs`) and puts the directory's
 * atime and mtime back: a manifest of the container must not see that we were there.
 */
export async function keepDirTimes<T>(abs: Buffer, fn: () => Promise<T>): Promise<T> {
  const dir = parentOf(abs);
  const st = await lstat(dir, { bigint: true });
  const r = await fn();
  const fh = await open(dir, constants.O_RDONLY | constants.O_DIRECTORY);
  try {
    futimens(fh.fd, st.atimeNs, st.mtimeNs);
  } finally {
    await fh.close();
  }
  return r;
}

/**
 * The same for a batch of changes: each directory's times are read before its first change
 * and put back once the batch is done.
 */
export class DirTimes {
  private saved = new Map<string, { dir: Buffer; atimeNs: bigint; mtimeNs: bigint }>();

  async remember(abs: Buffer): Promise<void> {
    const dir = parentOf(abs);
    const key = dir.toString('hex');
    if (this.saved.has(key)) return;
    const st = await lstat(dir, { bigint: true });
    this.saved.set(key, { dir, atimeNs: st.atimeNs, mtimeNs: st.mtimeNs });
  }

  async restore(): Promise<void> {
    for (const d of this.saved.values()) {
      const fh = await open(d.dir, constants.O_RDONLY | constants.O_DIRECTORY);
      try {
        futimens(fh.fd, d.atimeNs, d.mtimeNs);
      } finally {
        await fh.close();
      }
    }
    this.saved.clear();
  }
}

/** Runs `fn` on the file opened read-only (enough for ioctls such as the inode flags). */
export async function withFd<T>(path: string | Buffer, fn: (fh: FileHandle) => T | Promise<T>): Promise<T> {
  const fh = await openRead(path);
  try {
    return await fn(fh);
  } finally {
    await fh.close();
  }
}

/** Removes temporary links an interrupted run left in the scanned trees (only links to store inodes). */
export async function removeStaleTemps(dirs: Iterable<Buffer>, storeInodes: ReadonlySet<string>): Promise<number> {
  let removed = 0;
  for (const dir of dirs) {
    let names: Buffer[];
    try {
      names = await readdir(dir, { encoding: 'buffer' });
    } catch {
      continue;
    }
    for (const n of names) {
      if (!n.toString('latin1').startsWith(TMP_PREFIX)) continue;
      const abs = Buffer.concat([dir, Buffer.from('/'), n]);
      const st = await lstat(abs, { bigint: true }).catch(() => undefined);
      if (st?.isFile() && storeInodes.has(`${st.dev}:${st.ino}`)) {
        await keepDirTimes(abs, () => unlink(abs));
        removed++;
      }
    }
  }
  return removed;
}

export function isTempName(path: string): boolean {
  return path.slice(path.lastIndexOf('/') + 1).startsWith(TMP_PREFIX);
}

