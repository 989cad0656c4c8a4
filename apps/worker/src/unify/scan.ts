/**
 * Walks one container's root filesystem: regular files only, never following symlinks, never
 * entering another file system (a mount point inside the rootfs is left alone). Names are kept as
 * raw bytes so that no file name, valid UTF-8 or not, is ever mangled.
 */
import { lstat, readdir } from 'node:fs/promises';
import type { Decision, Exclusions } from './exclusions.js';

export interface FileRec {
  /** Index of the rootfs in the caller's list. */
  root: number;
  /** Absolute path, raw bytes. */
  abs: Buffer;
  /** `/`-rooted path inside the rootfs, as text (lossy for names that are not UTF-8). */
  path: string;
  dev: bigint;
  ino: bigint;
  nlink: number;
  size: number;
  mode: number;
  uid: number;
  gid: number;
  atimeNs: bigint;
  mtimeNs: bigint;
  /** Excluded by a rule: never changed, but it still counts as a link of its inode. */
  excluded: boolean;
}

export interface ScanResult {
  files: FileRec[];
  /** Regular files considered (included or excluded; skipped ones are not seen at all). */
  examined: number;
  excluded: number;
  /** Directories not entered because they are on another file system. */
  otherFs: string[];
}

const SLASH = Buffer.from('/');

export async function scanRootfs(
  root: number,
  rootfs: string,
  rules: Exclusions,
  opts: { minSize: number; signal?: AbortSignal },
): Promise<ScanResult> {
  const top = await lstat(rootfs, { bigint: true });
  const res: ScanResult = { files: [], examined: 0, excluded: 0, otherFs: [] };
  const stack: Array<{ abs: Buffer; path: string; decision: Decision }> = [
    { abs: Buffer.from(rootfs.replace(/\/+$/, ''), 'utf8'), path: '', decision: 'include' },
  ];
  while (stack.length) {
    opts.signal?.throwIfAborted();
    const dir = stack.pop()!;
    let names: Buffer[];
    try {
      names = await readdir(dir.abs, { encoding: 'buffer' });
    } catch (e) {
      // A directory removed under a running container is not an error of ours.
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') continue;
      throw e;
    }
    for (let i = 0; i < names.length; i += 64) {
      const batch = names.slice(i, i + 64);
      const stats = await Promise.all(
        batch.map(async (name) => {
          const abs = Buffer.concat([dir.abs, SLASH, name]);
          try {
            return { name, abs, st: await lstat(abs, { bigint: true }) };
          } catch (e) {
            if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
            throw e;
          }
        }),
      );
      for (const s of stats) {
        if (!s) continue;
        const path = `${dir.path}/${s.name.toString('utf8')}`;
        const decision = rules.decide(path, dir.decision);
        if (decision === 'skip') continue;
        if (s.st.isDirectory()) {
          if (s.st.dev !== top.dev) res.otherFs.push(path);
          else stack.push({ abs: s.abs, path, decision });
          continue;
        }
        if (!s.st.isFile() || s.st.dev !== top.dev) continue;
        res.examined++;
        if (decision === 'exclude') {
          res.excluded++;
          // Kept only as evidence that its inode has a link we must not touch.
          if (s.st.nlink < 2n) continue;
        } else if (Number(s.st.size) < opts.minSize) continue;
        res.files.push({
          root,
          abs: s.abs,
          path,
          dev: s.st.dev,
          ino: s.st.ino,
          nlink: Number(s.st.nlink),
          size: Number(s.st.size),
          mode: Number(s.st.mode & 0o7777n),
          uid: Number(s.st.uid),
          gid: Number(s.st.gid),
          atimeNs: s.st.atimeNs,
          mtimeNs: s.st.mtimeNs,
          excluded: decision === 'exclude',
        });
      }
    }
  }
  return res;
}
