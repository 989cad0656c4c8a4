/**
 * unify: share identical files among containers' root filesystems on one file system, through
 * a content store on that file system (content-store.ts).
 *
 *  - dedupe (default; XFS with reflink, btrfs): block sharing by FIDEDUPERANGE (dedupe.ts). Nothing
 *    a container can observe changes; safe on running containers.
 *  - hardlink (opt-in, stopped containers only): vunify's links made immutable (hardlink.ts),
 *    journaled so that `revert` restores every file as its own inode.
 *
 * Every run measures what the file system really gained (statfs before and after).
 */
import { randomBytes } from 'node:crypto';
import { readFile, realpath, stat } from 'node:fs/promises';
import { dirname, join, resolve, sep } from 'node:path';
import { FerryError } from '@ferry/core';
import { ContentStore, STORE_DIR_NAME } from './content-store.js';
import { dedupeGroups } from './dedupe.js';
import { loadExclusions } from './exclusions.js';
import { contentGroups, inodeTable } from './groups.js';
import { linkGroups } from './hardlink.js';
import { Journal, readJournal, rewriteJournal } from './journal.js';
import { fsInfo, probe, usedBytes, type Capabilities, type FsInfo } from './probe.js';
import { emptyReport, type UnifyMode, type UnifyReport } from './report.js';
import { revertLinks } from './revert.js';
import type { RunCtx } from './run-context.js';
import { scanRootfs, type FileRec } from './scan.js';
import { isTempName, parentOf, removeStaleTemps } from './tree-edit.js';

export interface UnifyOptions {
  /** Default 'dedupe'. 'hardlink' is opt-in and needs `running` (all false). */
  mode?: UnifyMode;
  /** Report what would be shared (or restored), change nothing. */
  dryRun?: boolean;
  /** Undo hardlink mode for these containers, from the journal. Needs `running` (all false). */
  revert?: boolean;
  /** Extra rules in vunify's exclude format, one per element, for every container. */
  excludes?: readonly string[];
  /** Leave out the default exclusion list. */
  noDefaultExcludes?: boolean;
  /** Whether each container (same order as the rootfs list) is running, as the caller knows it. */
  running?: readonly boolean[];
  /** Store directory; default `<lxcPath>/.ferry-store` for rootfs `<lxcPath>/<name>/rootfs`. */
  store?: string;
  /** Smallest file size considered (default 1: empty files have nothing to share). */
  minSize?: number;
  /** Files hashed in parallel (default 4). */
  concurrency?: number;
  signal?: AbortSignal;
}

function bad(message: string, details?: Record<string, unknown>): FerryError {
  return new FerryError('UNIFY_BAD_ARGUMENT', message, details ? { details } : {});
}

const inside = (child: string, parent: string) => child === parent || child.startsWith(parent.endsWith(sep) ? parent : parent + sep);

async function resolveRootfs(list: readonly string[]): Promise<string[]> {
  if (!list.length) throw bad('unify needs at least one container root filesystem');
  const out: string[] = [];
  for (const p of list) {
    let real: string;
    try {
      real = await realpath(p);
      if (!(await stat(real)).isDirectory()) throw new Error('not a directory');
    } catch (e) {
      throw bad(`container root filesystem ${p} is not a directory: ${(e as Error).message}`, { rootfs: p });
    }
    for (const o of out) {
      if (inside(real, o) || inside(o, real)) throw bad(`root filesystems ${o} and ${real} overlap`, { rootfs: [o, real] });
    }
    out.push(real);
  }
  return out;
}

function refuseRunning(rootfs: readonly string[], running: readonly boolean[] | undefined, what: string): void {
  if (!running || running.length !== rootfs.length) {
    throw bad(`${what} changes files in place and needs to know that every container is stopped: pass running[] (one flag per rootfs)`);
  }
  const up = rootfs.filter((_, i) => running[i]);
  if (up.length) {
    throw new FerryError('UNIFY_CONTAINER_RUNNING', `${what} works on stopped containers only; running: ${up.join(', ')}`, {
      details: { running: up },
    });
  }
}

