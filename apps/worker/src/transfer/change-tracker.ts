import { lstat, readdir, readFile } from 'node:fs/promises';
import { CommandError, FerryError } from '@ferry/core';
import { run } from '@ferry/infra';

/**
 * What changed in a tree since a moment, found from the kernel's ctime: every change a file can
 * undergo (content, size, mode, owner, xattrs and ACLs, link count, rename, a punched hole) sets
 * its inode's ctime to "now", and no user-space call can set a ctime back. So a file rewritten with
 * its size kept and its mtime put back (`cp -p`, `tar x`, `rsync -t`) still shows. A directory's
 * ctime moves when an entry is added, removed or renamed in it: those directories carry deletions.
 *
 * A directory found at a path where the previous walk did not see that same inode (new, renamed,
 * or moved in from elsewhere) may hold entries whose own ctime is old: it is sent whole.
 */

/** Seconds (kernel ctime, as `find -printf %C@` prints it). */
export type CtimeSec = number;

/**
 * Margin subtracted from `since`: ctimes come from the kernel's coarse clock (a tick behind the
 * real time at most), so a change made just after a stamp can carry a ctime a little before it.
 * Over-inclusion only costs a content comparison of a few more files.
 */
export const SINCE_MARGIN_S = 1;

export interface Walk {
  /** Directories of the tree, relative path (`.` for the root) → inode number. */
  dirs: Map<string, string>;
  /** Non-directories whose ctime is at or after `since` (none when `since` is undefined). */
  changedFiles: string[];
  /** Directories whose ctime is at or after `since`: their entries are mirrored, deletions included. */
  changedDirs: string[];
}

export interface ChangeSet {
  /** Paths for rsync's `--files-from` (with `-d`): files as they are, directories as `dir/.`. */
  list: string[];
  files: number;
  dirs: number;
  /** Directories sent whole (new at their path since the previous walk). */
  trees: number;
}

/**
 * One walk of `root` by `find` (C speed: one lstat per entry, no file read). Without `since`, it
 * only lists the directories (the listing the next walk compares with). Entries named in `skip`
 * (relative paths: ferry's own files in the container dir) and everything below them are left out.
 */
export async function walk(root: string, since: CtimeSec | undefined, opts: { skip?: readonly string[]; signal?: AbortSignal } = {}): Promise<Walk> {
  const prune: string[] = [];
  for (const s of opts.skip ?? []) prune.push('-path', `./${s}`, '-prune', '-o');
  const files = since === undefined ? ['-false'] : ['-newerct', `@${(since - SINCE_MARGIN_S).toFixed(9)}`, '-printf', 'f\\0%P\\0'];
  // d <inode> <ctime> <path> for every directory; f <path> for changed non-directories.
  const expr = [...prune, '-type', 'd', '-printf', 'd\\0%i\\0%C@\\0%P\\0', '-o', ...files];
  // Names are bytes, not always UTF-8: they are kept as latin1 strings (one char per byte) from
  // here to the --files-from file, so every name reaches rsync exactly as the kernel has it.
  const chunks: Buffer[] = [];
  try {
    await run('find', ['.', ...expr], {
      cwd: root,
      timeoutMs: 30 * 60_000,
      keep: 1,
      onStdoutBytes: (b) => chunks.push(b),
      ...(opts.signal ? { signal: opts.signal } : {}),
    });
  } catch (e) {
    // find exits 1 when an entry went away between its readdir and its lstat: a running
    // container's writer raced the walk. Walked again (the step's retry), it is not an error.
    if (e instanceof CommandError && e.failure.exitCode === 1) {
      throw new FerryError('WALK_RACED', `the walk of ${root} met entries changing under it (find exited 1); walked again`, { retryable: true, cause: e });
    }
    throw e;
  }
  const parts = Buffer.concat(chunks).toString('latin1').split('\0');
  const out: Walk = { dirs: new Map(), changedFiles: [], changedDirs: [] };
  const limit = since === undefined ? Infinity : since - SINCE_MARGIN_S;
  for (let i = 0; i < parts.length - 1; ) {
    const kind = parts[i++];
    if (kind === 'd') {
      const inode = parts[i++]!;
      const ctime = Number(parts[i++]);
      const p = parts[i++] || '.';
      out.dirs.set(p, inode);
      if (!(ctime < limit)) out.changedDirs.push(p);
    } else if (kind === 'f') {
      out.changedFiles.push(parts[i++]!);
    } else {
      throw new Error(`find output not understood at field ${i - 1}: ${JSON.stringify(kind)}`);
    }
  }
  return out;
}

