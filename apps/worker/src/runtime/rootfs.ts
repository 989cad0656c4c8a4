/**
 * Reading and writing files inside a (stopped) container's rootfs from the host without ever
 * following a symlink the container put there: an absolute link in the rootfs points into the
 * host's own tree when resolved from outside, so `/etc/hostname -> /etc/shadow` must not make
 * ferry read or overwrite the host's file. Intermediate directories must be real directories;
 * a file that is a symlink is replaced (rename over the link), never written through. The rootfs
 * directory itself counts: it must be a real directory too.
 */
import { randomBytes } from 'node:crypto';
import { chown, lstat, open, readFile, readdir, rename, rm, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import { PreconditionError } from '@ferry/core';

function parts(rel: string): string[] {
  const p = rel.split('/').filter(Boolean);
  if (!p.length || p.some((x) => x === '.' || x === '..')) throw new Error(`not a plain relative path: ${rel}`);
  return p;
}

/**
 * The host path of the directory `relDir` in `rootfs` when every component is a real directory
 * (no symlink); null when one is missing. A symlinked or non-directory component → ROOTFS_UNSAFE_PATH.
 */
export async function rootfsDir(rootfs: string, relDir: string): Promise<string | null> {
  // The rootfs itself first: a rootfs path that is a symlink (its config names it; a copied
  // container's tree may have one at its top) would carry every write below to where it points.
  const top = await lstat(rootfs);
  if (!top.isDirectory()) {
    throw new PreconditionError('ROOTFS_UNSAFE_PATH', `the rootfs ${rootfs} is ${top.isSymbolicLink() ? 'a symlink' : 'not a directory'}; ferry does not follow it`, {
      path: rootfs,
    });
  }
  let cur = rootfs;
  for (const c of relDir === '' || relDir === '/' ? [] : parts(relDir)) {
    cur = join(cur, c);
    let st;
    try {
      st = await lstat(cur);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return null;
      throw e;
    }
    if (!st.isDirectory()) {
      throw new PreconditionError('ROOTFS_UNSAFE_PATH', `${cur} is ${st.isSymbolicLink() ? 'a symlink' : 'not a directory'}; ferry does not follow it`, {
        path: cur,
      });
    }
  }
  return cur;
}

function split(rel: string): { dir: string; base: string } {
  const p = parts(rel);
  return { dir: p.slice(0, -1).join('/'), base: p[p.length - 1]! };
}

/** What `rel` is in the rootfs, without following a final symlink. */
export async function rootfsEntry(rootfs: string, rel: string): Promise<'file' | 'symlink' | 'other' | 'missing'> {
  const { dir, base } = split(rel);
  const d = await rootfsDir(rootfs, dir);
  if (!d) return 'missing';
  try {
    const st = await lstat(join(d, base));
    return st.isSymbolicLink() ? 'symlink' : st.isFile() ? 'file' : 'other';
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return 'missing';
    throw e;
  }
}

/** Content of a regular file in the rootfs; null when missing, a symlink or not a regular file. */
export async function readRootfsFile(rootfs: string, rel: string): Promise<string | null> {
  if ((await rootfsEntry(rootfs, rel)) !== 'file') return null;
  const { dir, base } = split(rel);
  const d = (await rootfsDir(rootfs, dir))!;
  return readFile(join(d, base), 'utf8');
}

/**
 * Writes a file in the rootfs atomically (temporary file + rename in the same directory). A regular
 * file keeps its mode and owner; a new file (or one replacing a symlink) gets mode 0644 and the
 * owner of its directory (the container's root, also in an unprivileged container). The directory
 * must exist: false when it does not.
 */
export async function writeRootfsFile(rootfs: string, rel: string, content: string): Promise<boolean> {
  const { dir, base } = split(rel);
  const d = await rootfsDir(rootfs, dir);
  if (!d) return false;
  const target = join(d, base);
  const dst = await lstat(d);
  let mode = 0o644;
  let uid = dst.uid;
  let gid = dst.gid;
  try {
    const st = await lstat(target);
    if (st.isFile()) {
      mode = st.mode & 0o7777;
      uid = st.uid;
      gid = st.gid;
    } else if (!st.isSymbolicLink()) {
      throw new PreconditionError('ROOTFS_UNSAFE_PATH', `${target} is not a regular file`, { path: target });
    }
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
  }
  const tmp = join(d, `.${base}.ferry-${randomBytes(4).toString('hex')}`);
  try {
    // 'wx' = O_CREAT|O_EXCL: never opens an existing file or a symlink.
    const fh = await open(tmp, 'wx', mode);
    try {
      await fh.writeFile(content);
      await fh.chmod(mode);
    } finally {
      await fh.close();
    }
    await chown(tmp, uid, gid);
    await rename(tmp, target);
  } catch (e) {
    await rm(tmp, { force: true });
    throw e;
  }
  return true;
}

/**
 * Removes the entries of a rootfs directory whose names match (files and symlinks only; the link
 * itself, never its target). Returns their paths as seen inside the container (`/etc/ssh/x`).
 */
export async function removeRootfsEntries(rootfs: string, relDir: string, match: (name: string) => boolean): Promise<string[]> {
  const d = await rootfsDir(rootfs, relDir);
  if (!d) return [];
  const removed: string[] = [];
  for (const e of await readdir(d, { withFileTypes: true })) {
    if (!match(e.name) || e.isDirectory()) continue;
    await unlink(join(d, e.name));
    removed.push(`/${parts(relDir).join('/')}/${e.name}`);
  }
  return removed.sort();
}