/** What the file system can do: from the store's fs.json when it describes this file system, else probed. */
async function capabilities(store: ContentStore, fs: FsInfo, probeDir: string): Promise<Capabilities & { fresh: boolean }> {
  try {
    const c = JSON.parse(await readFile(join(store.dir, 'fs.json'), 'utf8')) as Capabilities & { device: string; type: string };
    if (c.device === fs.device && c.type === fs.type) return { dedupe: c.dedupe, clone: c.clone, immutable: c.immutable, notes: c.notes, fresh: false };
  } catch {
    // No cache, or unreadable: probe.
  }
  return { ...(await probe(probeDir)), fresh: true };
}

function notSupported(mode: UnifyMode, where: string, fs: FsInfo, caps: Capabilities): FerryError {
  const hint =
    mode === 'dedupe'
      ? 'Use a file system with block sharing (XFS made with mkfs.xfs -m reflink=1, or btrfs), or mode "hardlink" for stopped containers.'
      : 'The immutable flag protects shared inodes; hardlink mode will not link without it.';
  return new FerryError(
    'UNIFY_NOT_SUPPORTED',
    `${mode} is not supported by the ${fs.type} file system at ${where} (device ${fs.device}): ${caps.notes.join('; ') || 'probe failed'}. ${hint}`,
    { details: { filesystem: fs.type, device: fs.device, path: where, notes: caps.notes } },
  );
}

export async function unify(rootfsList: readonly string[], opts: UnifyOptions = {}): Promise<UnifyReport> {
  const started = Date.now();
  const mode: UnifyMode = opts.mode ?? 'dedupe';
  const dryRun = opts.dryRun ?? false;
  const rootfs = await resolveRootfs(rootfsList);
  if ((mode === 'hardlink' || opts.revert) && !dryRun) refuseRunning(rootfs, opts.running, opts.revert ? 'revert' : 'hardlink mode');

  const store = new ContentStore(resolve(opts.store ?? join(dirname(dirname(rootfs[0]!)), STORE_DIR_NAME)));
  for (const r of rootfs) {
    if (inside(store.dir, r) || inside(r, store.dir)) throw bad(`the unify store ${store.dir} must not be inside or around the rootfs ${r}`);
  }
  const storeExists = await store.exists();
  const storeAnchor = storeExists ? store.dir : dirname(store.dir);
  const fs = await fsInfo(storeAnchor);
  for (const r of rootfs) {
    const f = await fsInfo(r);
    if (f.dev !== fs.dev) {
      throw new FerryError(
        'UNIFY_CROSS_FILESYSTEM',
        `${r} is on ${f.type} device ${f.device} but the unify store ${store.dir} is on ${fs.type} device ${fs.device}: a store serves one file system`,
        { details: { rootfs: r, store: store.dir } },
      );
    }
  }

  const report = emptyReport({ action: opts.revert ? 'revert' : 'unify', mode, dryRun, rootfs, store: store.dir, filesystem: { type: fs.type, device: fs.device } });
  const run = `${Date.now().toString(36)}${randomBytes(3).toString('hex')}`;
  const ctx: RunCtx = { store, dryRun, rootfs, report, run, ...(opts.signal ? { signal: opts.signal } : {}) };

  if (opts.revert && !storeExists) {
    throw new FerryError('UNIFY_JOURNAL_MISSING', `no unify store at ${store.dir}: nothing to revert`, { details: { store: store.dir } });
  }
  let probed: (Capabilities & { fresh: boolean }) | undefined;
  if (!opts.revert) {
    probed = await capabilities(store, fs, storeAnchor);
    report.modes = { dedupe: probed.dedupe && probed.clone, hardlink: probed.immutable, notes: probed.notes };
    // A dry run changes nothing, so it counts on any file system and says which mode could share
    // what it found there (report.modes); only a real run needs its mode to work here.
    if (!dryRun && !report.modes[mode]) throw notSupported(mode, storeAnchor, fs, probed);
  }

  // A dry run creates neither the store nor its lock (a first probe of the file system leaves
  // nothing either: its files are removed at once).
  if (!dryRun) await store.create();
  const unlock = dryRun ? async () => {} : await store.lock();
  try {
    if (!dryRun) {
      await store.cleanTmp();
      if (probed?.fresh) {
        const { fresh: _fresh, ...caps } = probed;
        await store.writeDurable('fs.json', JSON.stringify({ ...caps, device: fs.device, type: fs.type }));
      }
    }
    let t = Date.now();
    report.usedBefore = await usedBytes(storeAnchor);
    report.phaseMs.measure += Date.now() - t;

    if (opts.revert) {
      t = Date.now();
      const records = await readJournal(store.journalPath);
      const chosen = new Set(rootfs);
      const keep = await revertLinks(records, (r) => chosen.has(r.rootfs), ctx);
      if (!dryRun) await rewriteJournal(store.journalPath, keep);
      report.phaseMs.share += Date.now() - t;
    } else {
      await unifyTrees(rootfs, mode, opts, ctx);
    }

    t = Date.now();
    report.usedAfter = dryRun ? report.usedBefore : await usedBytes(storeAnchor);
    report.phaseMs.measure += Date.now() - t;
    report.bytesFreed = report.usedBefore - report.usedAfter;
  } finally {
    await unlock();
  }
  report.durationMs = Date.now() - started;
  return report;
}

