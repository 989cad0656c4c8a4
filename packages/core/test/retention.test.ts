import { describe, expect, it } from 'vitest';
import { DEFAULT_RETENTION, parseDuration, retentionFromEnv, retentionJudge, type StoredRecord } from '../src/index.js';

const r = (state: StoredRecord['state'], endedAt?: number, rollback: object[] = []) => ({ state, endedAt, updatedAt: endedAt ?? 0, rollback }) as unknown as StoredRecord;

describe('retention', () => {
  it('parses durations and the policy from the environment, naming a bad variable', () => {
    expect([parseDuration('90s'), parseDuration('10m'), parseDuration('7d'), parseDuration('250'), parseDuration('1.5h'), parseDuration('x')]).toEqual([90_000, 600_000, 604_800_000, 250, 5_400_000, undefined]);
    expect(retentionFromEnv({})).toEqual(DEFAULT_RETENTION);
    expect(retentionFromEnv({ FERRY_GC_KEEP: '50', FERRY_GC_MAX_AGE: '2d' })).toMatchObject({ keep: 50, maxAgeMs: 2 * 86_400_000 });
    expect(() => retentionFromEnv({ FERRY_GC_MAX_AGE: 'soon' })).toThrow(/FERRY_GC_MAX_AGE/);
    expect(() => retentionFromEnv({ FERRY_GC_KEEP: '-1' })).toThrow(/FERRY_GC_KEEP/);
  });

  it('never expires an operation that has not ended; keeps the newest `keep` finished and the recent ones', () => {
    const now = 100 * 86_400_000;
    const judge = retentionJudge({ ...DEFAULT_RETENTION, keep: 1, minAgeMs: 1000, maxAgeMs: 86_400_000 }, now);
    const verdicts = [
      r('running'),
      r('done', now - 10),
      r('done', now - 5000),
      r('paused'),
      r('rolled-back', now - 2 * 86_400_000, [{ output: { deferred: 'h2 unreachable' } }]),
      r('rejected', now - 2 * 86_400_000),
      r('rolling-back'),
      r('pending'),
    ].map(judge);
    expect(verdicts).toEqual(['open', 'keep', 'expired', 'open', 'keep', 'expired', 'open', 'open']);
  });
});
