/**
 * What a file system can do, found out by trying it on probe files rather than by guessing from
 * its type: XFS made without reflink=1 answers FIDEDUPERANGE like ext4 does (EOPNOTSUPP), and
 * btrfs, bcachefs or a future file system may support it without us listing them.
 */
import { constants } from 'node:fs';
import { copyFile, mkdtemp, open, readFile, rm, stat, statfs, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { dedupeWhole } from './dedupe-range.js';
import { setImmutable } from './inode-flags.js';
import { ErrnoError, syncfs } from './libc.js';

/** statfs f_type values of the file systems worth naming in a message. */
const FS_NAMES: Record<number, string> = {
  0x58465342: 'xfs',
  0x9123683e: 'btrfs',
  0xef53: 'ext4',
  0x01021994: 'tmpfs',
  0x794c7630: 'overlayfs',
  0x2fc12fc1: 'zfs',
  0xca451a4e: 'bcachefs',
  0xf2f52010: 'f2fs',
  0x6969: 'nfs',
  0x65735546: 'fuse',
};

export interface FsInfo {
  /** Name of the file system type (`xfs`, `ext4`, ... or `0x<magic>`). */
  type: string;
  /** Device number `major:minor` as stat reports it for files on it. */
  device: string;
  dev: bigint;
}

export interface Capabilities {
  /** FIDEDUPERANGE shares blocks of equal files. */
  dedupe: boolean;
  /** FICLONE makes a copy that shares blocks (used for store objects). */
  clone: boolean;
  /** The immutable inode flag can be set (hardlink mode). */
  immutable: boolean;
  /** Why a capability is missing, as the kernel answered. */
  notes: string[];
}

export async function fsInfo(path: string): Promise<FsInfo> {
  const [sf, st] = await Promise.all([statfs(path), stat(path, { bigint: true })]);
  const dev = st.dev;
  const major = Number(((dev >> 8n) & 0xfffn) | ((dev >> 32n) & ~0xfffn));
  const minor = Number((dev & 0xffn) | ((dev >> 12n) & ~0xffn));
  return { type: FS_NAMES[sf.type] ?? `0x${sf.type.toString(16)}`, device: `${major}:${minor}`, dev };
}

/**
 * Space in use on the file system holding `path`, in bytes, as statfs counts it (blocks minus
 * free blocks), after a syncfs so that what was just freed or allocated is counted.
 */
export async function usedBytes(path: string): Promise<number> {
  const fh = await open(path, 'r');
  try {
    syncfs(fh.fd);
  } finally {
    await fh.close();
  }
  // Freed inodes are released by a background worker on some file systems (XFS inodegc):
  // read until two answers agree, for at most a second.
  let last = -1;
  for (let i = 0; i < 40; i++) {
    const s = await statfs(path, { bigint: true });
    const used = Number((s.blocks - s.bfree) * s.bsize);
    if (used === last) return used;
    last = used;
    await new Promise((r) => setTimeout(r, 25));
  }
  return last;
}

const PROBE_BYTES = 64 * 1024;

/** Tries dedupe, clone and the immutable flag on probe files in a temporary directory of `dir`. */
export async function probe(dir: string): Promise<Capabilities> {
  const tmp = await mkdtemp(join(dir, '.ferry-probe-'));
  const notes: string[] = [];
  try {
    const a = join(tmp, 'a');
    const b = join(tmp, 'b');
    const content = Buffer.alloc(PROBE_BYTES, 'ferry unify probe\n');
    await writeFile(a, content);
    await writeFile(b, content);

    let dedupe = false;
    const fa = await open(a, 'r');
    const fb = await open(b, 'r');
    try {
      const [r] = await dedupeWhole(fa.fd, [fb.fd], PROBE_BYTES);
      dedupe = r?.result === 'same';
      if (!dedupe) notes.push(`FIDEDUPERANGE answered ${r?.result === 'error' ? errnoText(r.errno) : r?.result}`);
    } catch (e) {
      notes.push(e instanceof ErrnoError ? `FIDEDUPERANGE failed: ${e.code}` : String(e));
    } finally {
      await fa.close();
      await fb.close();
    }

    let clone = false;
    try {
      await copyFile(a, join(tmp, 'c'), constants.COPYFILE_FICLONE_FORCE);
      clone = (await readFile(join(tmp, 'c'))).equals(content);
    } catch (e) {
      notes.push(`FICLONE failed: ${(e as NodeJS.ErrnoException).code ?? String(e)}`);
    }

    let immutable = false;
    const fh = await open(a, 'r');
    try {
      setImmutable(fh.fd, true);
      immutable = true;
      setImmutable(fh.fd, false);
    } catch (e) {
      notes.push(e instanceof ErrnoError ? `setting the immutable flag failed: ${e.code}` : String(e));
    } finally {
      await fh.close();
    }
    return { dedupe, clone, immutable, notes };
  } finally {
    await rm(tmp, { recursive: true, force: true });
  }
}

function errnoText(errno: number): string {
  return errno ? new ErrnoError('', errno).code : 'a short count';
}
