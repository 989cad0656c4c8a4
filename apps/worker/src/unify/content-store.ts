/**
 * The content store of one file system: one kept copy per content, named by SHA-256 in two-level
 * fan-out directories, next to the containers (`<lxcPath>/.ferry-store`), never inside a rootfs.
 *
 *   objects/ab/cd/<sha256>          dedupe mode: a reflink clone whose blocks the files share
 *   links/ab/cd/<sha256>-<meta>     hardlink mode: one more link of the shared inode; `<meta>`
 *                                   names mode, owner, mtime, flags and xattrs, since an inode
 *                                   carries those too
 *   journal.jsonl                   hardlink mode: what revert needs (see journal.ts)
 *   fs.json                         what the probe found out about this file system
 *   lock                            one run at a time
 *
 * A store object outlives the container files it was made from, so a container that arrives
 * later is unified against the store without reading the others again.
 */
import { hostname } from 'node:os';
import { lstat, mkdir, open, readFile, readdir, rename, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { FerryError } from '@ferry/core';

export type ObjectKind = 'objects' | 'links';

export interface StoredObject {
  kind: ObjectKind;
  path: string;
  sha256: string;
  size: number;
  dev: bigint;
  ino: bigint;
  nlink: number;
}

export const STORE_DIR_NAME = '.ferry-store';

export class ContentStore {
  constructor(readonly dir: string) {}

  objectPath(sha256: string): string {
    return join(this.dir, 'objects', sha256.slice(0, 2), sha256.slice(2, 4), sha256);
  }

  linkPath(sha256: string, metaKey: string): string {
    return join(this.dir, 'links', sha256.slice(0, 2), sha256.slice(2, 4), `${sha256}-${metaKey}`);
  }

  get journalPath(): string {
    return join(this.dir, 'journal.jsonl');
  }

  get tmpDir(): string {
    return join(this.dir, 'tmp');
  }

  async exists(): Promise<boolean> {
    try {
      return (await lstat(this.dir)).isDirectory();
    } catch {
      return false;
    }
  }

  /** Creates the store, root-only: it holds inodes of every container. */
  async create(): Promise<void> {
    await mkdir(this.dir, { recursive: true, mode: 0o700 });
    for (const d of ['objects', 'links', 'tmp']) await mkdir(join(this.dir, d), { mode: 0o700, recursive: true });
  }

  /** Removes what an interrupted run left in tmp/ (call with the lock held). */
  async cleanTmp(): Promise<void> {
    for (const n of await readdir(this.tmpDir)) await rm(join(this.tmpDir, n), { force: true });
  }

  async ensureParent(path: string): Promise<void> {
    await mkdir(join(path, '..'), { recursive: true, mode: 0o700 });
  }

  /**
   * Takes the store's lock (a file created exclusively holding pid and host). A lock whose
   * process is gone on this host is stale and taken over.
   */
  async lock(): Promise<() => Promise<void>> {
    const path = join(this.dir, 'lock');
    const me = JSON.stringify({ pid: process.pid, host: hostname(), at: new Date().toISOString() });
    for (let attempt = 0; attempt < 2; attempt++) {
      try {
        await writeFile(path, me, { flag: 'wx', mode: 0o600 });
        return async () => {
          await rm(path, { force: true });
        };
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
      }
      let holder: { pid?: number; host?: string } = {};
      try {
        holder = JSON.parse(await readFile(path, 'utf8')) as typeof holder;
      } catch {
        // Unreadable or half-written: treat as stale.
      }
      if (holder.host === hostname() && holder.pid && alive(holder.pid)) {
        throw new FerryError('UNIFY_BUSY', `the unify store ${this.dir} is in use by process ${holder.pid}`, {
          retryable: true,
          details: { store: this.dir, pid: holder.pid },
        });
      }
      await rm(path, { force: true });
    }
    throw new FerryError('UNIFY_BUSY', `could not take the lock of the unify store ${this.dir}`, { retryable: true });
  }

  /** Every object of one kind, with its size and inode (a walk of the fan-out directories). */
  async list(kind: ObjectKind): Promise<StoredObject[]> {
    const out: StoredObject[] = [];
    const top = join(this.dir, kind);
    for (const a of await readdirOrEmpty(top)) {
      for (const b of await readdirOrEmpty(join(top, a))) {
        for (const name of await readdirOrEmpty(join(top, a, b))) {
          const path = join(top, a, b, name);
          const st = await lstat(path, { bigint: true }).catch(() => undefined);
          if (!st?.isFile()) continue;
          out.push({
            kind,
            path,
            sha256: name.slice(0, 64),
            size: Number(st.size),
            dev: st.dev,
            ino: st.ino,
            nlink: Number(st.nlink),
          });
        }
      }
    }
    return out;
  }

  /** Writes a small file atomically and durably (temp, fsync, rename). */
  async writeDurable(name: string, text: string): Promise<void> {
    const path = join(this.dir, name);
    const tmp = join(this.tmpDir, `${name}.${process.pid}`);
    const fh = await open(tmp, 'w', 0o600);
    try {
      await fh.writeFile(text);
      await fh.sync();
    } finally {
      await fh.close();
    }
    await rename(tmp, path);
    await syncDir(this.dir);
  }
}

async function readdirOrEmpty(dir: string): Promise<string[]> {
  try {
    return await readdir(dir);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw e;
  }
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** fsync of a directory, so that a rename in it survives a crash. */
export async function syncDir(dir: string | Buffer): Promise<void> {
  const fh = await open(dir, 'r');
  try {
    await fh.sync();
  } finally {
    await fh.close();
  }
}
