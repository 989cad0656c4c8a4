import { mkdir, rename, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { TransferStats } from '@ferry/core';
import { changeSet, encodeDirs, filesFrom, readDirs, walk, type ChangeSet } from './change-tracker.js';
import { readJson, writeJsonAtomic } from '../json-files.js';

/** What the sender of one pass is told: send all (quick check) or only the listed paths. */
export interface PassPlan {
  /** NUL-separated list of paths (a file on this host); absent for a full pass. */
  filesFrom?: string;
  /** Compare content rather than size and mtime. */
  checksum: boolean;
}

export interface TrackedStats extends TransferStats {
  /** What the walk found (absent for a full pass). */
  changed?: { files: number; dirs: number; trees: number; walkMs: number };
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

/**
 * Passes of one source tree to one target, each sending what changed since the previous one
 * began. The first pass is a full rsync (quick check: the target holds nothing older from this
 * copy). Every later pass walks the tree for ctimes at or after the previous pass's start and sends
 * exactly those paths with their content compared, plus the entries of changed directories
 * (deletions, renames). Whatever the walk cannot vouch for falls back to a full content pass.
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

  async pass(send: (plan: PassPlan) => Promise<TransferStats>, opts: { atRest?: boolean; signal?: AbortSignal; onScan?: () => void } = {}): Promise<TrackedStats> {
    const state = (await readJson<TrackState>(this.stateFile)) ?? {};
    const stamp = Date.now() / 1000;
    const prevDirs = state.dirsFile ? await readDirs(state.dirsFile) : null;
    // The walk can vouch only with a previous pass to compare with and a clock that has not gone back.
    const tracked = state.since !== undefined && prevDirs !== null && stamp >= state.since;
    const walkOpts = { skip: this.skip, ...(opts.signal ? { signal: opts.signal } : {}) };
    await mkdir(this.scratch, { recursive: true });

    if (!tracked) {
      const firstStart = state.firstStart ?? stamp;
      if (state.firstStart === undefined) await writeJsonAtomic(this.stateFile, { firstStart });
      const clockBack = state.since !== undefined && stamp < state.since;
      opts.onScan?.();
      const w = await walk(this.root, undefined, walkOpts);
      // A full pass at rest, or after the clock went back, has nothing to trust: compare content.
      const stats = await send({ checksum: opts.atRest === true || clockBack });
      // Changes since the first full pass began may have reached the target by quick check only.
      await this.save({ firstStart, since: clockBack ? stamp : firstStart }, w.dirs, stamp);
      return stats;
    }

    opts.onScan?.();
    const t0 = Date.now();
    const w = await walk(this.root, state.since, walkOpts);
    const set: ChangeSet = changeSet(w, prevDirs);
    const walkMs = Date.now() - t0;
    const list = join(this.scratch, `files-from-${process.pid}`);
    await writeFile(list, filesFrom(set));
    const stats = await send({ filesFrom: list, checksum: true });
    await this.save({ ...(state.firstStart !== undefined ? { firstStart: state.firstStart } : {}), since: stamp }, w.dirs, stamp);
    return { ...stats, changed: { files: set.files, dirs: set.dirs, trees: set.trees, walkMs }, listFile: list };
  }

  private async save(state: TrackState, dirs: ReadonlyMap<string, string>, stamp: number): Promise<void> {
    const dirsFile = join(this.scratch, `track-dirs-${Math.round(stamp * 1000)}`);
    const tmp = `${dirsFile}.tmp`;
    await writeFile(tmp, encodeDirs(dirs));
    await rename(tmp, dirsFile);
    await writeJsonAtomic(this.stateFile, { ...state, dirsFile });
  }
}
