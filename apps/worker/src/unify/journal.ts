/**
 * The hardlink journal: JSON lines in the store, appended and fsync'd before the changes they
 * describe, so that revert can rebuild every file exactly even after a crash mid-run. A record
 * describes one original inode (all its paths) and the shared inode those paths were pointed at;
 * a record whose paths never got linked (crash before the change) is recognised by its inode and
 * left alone by revert.
 */
import { open, readFile, rename, type FileHandle } from 'node:fs/promises';
import { dirname } from 'node:path';
import { FerryError } from '@ferry/core';
import { syncDir } from './content-store.js';

export interface LinkRecord {
  t: 'link';
  /** Id of the run that wrote it. */
  run: string;
  /** `rep`: its inode became the shared one; `dup`: its paths were replaced by links. */
  role: 'rep' | 'dup';
  /** Absolute rootfs path as given to unify. */
  rootfs: string;
  /** Absolute paths of every link of the original inode, as text; `rawPaths` as hex when lossy. */
  paths: string[];
  rawPaths?: string[];
  /** The store link of the shared inode. */
  object: string;
  /** Inode all the paths point to after the change. */
  sharedIno: string;
  dev: string;
  origIno: string;
  size: number;
  sha256: string;
  mode: number;
  uid: number;
  gid: number;
  atimeNs: string;
  mtimeNs: string;
  /** Inode flags (other than immutable, which is what we add). */
  flags: number;
  /** Every extended attribute, name → base64 value. */
  xattrs: Record<string, string>;
}

export type JournalRecord = LinkRecord;

export class Journal {
  private constructor(
    readonly path: string,
    private fh: FileHandle,
  ) {}

  static async open(path: string): Promise<Journal> {
    const fh = await open(path, 'a', 0o600);
    await syncDir(dirname(path));
    return new Journal(path, fh);
  }

  /** Appends records and makes them durable before the caller acts on them. */
  async write(records: readonly JournalRecord[]): Promise<void> {
    if (!records.length) return;
    await this.fh.write(records.map((r) => `${JSON.stringify(r)}\n`).join(''));
    await this.fh.datasync();
  }

  async close(): Promise<void> {
    await this.fh.close();
  }
}

/**
 * Reads the journal. A torn last line (crash while appending, before its change was made) is
 * ignored; a damaged line elsewhere is an error, since revert must not guess.
 */
export async function readJournal(path: string): Promise<JournalRecord[]> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') {
      throw new FerryError('UNIFY_JOURNAL_MISSING', `no unify journal at ${path}: nothing was hardlinked with this store, or it was removed`, {
        details: { journal: path },
      });
    }
    throw e;
  }
  const lines = text.split('\n');
  const out: JournalRecord[] = [];
  lines.forEach((line, i) => {
    if (!line.trim()) return;
    try {
      out.push(JSON.parse(line) as JournalRecord);
    } catch {
      const isLast = lines.slice(i + 1).every((l) => !l.trim());
      if (!isLast) {
        throw new FerryError('UNIFY_JOURNAL_CORRUPT', `line ${i + 1} of the unify journal ${path} is not valid JSON`, {
          details: { journal: path, line: i + 1 },
        });
      }
    }
  });
  return out;
}

/** Replaces the journal with `records` (temp file, fsync, rename, fsync of the directory). */
export async function rewriteJournal(path: string, records: readonly JournalRecord[]): Promise<void> {
  const tmp = `${path}.rewrite`;
  const fh = await open(tmp, 'w', 0o600);
  try {
    await fh.writeFile(records.map((r) => `${JSON.stringify(r)}\n`).join(''));
    await fh.sync();
  } finally {
    await fh.close();
  }
  await rename(tmp, path);
  await syncDir(dirname(path));
}
