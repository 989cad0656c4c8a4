import { mkdir, rename, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { TransferStats } from '@ferry/core';
import { changeSet, encodeDirs, filesFrom, keepInside, readDirs, walk, watchedChangeSet, type ChangeSet } from './change-tracker.js';
import { FsWatch, type WatchChange } from './fs-watch.js';
import { readJson, writeJsonAtomic } from '../json-files.js';

/** What the sender of one pass is told: send all (quick check) or only the listed paths. */
export interface PassPlan {
  /** NUL-separated list of paths (a file on this host); absent for a full pass. */
  filesFrom?: string;
  /** Compare content rather than size and mtime. */
  checksum: boolean;
}

export interface TrackedStats extends TransferStats {
  /** The --files-from list the pass sent (a file in the scratch dir; absent for a full pass). */
  listFile?: string;
}

/** The statistics alone, as a step reports them. */
export function withoutList(s: TrackedStats): TransferStats {
  const { listFile: _, ...stats } = s;
  return stats;
}

/** On disk in the scratch dir, so later passes, later steps and re-runs after a crash agree. */
interface TrackState {
  /** When the first full pass began (seconds): never moved, so a re-run after a crash stays sound. */
  firstStart?: number;
  /** After a completed pass: changes since this moment are what the target may lack. */
  since?: number;
  /** The directory listing of that pass's walk. */
  dirsFile?: string;
}

export interface PassOptions {
  /** The source is at rest: the last pass. A full pass then compares content; the watcher ends. */
  atRest?: boolean;
  signal?: AbortSignal;
  onScan?: () => void;
  /**
   * Files (relative to the root) the source's processes hold open for writing or map shared and
   * writable: writes through a mapping raise no event until the file is released, so the last
   * pass by the watcher lists these too. Without it the last pass walks.
   */
  openForWrite?: () => Promise<string[]>;
  /**
   * A tracked pass also writes its list to this path in the root (relative) and sends it along in
   * the same transfer: the final pass hands the target the list of what it sent without a second
   * round trip while the container is down. The caller must not exclude that path.
   */
  listAlongAs?: string;
}

/**
 * The moment the next pass's changes are counted from (the start of the last completed pass), or
 * undefined before one: an index of the tree taken after it is made current again by that pass's list.
 */
export async function trackedSince(scratch: string): Promise<number | undefined> {
  return (await readJson<TrackState>(join(scratch, 'track.json')))?.since;
}

/** One change watcher per tree, alive from the first pass to the last (in this worker process). */
interface Watching {
  watch: FsWatch;
  /** Changes flushed for a pass that then failed: sent again by the next one. */
  carry: WatchChange[];
}
const watching = new Map<string, Watching>();

/** FERRY_CHANGE_TRACKER=walk turns the watcher off (every pass after the first walks). */
function watcherWanted(): boolean {
  return process.env.FERRY_CHANGE_TRACKER !== 'walk';
}

/**
 * Passes of one source tree to one target, each sending what changed since the previous one
 * began. The first pass is a full rsync (quick check: the target holds nothing older from this
 * copy). Every later pass sends exactly the paths changed since the previous pass began, with
 * their content compared, plus the entries of changed directories (deletions, renames). What
 * changed comes from the change watcher (fanotify, no walk) where it has watched since before
 * that moment and has no doubt, else from a walk of the tree for ctimes. Whatever the walk cannot
 * vouch for falls back to a full content pass.
 */
export class PassTracker {
  private readonly stateFile: string;

  constructor(
    private readonly scratch: string,
    private readonly root: string,
    private readonly skip: readonly string[],
  ) {
    this.stateFile = join(scratch, 'track.json');
  }

  async pass(send: (plan: PassPlan) => Promise<TransferStats>, opts: PassOptions = {}): Promise<TrackedStats> {
    const state = (await readJson<TrackState>(this.stateFile)) ?? {};
    let stamp = Date.now() / 1000;
    const prevDirs = state.dirsFile ? await readDirs(state.dirsFile) : null;
    // The walk can vouch only with a previous pass to compare with and a clock that has not gone back.
    const tracked = state.since !== undefined && prevDirs !== null && stamp >= state.since;
    const walkOpts = { skip: this.skip, ...(opts.signal ? { signal: opts.signal } : {}) };
    await mkdir(this.scratch, { recursive: true });

    if (!tracked) {
      if (!opts.atRest && watcherWanted() && !watching.get(this.root)?.watch.alive) {
        // Before the stamp, so the watcher sees every change the next pass must send.
        const w = await FsWatch.start(this.root);
        if (w instanceof FsWatch) watching.set(this.root, { watch: w, carry: [] });
        stamp = Date.now() / 1000;
      }
      const firstStart = state.firstStart ?? stamp;
      if (state.firstStart === undefined) await writeJsonAtomic(this.stateFile, { firstStart });
      const clockBack = state.since !== undefined && stamp < state.since;
      opts.onScan?.();
      // The directory listing the next walk compares with: taken after the stamp, beside the
      // copy (it reads only directories; the copy's time is the pass's time).
      const walking = walk(this.root, undefined, walkOpts);
      walking.catch(() => undefined); // awaited below
      // A full pass at rest, or after the clock went back, has nothing to trust: compare content.
      const stats = await send({ checksum: opts.atRest === true || clockBack });
      const w = await walking;
      // Changes since the first full pass began may have reached the target by quick check only.
      await this.save({ firstStart, since: clockBack ? stamp : firstStart }, w.dirs, stamp);
      return stats;
    }

    opts.onScan?.();
    const t0 = Date.now();
    const watched = await this.fromWatcher(state.since!, opts);
    const w = watched ? undefined : await walk(this.root, state.since, walkOpts);
    const set: ChangeSet = watched?.set ?? changeSet(w!, prevDirs);
    const walkMs = Date.now() - t0;
    set.list = await keepInside(this.root, set.list);
    const list = join(this.scratch, `files-from-${process.pid}`);
    if (opts.listAlongAs !== undefined) {
      set.list.push(opts.listAlongAs);
      await writeFile(join(this.root, opts.listAlongAs), filesFrom(set));
    }
    await writeFile(list, filesFrom(set));
    let stats: TransferStats;
    try {
      stats = await send({ filesFrom: list, checksum: true });
    } catch (e) {
      const entry = watching.get(this.root);
      if (watched && entry) entry.carry = watched.changes; // the next pass sends them
      throw e;
    }
    const firstStart = state.firstStart !== undefined ? { firstStart: state.firstStart } : {};
    // A watched pass keeps the last walk's directory listing: older, so only more is sent whole.
    if (w) await this.save({ ...firstStart, since: stamp }, w.dirs, stamp);
    else await writeJsonAtomic(this.stateFile, { ...firstStart, since: stamp, dirsFile: state.dirsFile });
    if (opts.atRest) this.stopWatching();
    return { ...stats, changed: { files: set.files, dirs: set.dirs, trees: set.trees, walkMs, by: watched ? 'watch' : 'walk' }, listFile: list };
  }

  /**
   * The change set from the watcher, or null when it cannot vouch for it: none running, started
   * after `since`, a doubt (then it is stopped: later passes walk), a last pass without the list
   * of files open for writing, a hard-linked file among the changes.
   */
  private async fromWatcher(since: number, opts: PassOptions): Promise<{ set: ChangeSet; changes: WatchChange[] } | null> {
    const entry = watching.get(this.root);
    if (!entry) return null;
    if (!entry.watch.alive || entry.watch.startedAt > since || (opts.atRest && !opts.openForWrite)) {
      this.stopWatching();
      return null;
    }
    const flushed = await entry.watch.flush();
    if (flushed.doubt) {
      this.stopWatching();
      return null;
    }
    const changes = [...entry.carry, ...flushed.changes];
    entry.carry = [];
    const extra = opts.atRest ? await opts.openForWrite!() : [];
    const set = await watchedChangeSet(this.root, changes, extra, this.skip, since, opts.signal);
    if (!set) {
      this.stopWatching();
      return null;
    }
    return { set, changes };
  }

  private stopWatching(): void {
    watching.get(this.root)?.watch.stop();
    watching.delete(this.root);
  }

  private async save(state: TrackState, dirs: ReadonlyMap<string, string>, stamp: number): Promise<void> {
    const dirsFile = join(this.scratch, `track-dirs-${Math.round(stamp * 1000)}`);
    const tmp = `${dirsFile}.tmp`;
    await writeFile(tmp, encodeDirs(dirs));
    await rename(tmp, dirsFile);
    await writeJsonAtomic(this.stateFile, { ...state, dirsFile });
  }
}