/**
 * The list one tracked pass sends: changed files; the entries of each changed directory (so
 * rsync's `--delete` removes what was deleted or renamed away there); every directory of a tree
 * that is new at its path, level by level, so its old-ctime contents arrive too.
 */
export function changeSet(now: Walk, previousDirs: ReadonlyMap<string, string>): ChangeSet {
  const list: string[] = [...now.changedFiles];
  const seen = new Set<string>();
  const addDir = (d: string) => {
    if (seen.has(d)) return;
    seen.add(d);
    list.push(d === '.' ? '.' : `${d}/.`);
  };
  const newRoots: string[] = [];
  for (const d of now.changedDirs) {
    addDir(d);
    if (d !== '.' && previousDirs.get(d) !== now.dirs.get(d)) newRoots.push(d);
  }
  // Every directory at or under a new root (the walk lists all directories, so no second walk).
  let trees = 0;
  if (newRoots.length) {
    const roots = new Set(newRoots);
    for (const d of now.dirs.keys()) {
      for (let p = d; p !== '.' && p !== ''; p = parentOf(p)) {
        if (roots.has(p)) {
          if (!seen.has(d)) trees++;
          addDir(d);
          break;
        }
      }
    }
  }
  return { list, files: now.changedFiles.length, dirs: now.changedDirs.length, trees };
}

/** Whether `p` is one of `skip` or lies below one. */
function skipped(p: string, skip: readonly string[]): boolean {
  return skip.some((s) => p === s || p.startsWith(`${s}/`));
}

/**
 * The list of a pass from the change watcher's events (see fs-watch.ts) and from what the
 * container holds open for writing (`extra`, files whose writes through a mapping fanotify cannot
 * see). `null` when it cannot vouch for it: a changed file with more than one link (rsync keeps a
 * hard link only when every path of the inode is in the list, which only the walk finds).
 */
export async function watchedChangeSet(
  root: string,
  changes: readonly { kind: 'E' | 'F' | 'T'; path: string }[],
  extra: readonly string[],
  skip: readonly string[],
  since: CtimeSec,
  signal?: AbortSignal,
): Promise<ChangeSet | null> {
  const list: string[] = [];
  const seen = new Set<string>();
  const push = (p: string) => {
    if (!seen.has(p)) {
      seen.add(p);
      list.push(p);
    }
  };
  const base = Buffer.from(`${root.replace(/\/+$/, '')}/`, 'latin1');
  let files = 0;
  let dirs = 0;
  let trees = 0;
  const fileLike = [...changes.filter((c) => c.kind === 'F').map((c) => c.path), ...extra];
  for (const p of fileLike) {
    if (skipped(p, skip) || seen.has(p)) continue;
    const st = await lstat(Buffer.concat([base, Buffer.from(p, 'latin1')])).catch(() => null);
    if (st?.isFile() && st.nlink > 1) return null;
    push(p);
    files++;
  }
  for (const c of changes) {
    if (skipped(c.path, skip)) continue;
    if (c.kind === 'E') {
      // Its entries are sent: a changed one with more than one link needs the walk (see above);
      // an unchanged one is left alone by rsync, its link kept on both sides.
      const abs = Buffer.concat([base, Buffer.from(c.path === '.' ? '' : c.path, 'latin1')]);
      const ents = await readdir(abs, { withFileTypes: true, encoding: 'buffer' }).catch(() => []);
      for (const e of ents) {
        if (!e.isFile()) continue;
        const st = await lstat(Buffer.concat([abs, Buffer.from('/'), e.name])).catch(() => null);
        if (st && st.nlink > 1 && st.ctimeMs / 1000 >= since - SINCE_MARGIN_S) return null;
      }
      push(c.path === '.' ? '.' : `${c.path}/.`);
      dirs++;
    } else if (c.kind === 'T') {
      trees++;
      // Every directory of the new tree, level by level (its entries may carry old ctimes).
      const chunks: Buffer[] = [];
      const ok = await run('find', [c.path, '-type', 'd', '-print0'], {
        cwd: root,
        keep: 1,
        onStdoutBytes: (b) => chunks.push(b),
        timeoutMs: 30 * 60_000,
        ...(signal ? { signal } : {}),
      }).then(
        () => true,
        () => false,
      );
      if (!ok) {
        push(c.path); // gone again: listed, it is deleted on the receiver
        continue;
      }
      for (const d of Buffer.concat(chunks).toString('latin1').split('\0')) if (d) push(`${d}/.`);
    }
  }
  return { list, files, dirs, trees };
}

