/**
 * Store garbage collection. A dedupe object pins the blocks it was cloned from: once no container
 * file shares any of them any more (all rewritten or deleted), it only costs space. A hardlink
 * object nobody links (link count 1) and no journal record names is the same.
 */
import { constants } from 'node:fs';
import { open, rm } from 'node:fs/promises';
import { ContentStore } from './content-store.js';
import { anyShared, extents } from './extents.js';
import { setImmutable } from './inode-flags.js';
import { readJournal } from './journal.js';
import { usedBytes } from './probe.js';

export interface GcReport {
  store: string;
  dryRun: boolean;
  objectsExamined: number;
  objectsRemoved: number;
  /** Sum of the removed objects' sizes. */
  bytesRemoved: number;
  usedBefore: number;
  usedAfter: number;
  bytesFreed: number;
}

export async function gcStore(storeDir: string, opts: { dryRun?: boolean } = {}): Promise<GcReport> {
  const store = new ContentStore(storeDir);
  const dryRun = opts.dryRun ?? false;
  const r: GcReport = { store: storeDir, dryRun, objectsExamined: 0, objectsRemoved: 0, bytesRemoved: 0, usedBefore: 0, usedAfter: 0, bytesFreed: 0 };
  if (!(await store.exists())) return r;
  const unlock = dryRun ? async () => {} : await store.lock();
  try {
    r.usedBefore = await usedBytes(storeDir);
    for (const o of await store.list('objects')) {
      r.objectsExamined++;
      const fh = await open(o.path, constants.O_RDONLY);
      let garbage: boolean;
      try {
        garbage = !anyShared(extents(fh.fd));
      } finally {
        await fh.close();
      }
      if (!garbage) continue;
      if (!dryRun) await rm(o.path);
      r.objectsRemoved++;
      r.bytesRemoved += o.size;
    }
    const referenced = new Set<string>();
    try {
      for (const rec of await readJournal(store.journalPath)) referenced.add(rec.object);
    } catch (e) {
      if ((e as { code?: string }).code !== 'UNIFY_JOURNAL_MISSING') throw e;
    }
    for (const o of await store.list('links')) {
      r.objectsExamined++;
      if (o.nlink !== 1 || referenced.has(o.path)) continue;
      if (!dryRun) {
        const fh = await open(o.path, constants.O_RDONLY);
        try {
          setImmutable(fh.fd, false);
        } finally {
          await fh.close();
        }
        await rm(o.path);
      }
      r.objectsRemoved++;
      r.bytesRemoved += o.size;
    }
    r.usedAfter = dryRun ? r.usedBefore : await usedBytes(storeDir);
    r.bytesFreed = r.usedBefore - r.usedAfter;
  } finally {
    await unlock();
  }
  return r;
}
