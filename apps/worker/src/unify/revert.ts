/**
 * Revert of hardlink mode, from the journal: every linked file becomes its own inode again with
 * its journaled content, owner, mode, flags, xattrs and times, and its own links when it had
 * several. Records whose paths do not point at the shared inode (never linked: the run stopped
 * after journaling; or already restored) are passed over, so revert can be repeated after a crash.
 */
import { constants } from 'node:fs';
import { copyFile, link, lstat, open, rename, rm } from 'node:fs/promises';
import { pool, sha256Of } from './content.js';
import { FS_IMMUTABLE_FL, getFlags, setFlags, setImmutable } from './inode-flags.js';
import type { LinkRecord } from './journal.js';
import { ErrnoError, futimens, readXattrs, removeXattr, setXattr, syncfs } from './libc.js';
import type { RunCtx as Ctx } from './run-context.js';
import { DirTimes, parentOf, removeStaleTemps, tmpBeside, withFd } from './tree-edit.js';

function recordPaths(r: LinkRecord): Buffer[] {
  return r.rawPaths ? r.rawPaths.map((h) => Buffer.from(h, 'hex')) : r.paths.map((p) => Buffer.from(p, 'utf8'));
}

/**
 * Rebuilds every journaled file of the chosen records as its own inode with its recorded
 * content, owner, mode, flags, xattrs and times (and its own links, when it had several), then
 * removes store objects no container links any more. Answers the records still needed.
 * Works in batches: rebuild the copies under temporary names, one syncfs so their data is on
 * disk before any rename makes them the real files, then the renames.
 */
export async function revertLinks(records: readonly LinkRecord[], chosen: (r: LinkRecord) => boolean, ctx: Ctx): Promise<LinkRecord[]> {
  const { report } = ctx;
  const keep: LinkRecord[] = [];
  const touched = new Map<string, string>(); // dev:sharedIno → object path
  const dirs = new Map<string, Buffer>();
  const todo: Array<{ r: LinkRecord; paths: Buffer[] }> = [];
  for (const r of records) {
    if (!chosen(r)) {
      keep.push(r);
      continue;
    }
    const paths = recordPaths(r);
    for (const p of paths) dirs.set(parentOf(p).toString('hex'), parentOf(p));
    const st = await lstat(paths[0]!, { bigint: true }).catch(() => undefined);
    if (!st || `${st.dev}:${st.ino}` !== `${r.dev}:${r.sharedIno}`) {
      // Never linked (the run stopped after journaling it), already restored, or removed since.
      if (!st) report.problems.push({ path: r.paths[0]!, rootfs: r.rootfs, code: 'ENOENT', message: 'journaled file no longer exists' });
      continue;
    }
    touched.set(`${r.dev}:${r.sharedIno}`, r.object);
    if (ctx.dryRun) report.filesRestored++;
    else todo.push({ r, paths });
  }
  if (ctx.dryRun) return [...records];

  const unlocked = new Set<string>();
  const BATCH = 256;
  for (let i = 0; i < todo.length; i += BATCH) {
    ctx.signal?.throwIfAborted();
    const times = new DirTimes();
    const ready: Array<{ r: LinkRecord; paths: Buffer[]; tmp: Buffer }> = [];
    try {
      for (const { paths } of todo.slice(i, i + BATCH)) for (const p of paths) await times.remember(p);
      await pool(todo.slice(i, i + BATCH), 8, async ({ r, paths }) => {
        const tmp = tmpBeside(paths[0]!, ctx.run);
        try {
          const key = `${r.dev}:${r.sharedIno}`;
          if (!unlocked.has(key)) {
            unlocked.add(key);
            await withFd(paths[0]!, (fh) => setImmutable(fh.fd, false));
          }
          await rebuild(r, paths[0]!, tmp, ctx);
          ready.push({ r, paths, tmp });
        } catch (e) {
          await rm(tmp, { force: true });
          keep.push(r);
          const err = e as NodeJS.ErrnoException;
          report.problems.push({ path: r.paths[0]!, rootfs: r.rootfs, code: err.code ?? 'ERROR', message: err.message });
        }
      });
      if (ready.length) await withFd(parentOf(ready[0]!.paths[0]!), (fh) => syncfs(fh.fd));
      for (const { paths, tmp } of ready) {
        await rename(tmp, paths[0]!);
        for (const p of paths.slice(1)) {
          const t = tmpBeside(p, ctx.run);
          await link(paths[0]!, t);
          await rename(t, p);
        }
        report.filesRestored++;
      }
    } finally {
      await times.restore();
    }
  }

  const sharedKeys = new Set(touched.keys());
  for (const dir of dirs.values()) await removeStaleTemps([dir], sharedKeys);
  for (const obj of touched.values()) {
    const st = await lstat(obj).catch(() => undefined);
    if (!st) continue;
    if (st.nlink === 1) {
      await withFd(obj, (fh) => setImmutable(fh.fd, false));
      await rm(obj);
      report.objectsRemoved++;
    } else await withFd(obj, (fh) => setImmutable(fh.fd, true));
  }
  return keep;
}

/** Makes `tmp` a copy of `first` with the journaled owner, xattrs, mode, flags and times. */
async function rebuild(r: LinkRecord, first: Buffer, tmp: Buffer, ctx: Ctx): Promise<void> {
  // A reflink copy where the file system can (a new inode sharing blocks), a real copy elsewhere.
  await copyFile(first, tmp, constants.COPYFILE_FICLONE);
  const fh = await open(tmp, 'r+');
  try {
    if ((await sha256Of(fh)) !== r.sha256) {
      ctx.report.problems.push({ path: r.paths[0]!, rootfs: r.rootfs, code: 'CONTENT_CHANGED', message: 'the shared inode no longer holds the journaled content; restored what it holds' });
    }
    // Order matters: chown clears setuid bits and security.capability, an ACL sets mode bits.
    await fh.chown(r.uid, r.gid);
    const want = new Map(Object.entries(r.xattrs).map(([k, v]) => [k, Buffer.from(v, 'base64')]));
    for (const name of readXattrs(fh.fd).keys()) if (!want.has(name)) removeXattr(fh.fd, name);
    for (const [name, value] of want) setXattr(fh.fd, name, value);
    await fh.chmod(r.mode);
    if ((getFlags(fh.fd) & ~FS_IMMUTABLE_FL) !== (r.flags & ~FS_IMMUTABLE_FL)) {
      try {
        setFlags(fh.fd, r.flags & ~FS_IMMUTABLE_FL);
      } catch (e) {
        if (!(e instanceof ErrnoError)) throw e;
        ctx.report.problems.push({ path: r.paths[0]!, rootfs: r.rootfs, code: e.code, message: `could not restore inode flags 0x${r.flags.toString(16)}` });
      }
    }
    futimens(fh.fd, BigInt(r.atimeNs), BigInt(r.mtimeNs));
  } catch (e) {
    await fh.close();
    await rm(tmp, { force: true });
    throw e;
  }
  await fh.close();
}