async function unifyTrees(
  rootfs: readonly string[],
  mode: UnifyMode,
  opts: UnifyOptions,
  ctx: RunCtx,
): Promise<void> {
  const { store, report } = ctx;
  let t = Date.now();
  const files: FileRec[] = [];
  for (const [i, r] of rootfs.entries()) {
    const rules = await loadExclusions({
      containerDir: dirname(r),
      ...(opts.excludes ? { lines: opts.excludes } : {}),
      ...(opts.noDefaultExcludes ? { noDefaults: true } : {}),
    });
    const scan = await scanRootfs(i, r, rules, { minSize: Math.max(1, opts.minSize ?? 1), ...(opts.signal ? { signal: opts.signal } : {}) });
    report.filesExamined += scan.examined;
    report.filesExcluded += scan.excluded;
    report.otherFilesystems.push(...scan.otherFs.map((p) => `${r}${p}`));
    files.push(...scan.files);
  }

  const objects = (await store.exists()) ? await store.list(mode === 'dedupe' ? 'objects' : 'links') : [];
  const storeInodes = new Set(objects.map((o) => `${o.dev}:${o.ino}`));
  const storeShas = new Set(objects.map((o) => o.sha256));
  let candidates = files;
  if (mode === 'hardlink') {
    // Temporary links of an interrupted run are ours, not the container's.
    const temps = files.filter((f) => isTempName(f.path));
    if (temps.length) {
      if (!ctx.dryRun) await removeStaleTemps(new Map(temps.map((f) => [parentOf(f.abs).toString('hex'), parentOf(f.abs)])).values(), storeInodes);
      candidates = files.filter((f) => !isTempName(f.path));
    }
  }

  const { inodes } = inodeTable(candidates);
  report.phaseMs.scan += Date.now() - t;
  t = Date.now();
  const grouping = await contentGroups(inodes, {
    storeSizes: new Set(objects.map((o) => o.size)),
    inStore: (sha) => storeShas.has(sha),
    concurrency: opts.concurrency ?? 4,
    rootfs,
    problems: report.problems,
    ...(opts.signal ? { signal: opts.signal } : {}),
  });
  report.filesSkipped += grouping.changed;
  report.phaseMs.hash += Date.now() - t;
  t = Date.now();

  if (mode === 'dedupe') await dedupeGroups(grouping.groups, ctx);
  else {
    const journal = ctx.dryRun ? undefined : await Journal.open(store.journalPath);
    try {
      await linkGroups(grouping.groups, storeInodes, journal, ctx);
    } finally {
      await journal?.close();
    }
  }
  report.phaseMs.share += Date.now() - t;
}
