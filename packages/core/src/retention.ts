import { isTerminal, type StoredRecord } from './record.js';

/**
 * How much history ferry keeps in Redis (`ferry gc`, and the scheduler's automatic gc). Operations
 * that have not ended are never removed, whatever their age.
 */
export interface RetentionPolicy {
  /** Finished operations are removed once they ended this long ago. */
  maxAgeMs: number;
  /** ... and beyond the newest `keep` finished ones (newest by creation) ... */
  keep: number;
  /** ... but never one that ended less than this long ago (a watcher or a round may still read it). */
  minAgeMs: number;
  /**
   * A rolled-back operation whose target copy's removal was deferred to that host's return (its
   * worker sweeps the copy when it finds the record) is kept this long instead of `maxAgeMs`.
   */
  deferredMaxAgeMs: number;
  /** A host whose worker has been silent this long, and that no open operation names, is forgotten (its registry entry and queues). */
  hostForgetMs: number;
}

const DAY = 24 * 3600 * 1000;

export const DEFAULT_RETENTION: RetentionPolicy = {
  maxAgeMs: 7 * DAY,
  keep: 1000,
  minAgeMs: 10 * 60 * 1000,
  deferredMaxAgeMs: 30 * DAY,
  hostForgetMs: 30 * DAY,
};

/** `90s`, `10m`, `12h`, `7d` or bare milliseconds; undefined when it is none of these. */
export function parseDuration(s: string): number | undefined {
  const m = /^(\d+(?:\.\d+)?)(ms|s|m|h|d)?$/.exec(s.trim());
  if (!m) return undefined;
  const unit = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: DAY }[(m[2] ?? 'ms') as 'ms' | 's' | 'm' | 'h' | 'd'];
  return Math.round(Number(m[1]) * unit);
}

/**
 * The policy from the environment over the defaults: FERRY_GC_MAX_AGE, FERRY_GC_KEEP,
 * FERRY_GC_MIN_AGE, FERRY_GC_DEFERRED_MAX_AGE, FERRY_GC_HOST_FORGET (durations as parseDuration).
 * A value that does not parse is an error naming the variable.
 */
export function retentionFromEnv(env: Record<string, string | undefined> = process.env): RetentionPolicy {
  const out = { ...DEFAULT_RETENTION };
  const dur = (name: string, key: Exclude<keyof RetentionPolicy, 'keep'>) => {
    const v = env[name];
    if (v === undefined || v === '') return;
    const ms = parseDuration(v);
    if (ms === undefined) throw new Error(`${name} must be a duration (90s, 10m, 12h, 7d), not '${v}'`);
    out[key] = ms;
  };
  dur('FERRY_GC_MAX_AGE', 'maxAgeMs');
  dur('FERRY_GC_MIN_AGE', 'minAgeMs');
  dur('FERRY_GC_DEFERRED_MAX_AGE', 'deferredMaxAgeMs');
  dur('FERRY_GC_HOST_FORGET', 'hostForgetMs');
  const keep = env.FERRY_GC_KEEP;
  if (keep !== undefined && keep !== '') {
    if (!/^\d+$/.test(keep)) throw new Error(`FERRY_GC_KEEP must be a whole number, not '${keep}'`);
    out.keep = Number(keep);
  }
  return out;
}

/** Whether a rollback deferred removing the target's copy to that host's return (the reconciler's `deferred` output). */
export function hasDeferredRemoval(r: StoredRecord): boolean {
  if (r.state === 'rejected') return false;
  return r.rollback.some((s) => typeof (s.output as { deferred?: unknown } | undefined)?.deferred === 'string');
}

export type RetentionVerdict = 'open' | 'keep' | 'expired';

/**
 * A judge of records shown to it newest first (by creation), across as many batches as the caller
 * reads: `open` for one that has not ended (never removed), `expired` for a finished one past the
 * policy, `keep` otherwise. Pure; the caller removes what is expired only if it is unchanged since
 * it was read.
 */
export function retentionJudge(policy: RetentionPolicy, now: number): (r: StoredRecord) => RetentionVerdict {
  let finished = 0;
  return (r) => {
    if (!isTerminal(r.state)) return 'open';
    finished++;
    const age = now - (r.endedAt ?? r.updatedAt);
    if (age < policy.minAgeMs) return 'keep';
    const deferred = hasDeferredRemoval(r);
    if (age >= (deferred ? Math.max(policy.maxAgeMs, policy.deferredMaxAgeMs) : policy.maxAgeMs)) return 'expired';
    return finished > policy.keep && !deferred ? 'expired' : 'keep';
  };
}
