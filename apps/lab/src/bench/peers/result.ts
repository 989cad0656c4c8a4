import type { Comparison } from './manifest.js';

/** One measured move (or copy) by one tool, as the peers benchmark reports it. */
export interface MoveResult {
  /** `ferry`, `rsync` (the floor), or an LXD method: `stopped`, `stateless`, `live`. */
  method: string;
  ok: boolean;
  /** The failure's text (LXD: stderr tail of `lxc move`; ferry: the operation's error) when it failed. */
  error: string | null;
  /** Wall time of the move (ms), also when it failed. */
  totalMs: number;
  /** Client-seen downtime: longest gap between answered HTTP probes, ferry's probe for every tool (running methods). */
  downtimeMs: number | null;
  /** Time the source's freezer cgroup was FROZEN/FREEZING (running methods). */
  frozenMs: number | null;
  /** Time two copies were running (thawed, with processes) at once (running methods). */
  bothRunningMs: number | null;
  /** Bytes the tool says it moved; null where it does not say (LXD's operation only carries a progress text). */
  bytesMoved: number | null;
  /** Content of the moved copy vs the source before the move; null when not compared. */
  identical: boolean | null;
  differences: string | null;
  comparison: Comparison | null;
  /** The rsync command lines LXD ran for the transfer (seen in /proc during the move), one a line. */
  rsyncArgs: string | null;
  /** Where the container ended up and in which state (after failures especially). */
  after: string;
  /** ferry: each step's host and duration, for where the time went. */
  steps?: { name: string; host: string; ms: number | null }[];
}

export function emptyResult(method: string): MoveResult {
  return {
    method,
    ok: false,
    error: null,
    totalMs: 0,
    downtimeMs: null,
    frozenMs: null,
    bothRunningMs: null,
    bytesMoved: null,
    identical: null,
    differences: null,
    comparison: null,
    rsyncArgs: null,
    after: '',
  };
}
