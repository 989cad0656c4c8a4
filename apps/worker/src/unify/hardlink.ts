/**
 * Hardlink mode (vunify's way, for file systems without block sharing; stopped containers only):
 * duplicates become links of one inode, which is then made immutable so that no container can
 * change in place what the others see. Since an inode carries owner, mode, times, flags and xattrs,
 * only files equal in all of those are linked, after a SHA-256 match and a byte-by-byte comparison.
 * Every change is journaled (journal.ts) before it is made; `revertLinks` (revert.ts) undoes them
 * exactly.
 */
import { createHash } from 'node:crypto';
import { link, lstat, rename } from 'node:fs/promises';
import { openRead, openSame, pool, sameBytes } from './content.js';
import type { ContentGroup, Inode } from './groups.js';
import { FS_APPEND_FL, FS_IMMUTABLE_FL, getFlags, setImmutable } from './inode-flags.js';
import type { Journal, LinkRecord } from './journal.js';
import { readXattrs } from './libc.js';
import type { RunCtx as Ctx } from './run-context.js';
import { DirTimes, pathText, tmpBeside, tmpIn, withFd } from './tree-edit.js';

interface Meta {
  mode: number;
  uid: number;
  gid: number;
  atimeNs: bigint;
  mtimeNs: bigint;
  flags: number;
  xattrs: Map<string, Buffer>;
  key: string;
}

interface Member {
  inode: Inode;
  meta: Meta;
}

interface Plan {
  sha256: string;
  size: number;
  objPath: string;
  /** Set when the store already has the object (its inode is the shared one). */
  objIno?: bigint;
  /** The member whose inode becomes the shared one, when the object is new. */
  rep?: Member;
  dups: Member[];
}

function metaOf(inode: Inode, flags: number, xattrs: Map<string, Buffer>): Meta {
  const f = inode.files[0]!;
  const names = [...xattrs.keys()].sort();
  const key = createHash('sha256')
    .update(JSON.stringify([f.mode, f.uid, f.gid, f.mtimeNs.toString(), flags, names.map((n) => [n, xattrs.get(n)!.toString('hex')])]))
    .digest('hex')
    .slice(0, 16);
  return { mode: f.mode, uid: f.uid, gid: f.gid, atimeNs: f.atimeNs, mtimeNs: f.mtimeNs, flags, xattrs, key };
}

function problem(ctx: Ctx, i: Inode, code: string, message: string): void {
  const f = i.files[0]!;
  ctx.report.problems.push({ path: f.path, rootfs: ctx.rootfs[f.root]!, code, message });
}

/** Decides, per content group, which inodes get linked to which store object. */
async function plan(g: ContentGroup, storeInodes: ReadonlySet<string>, ctx: Ctx): Promise<Plan[]> {
  const { report } = ctx;
  const bySub = new Map<string, Member[]>();
  for (const inode of g.inodes) {
    if (storeInodes.has(inode.key)) {
      report.filesAlreadyShared++;
      report.bytesAlreadyShared += g.size;
      continue;
    }
    // A link outside the scanned trees would keep the old inode alive (nothing freed) and
    // silently part it from this path: leave such files alone.
    if (inode.nlink !== inode.files.length) {
      report.filesSkipped++;
      continue;
    }
    const fh = await openSame(inode.files[0]!.abs, inode);
    if (!fh) {
      report.filesSkipped++;
      continue;
    }
    try {
      const flags = getFlags(fh.fd);
      if (flags & (FS_IMMUTABLE_FL | FS_APPEND_FL)) {
        report.filesSkipped++;
        continue;
      }
      const meta = metaOf(inode, flags, readXattrs(fh.fd));
      const l = bySub.get(meta.key);
      if (l) l.push({ inode, meta });
      else bySub.set(meta.key, [{ inode, meta }]);
    } finally {
      await fh.close();
    }
  }

  const plans: Plan[] = [];
  for (const [key, members] of bySub) {
    const objPath = ctx.store.linkPath(g.sha256, key);
    const objSt = await lstat(objPath, { bigint: true }).catch(() => undefined);
    let rep: Member | undefined;
    let dups = members;
    if (!objSt) {
      if (members.length < 2) {
        // Equal content but no equal metadata anywhere: vunify would not link it, nor do we.
        report.filesSkipped += members.length;
        continue;
      }
      rep = members[0]!;
      dups = members.slice(1);
    }
    const refFh = rep ? await openSame(rep.inode.files[0]!.abs, rep.inode) : await openRead(objPath);
    if (!refFh) {
      report.filesSkipped += members.length;
      continue;
    }
    const confirmed: Member[] = [];
    try {
      for (const d of dups) {
        const fh = await openSame(d.inode.files[0]!.abs, d.inode);
        if (!fh) {
          report.filesSkipped++;
          continue;
        }
        try {
          if (await sameBytes(refFh, fh)) confirmed.push(d);
          else {
            report.filesSkipped++;
            problem(ctx, d.inode, 'DIFFERS', 'same SHA-256 as its group but different bytes');
          }
        } finally {
          await fh.close();
        }
      }
    } finally {
      await refFh.close();
    }
    if (!confirmed.length) continue;
    plans.push({ sha256: g.sha256, size: g.size, objPath, ...(objSt ? { objIno: objSt.ino } : {}), ...(rep ? { rep } : {}), dups: confirmed });
  }
  return plans;
}

