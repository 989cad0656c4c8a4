/**
 * Dedupe mode: every duplicate keeps its own inode (owner, mode, times, xattrs, ACLs untouched)
 * and only its data blocks become those of the store object of its content. A later write to one
 * container's file is copied-on-write by the file system and changes only that file.
 */
import { constants } from 'node:fs';
import { lstat, open, rename, rm, type FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import { setImmediate as yieldLoop } from 'node:timers/promises';
import { openSame, pool } from './content.js';
import { dedupeWhole, type DedupeOutcome } from './dedupe-range.js';
import { extents, sameBlocks } from './extents.js';
import type { ContentGroup, Inode } from './groups.js';
import { FS_APPEND_FL, FS_IMMUTABLE_FL, getFlags } from './inode-flags.js';
import { ErrnoError, errnoName, ficlone } from './libc.js';
import type { RunCtx as Ctx } from './run-context.js';

/** Groups are independent: a few at a time keep the disk busy while another waits. */
export async function dedupeGroups(groups: readonly ContentGroup[], ctx: Ctx, concurrency = 4): Promise<void> {
  let n = 0;
  await pool(groups, concurrency, async (g) => {
    ctx.signal?.throwIfAborted();
    await dedupeGroup(g, ctx, `${process.pid}-${n++}`);
  });
}

function problem(ctx: Ctx, i: Inode, code: string, message: string): void {
  const f = i.files[0]!;
  ctx.report.problems.push({ path: f.path, rootfs: ctx.rootfs[f.root]!, code, message });
}

async function dedupeGroup(g: ContentGroup, ctx: Ctx, tmpName: string): Promise<void> {
  const { report } = ctx;
  const opened: Array<{ inode: Inode; fh: FileHandle }> = [];
  let objFh: FileHandle | undefined;
  try {
    for (const inode of g.inodes) {
      const fh = await openSame(inode.files[0]!.abs, inode);
      if (!fh) {
        report.filesSkipped++;
        continue;
      }
      // The kernel refuses to remap immutable or append-only files; say so instead of failing.
      if (getFlags(fh.fd) & (FS_IMMUTABLE_FL | FS_APPEND_FL)) {
        report.filesSkipped++;
        await fh.close();
        continue;
      }
      opened.push({ inode, fh });
    }

    const objPath = ctx.store.objectPath(g.sha256);
    const exists = await lstat(objPath).then(
      (s) => s.isFile() && s.size === g.size,
      () => false,
    );
    let members = opened;
    // The source of the dedupe calls: any file already on the object's blocks will do, and one
    // that was just read (hashed) has its pages cached, where a fresh object would be read from disk.
    let srcFd: number | undefined;
    if (exists) objFh = await open(objPath, constants.O_RDONLY);
    else {
      if (opened.length < 2) return;
      // The first file becomes the kept copy: the store object is a clone of its blocks.
      const source = opened[0]!;
      members = opened.slice(1);
      if (!ctx.dryRun) {
        objFh = await createObject(ctx, source, objPath, tmpName);
        if (!objFh) {
          problem(ctx, source.inode, 'CHANGED', 'changed while being cloned into the store');
          report.filesSkipped += opened.length;
          return;
        }
        srcFd = source.fh.fd;
      }
    }
    report.duplicateGroups++;

    const objExtents = objFh ? extents(objFh.fd) : undefined;
    const dests: Array<{ inode: Inode; fh: FileHandle }> = [];
    for (const m of members) {
      if (objExtents && sameBlocks(objExtents, extents(m.fh.fd))) {
        report.filesAlreadyShared++;
        report.bytesAlreadyShared += g.size;
        srcFd ??= m.fh.fd;
      } else dests.push(m);
    }
    if (ctx.dryRun || !objFh) {
      report.filesShared += dests.length;
      report.bytesShared += dests.length * g.size;
      return;
    }
    let outcomes: DedupeOutcome[];
    try {
      outcomes = await dedupeWhole(
        srcFd ?? objFh.fd,
        dests.map((d) => d.fh.fd),
        g.size,
        () => yieldLoop(),
      );
    } catch (e) {
      // The call as a whole was refused (not one destination): record it and go on.
      if (!(e instanceof ErrnoError)) throw e;
      for (const d of dests) problem(ctx, d.inode, e.code, e.message);
      report.filesSkipped += dests.length;
      return;
    }
    outcomes.forEach((o, k) => {
      const d = dests[k]!;
      if (o.result === 'same') {
        report.filesShared++;
        report.bytesShared += g.size;
      } else if (o.result === 'differs') {
        report.filesSkipped++;
        problem(ctx, d.inode, 'CHANGED', 'content changed since it was hashed (the kernel compared and refused)');
      } else {
        report.filesSkipped++;
        problem(ctx, d.inode, o.errno ? errnoName(o.errno) : 'SHORT', `FIDEDUPERANGE failed after ${o.bytes} bytes`);
      }
    });
  } finally {
    await objFh?.close();
    for (const o of opened) await o.fh.close();
  }
}

/**
 * Clones the source into the store under a temporary name and moves it into place, if the source
 * was not written since it was hashed (same ctime: a running container may write at any time), so
 * that an object's name always tells its content. Answers the open object, or undefined.
 */
async function createObject(ctx: Ctx, src: { inode: Inode; fh: FileHandle }, objPath: string, tmpName: string): Promise<FileHandle | undefined> {
  const tmp = join(ctx.store.tmpDir, tmpName);
  const fh = await open(tmp, constants.O_RDWR | constants.O_CREAT | constants.O_EXCL, 0o400);
  try {
    ficlone(fh.fd, src.fh.fd);
    const st = await src.fh.stat({ bigint: true });
    if (src.inode.ctimeNs === undefined || st.ctimeNs !== src.inode.ctimeNs || Number(st.size) !== src.inode.size) {
      await fh.close();
      await rm(tmp, { force: true });
      return undefined;
    }
    await ctx.store.ensureParent(objPath);
    await rename(tmp, objPath);
    ctx.report.objectsCreated++;
    return fh;
  } catch (e) {
    await fh.close();
    await rm(tmp, { force: true });
    throw e;
  }
}