function parentOf(p: string): string {
  const i = p.lastIndexOf('/');
  return i < 0 ? '.' : p.slice(0, i);
}

/**
 * Keeps rsync inside the tree. It resolves a listed path on the sender as a path, following any
 * symlink among its directories: `a/b/.` with `a/b` turned into a symlink to `/etc` would copy
 * the host's /etc into the copy. So every directory a listed path goes through is checked (lstat,
 * once each): where one is not a directory any more, that entry itself is listed in its place
 * (rsync then sends it as what it is, a symlink say) and its parent's entries, whatever lay
 * below it is dropped. Exact while the source is frozen; while it runs, the final pass mends
 * what a race changes (and a copy that goes wrong is never started).
 */
export async function keepInside(root: string, list: readonly string[]): Promise<string[]> {
  const base = `${root.replace(/\/+$/, '')}/`;
  const isDir = new Map<string, boolean>();
  const dirOk = async (d: string): Promise<boolean> => {
    let v = isDir.get(d);
    if (v === undefined) {
      const st = await lstat(Buffer.from(base + d, 'latin1')).catch(() => null);
      v = st === null || st.isDirectory(); // missing: nothing to follow (rsync deletes it there)
      isDir.set(d, v);
    }
    return v;
  };
  const out = new Set<string>();
  for (const entry of list) {
    const path = entry === '.' ? '' : entry.endsWith('/.') ? entry.slice(0, -2) : entry;
    const parts = path === '' ? [] : path.split('/');
    // The directories it goes through: every prefix, and the entry itself when it is `dir/.`.
    const through = entry.endsWith('/.') ? parts.length : parts.length - 1;
    let bad = -1;
    for (let i = 1; i <= through; i++) {
      if (!(await dirOk(parts.slice(0, i).join('/')))) {
        bad = i;
        break;
      }
    }
    if (bad < 0) {
      out.add(entry);
      continue;
    }
    const at = parts.slice(0, bad).join('/');
    out.add(at);
    out.add(bad === 1 ? '.' : `${parts.slice(0, bad - 1).join('/')}/.`);
  }
  return [...out];
}

/** The `--files-from` body: NUL-separated (names may hold newlines), the names' own bytes. */
export function filesFrom(set: ChangeSet): Buffer {
  return Buffer.from(set.list.map((p) => `${p}\0`).join(''), 'latin1');
}

/** Directory listing of a walk, saved between passes (and steps): `inode\0path\0` pairs. */
export function encodeDirs(dirs: ReadonlyMap<string, string>): Buffer {
  const parts: string[] = [];
  for (const [p, ino] of dirs) parts.push(`${ino}\0${p}\0`);
  return Buffer.from(parts.join(''), 'latin1');
}

export function decodeDirs(bytes: Buffer): Map<string, string> {
  const parts = bytes.toString('latin1').split('\0');
  const m = new Map<string, string>();
  for (let i = 0; i + 1 < parts.length; i += 2) m.set(parts[i + 1]!, parts[i]!);
  return m;
}

export async function readDirs(file: string): Promise<Map<string, string> | null> {
  try {
    return decodeDirs(await readFile(file));
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw e;
  }
}