function record(ctx: Ctx, p: Plan, m: Member, role: 'rep' | 'dup', sharedIno: bigint): LinkRecord {
  const paths = m.inode.files.map((f) => pathText(f.abs));
  const raw = paths.some((x) => x.raw);
  return {
    t: 'link',
    run: ctx.run,
    role,
    rootfs: ctx.rootfs[m.inode.files[0]!.root]!,
    paths: paths.map((x) => x.text),
    ...(raw ? { rawPaths: m.inode.files.map((f) => f.abs.toString('hex')) } : {}),
    object: p.objPath,
    sharedIno: sharedIno.toString(),
    dev: m.inode.dev.toString(),
    origIno: m.inode.ino.toString(),
    size: p.size,
    sha256: p.sha256,
    mode: m.meta.mode,
    uid: m.meta.uid,
    gid: m.meta.gid,
    atimeNs: m.meta.atimeNs.toString(),
    mtimeNs: m.meta.mtimeNs.toString(),
    flags: m.meta.flags,
    xattrs: Object.fromEntries([...m.meta.xattrs].map(([k, v]) => [k, v.toString('base64')])),
  };
}

/** Plans all groups, journals each batch durably, then links it. */
export async function linkGroups(groups: readonly ContentGroup[], storeInodes: ReadonlySet<string>, journal: Journal | undefined, ctx: Ctx): Promise<void> {
  const { report } = ctx;
  const BATCH = 256;
  let batch: Plan[] = [];
  const flush = async () => {
    if (!batch.length) return;
    const recs: LinkRecord[] = [];
    for (const p of batch) {
      const shared = p.objIno ?? p.rep!.inode.ino;
      if (p.rep) recs.push(record(ctx, p, p.rep, 'rep', shared));
      for (const d of p.dups) recs.push(record(ctx, p, d, 'dup', shared));
    }
    await journal!.write(recs);
    const times = new DirTimes();
    for (const p of batch) for (const d of p.dups) for (const f of d.inode.files) await times.remember(f.abs);
    try {
      for (const p of batch) await apply(p, ctx);
    } finally {
      await times.restore();
    }
    batch = [];
  };
  // Planning only reads (containers are stopped): a few groups at a time. Changes come after.
  const plans: Plan[] = [];
  await pool(groups, 4, async (g) => {
    ctx.signal?.throwIfAborted();
    const ps = await plan(g, storeInodes, ctx);
    if (ps.length) report.duplicateGroups++;
    plans.push(...ps);
  });
  for (const p of plans) {
    if (ctx.dryRun) {
      report.filesShared += p.dups.length;
      report.bytesShared += p.dups.length * p.size;
      continue;
    }
    ctx.signal?.throwIfAborted();
    batch.push(p);
    if (batch.length >= BATCH) await flush();
  }
  await flush();
}

async function apply(p: Plan, ctx: Ctx): Promise<void> {
  const { report } = ctx;
  if (p.rep) {
    const tmp = tmpIn(Buffer.from(ctx.store.tmpDir), ctx.run);
    await link(p.rep.inode.files[0]!.abs, tmp);
    await ctx.store.ensureParent(p.objPath);
    await rename(tmp, p.objPath);
    report.objectsCreated++;
  } else {
    // Links cannot be added to an immutable inode: lift the flag while we add them.
    await withFd(p.objPath, (fh) => setImmutable(fh.fd, false));
  }
  try {
    for (const d of p.dups) {
      for (const f of d.inode.files) {
        const tmp = tmpBeside(f.abs, ctx.run);
        await link(p.objPath, tmp);
        await rename(tmp, f.abs);
      }
      report.filesShared++;
      report.bytesShared += p.size;
    }
  } finally {
    await withFd(p.objPath, (fh) => setImmutable(fh.fd, true));
  }
}

