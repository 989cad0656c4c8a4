/**
 * From scanned files to duplicate groups: files are grouped by inode (a file with several links is
 * one file), inodes by size, and only sizes seen more than once, or held by a store object, are
 * read and hashed. A group is one content (SHA-256) with the inodes that hold it.
 */
import { openSame, pool, sha256Of } from './content.js';
import type { FileProblem } from './report.js';
import type { FileRec } from './scan.js';

export interface Inode {
  /** `dev:ino` */
  key: string;
  dev: bigint;
  ino: bigint;
  /** Its included paths, in scan order. */
  files: FileRec[];
  size: number;
  nlink: number;
  sha256?: string;
  /** ctime when hashing began: unchanged later means the content is still what was hashed. */
  ctimeNs?: bigint;
}

export interface ContentGroup {
  sha256: string;
  size: number;
  inodes: Inode[];
}

export interface InodeTable {
  inodes: Inode[];
  /** Inodes left alone because one of their links is excluded. */
  withExcludedLink: number;
}

/** Groups scanned files by inode; an inode with any excluded link is not a candidate. */
export function inodeTable(files: readonly FileRec[]): InodeTable {
  const byKey = new Map<string, { inode: Inode; excluded: boolean }>();
  for (const f of files) {
    const key = `${f.dev}:${f.ino}`;
    let e = byKey.get(key);
    if (!e) {
      e = { inode: { key, dev: f.dev, ino: f.ino, files: [], size: f.size, nlink: f.nlink }, excluded: false };
      byKey.set(key, e);
    }
    if (f.excluded) e.excluded = true;
    else e.inode.files.push(f);
  }
  const inodes: Inode[] = [];
  let withExcludedLink = 0;
  for (const { inode, excluded } of byKey.values()) {
    if (!inode.files.length) continue;
    if (excluded) withExcludedLink++;
    else inodes.push(inode);
  }
  return { inodes, withExcludedLink };
}

export interface HashOptions {
  /** Sizes of store objects: a lone file of such a size may match one. */
  storeSizes: ReadonlySet<number>;
  /** Whether a store object of this content exists (a lone file then still forms a group). */
  inStore: (sha256: string) => boolean;
  concurrency: number;
  rootfs: readonly string[];
  problems: FileProblem[];
  signal?: AbortSignal;
}

export interface Grouping {
  groups: ContentGroup[];
  /** Inodes that vanished or changed between scan and hashing. */
  changed: number;
}

export async function contentGroups(inodes: readonly Inode[], opts: HashOptions): Promise<Grouping> {
  const bySize = new Map<number, Inode[]>();
  for (const i of inodes) {
    const l = bySize.get(i.size);
    if (l) l.push(i);
    else bySize.set(i.size, [i]);
  }
  const toHash: Inode[] = [];
  for (const [size, list] of bySize) if (list.length > 1 || opts.storeSizes.has(size)) toHash.push(...list);

  let changed = 0;
  await pool(toHash, opts.concurrency, async (inode) => {
    opts.signal?.throwIfAborted();
    const f = inode.files[0]!;
    const fh = await openSame(f.abs, inode).catch((e: NodeJS.ErrnoException) => {
      opts.problems.push({ path: f.path, rootfs: opts.rootfs[f.root]!, code: e.code ?? 'ERROR', message: e.message });
      return undefined;
    });
    if (!fh) {
      changed++;
      return;
    }
    try {
      inode.ctimeNs = (await fh.stat({ bigint: true })).ctimeNs;
      inode.sha256 = await sha256Of(fh, inode.size);
      // Written while we read: the hash is of no particular version.
      const after = await fh.stat({ bigint: true });
      if (after.ctimeNs !== inode.ctimeNs || Number(after.size) !== inode.size) {
        inode.sha256 = undefined;
        changed++;
      }
    } finally {
      await fh.close();
    }
  });

  const bySha = new Map<string, Inode[]>();
  for (const i of toHash) {
    if (!i.sha256) continue;
    const l = bySha.get(i.sha256);
    if (l) l.push(i);
    else bySha.set(i.sha256, [i]);
  }
  const groups: ContentGroup[] = [];
  for (const [sha256, list] of bySha) {
    if (list.length > 1 || opts.inStore(sha256)) groups.push({ sha256, size: list[0]!.size, inodes: list });
  }
  // Larger contents first: an interrupted run has then done the most useful part.
  groups.sort((a, b) => b.size * (b.inodes.length - 1) - a.size * (a.inodes.length - 1) || (a.sha256 < b.sha256 ? -1 : 1));
  return { groups, changed };
}

