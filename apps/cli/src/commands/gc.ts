import { parseDuration, retentionFromEnv, type RetentionPolicy } from '@ferry/core';
import { collectGarbage, type GcReport } from '@ferry/infra';
import type { Client } from '../client.js';
import { EXIT, ExitError } from '../exit-error.js';

export interface GcCommandOptions {
  dryRun?: boolean;
  /** Overrides of the policy (else FERRY_GC_* from the environment, else the defaults). */
  keep?: string;
  maxAge?: string;
  minAge?: string;
}

/** The retention policy: the environment's, with the command line's overrides; bad input names the option. */
export function gcPolicy(o: GcCommandOptions, env: Record<string, string | undefined> = process.env): RetentionPolicy {
  let policy: RetentionPolicy;
  try {
    policy = retentionFromEnv(env);
  } catch (e) {
    throw new ExitError(EXIT.badInput, (e as Error).message);
  }
  const dur = (opt: string, v: string | undefined): number | undefined => {
    if (v === undefined) return undefined;
    const ms = parseDuration(v);
    if (ms === undefined) throw new ExitError(EXIT.badInput, `${opt}: '${v}' is not a duration (90s, 10m, 12h, 7d)`);
    return ms;
  };
  if (o.keep !== undefined) {
    if (!/^\d+$/.test(o.keep)) throw new ExitError(EXIT.badInput, `--keep: '${o.keep}' is not a whole number`);
    policy.keep = Number(o.keep);
  }
  policy.maxAgeMs = dur('--max-age', o.maxAge) ?? policy.maxAgeMs;
  policy.minAgeMs = dur('--min-age', o.minAge) ?? policy.minAgeMs;
  return policy;
}

/** `ferry gc`: one collection now (or, dry, what it would remove). */
export async function gcCommand(c: Client, o: GcCommandOptions): Promise<GcReport> {
  return collectGarbage(c.redis, c.store.prefix, { policy: gcPolicy(o), dryRun: Boolean(o.dryRun) });
}

const mib = (b: number) => `${(b / 1048576).toFixed(1)} MiB`;
const days = (ms: number) => (ms % 86_400_000 === 0 ? `${ms / 86_400_000} d` : ms % 60_000 === 0 ? `${ms / 60_000} min` : `${ms / 1000} s`);

export function renderGc(r: GcReport): string {
  const would = r.dryRun ? 'would remove' : 'removed';
  const p = r.policy;
  const jobs = Object.entries(r.jobsRemoved);
  const lines = [
    r.dryRun ? 'dry run: nothing removed' : `collected in ${r.ms} ms`,
    `policy: finished operations kept ${days(p.maxAgeMs)}, at most the newest ${p.keep} (each at least ${days(p.minAgeMs)}; ${days(p.deferredMaxAgeMs)} with a deferred copy removal); hosts silent ${days(p.hostForgetMs)} forgotten`,
    `operations: ${r.operations.seen} seen, ${r.operations.open} not ended (never removed), ${r.operations.kept} kept, ${would} ${r.operations.removed}${r.operations.leftovers ? ` and ${r.operations.leftovers} leftovers` : ''}`,
    `jobs past their age: ${jobs.length ? jobs.map(([q, n]) => `${q} ${n}`).join(', ') : 'none'}`,
    `locks of ended operations: ${r.locksReleased.length ? r.locksReleased.join(', ') : 'none'}`,
    `ownership epochs of containers on no host: ${r.ownersRemoved}; cooldowns run out: ${r.cooldownsRemoved}; keys given an expiry: ${r.expiriesSet}`,
    `hosts forgotten: ${r.hostsForgotten.length ? r.hostsForgotten.join(', ') : 'none'}${r.queuesRemoved.length ? ` (queues ${r.queuesRemoved.join(', ')})` : ''}`,
    `redis used_memory: ${mib(r.memory.before)} -> ${mib(r.memory.after)}`,
  ];
  return lines.join('\n');
}
