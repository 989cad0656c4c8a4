import { describe, expect, it } from 'vitest';
import { TransitionError, transition, type OperationEvent, type OperationRecord } from '../src/index.js';
import { record } from './fixtures.js';

const ok = (r: OperationRecord, output: unknown = {}): OperationEvent => ({
  type: 'step-result', phase: r.phase, index: r.cursor, run: r.run, ok: true, output, attempts: 1, startedAt: 1, endedAt: 2,
});
const fail = (r: OperationRecord, code = 'X'): OperationEvent => ({
  type: 'step-result', phase: r.phase, index: r.cursor, run: r.run, ok: false, attempts: 3, endedAt: 2,
  error: { name: 'FerryError', code, message: 'boom', retryable: false },
});
const step = (r: OperationRecord, e: OperationEvent) => transition(r, e, 5).record;
/** Advances a fresh record through `n` successful forward steps. */
function advanced(n: number, opts?: Parameters<typeof record>[0]): OperationRecord {
  let r = step(record(opts), { type: 'start' });
  for (let i = 0; i < n; i++) r = step(r, ok(r, i === 0 ? { role: 'source', wasRunning: true, ip: '198.18.0.200' } : {}));
  return r;
}
/** Fails the current step, then lets every rollback step succeed: what was enqueued, and the end. */
function rollBack(r: OperationRecord): { all: string[]; end: OperationRecord } {
  let t = transition(r, fail(r), 5);
  const all = [...(enqueued(t) as string[])];
  while (t.record.state === 'rolling-back') {
    t = transition(t.record, ok(t.record), 5);
    all.push(...(enqueued(t) as string[]));
  }
  return { all, end: t.record };
}

const enqueued = (t: ReturnType<typeof transition>) => t.commands.filter((c) => c.type === 'enqueue').map((c) => c.type === 'enqueue' && `${c.phase}:${c.step.name}@${c.step.host}#${c.run}`);

describe('state machine: forward path', () => {
  it('start enqueues the first step and marks it running', () => {
    const t = transition(record(), { type: 'start' }, 5);
    expect(t.record.state).toBe('running');
    expect(enqueued(t)).toEqual(['forward:preflight@h1#0']);
    expect(t.record.steps[0]!.state).toBe('running');
  });

  it('each success enqueues the next step; the last one finishes done', () => {
    let r = advanced(0);
    const seen: string[] = [];
    for (let i = 0; i < r.steps.length; i++) {
      const t = transition(r, ok(r), 5);
      seen.push(...(enqueued(t) as string[]));
      r = t.record;
      if (i === r.steps.length - 1) expect(t.commands).toEqual([{ type: 'finished', state: 'done' }]);
    }
    expect(seen).toEqual(['forward:preflight@h2#0', 'forward:rsync-transfer@h1#0', 'forward:checkpoint@h1#0', 'forward:restore@h2#0', 'forward:arp-refresh@h2#0', 'forward:cleanup@h1#0']);
    expect(r.state).toBe('done');
    expect(r.steps.every((s) => s.state === 'done')).toBe(true);
  });

  it('does not mutate the record it is given', () => {
    const r = advanced(1);
    const copy = structuredClone(r);
    transition(r, ok(r), 5);
    expect(r).toEqual(copy);
  });
});

describe('state machine: duplicates and stale deliveries change nothing', () => {
  it('a repeated result for a finished step', () => {
    const r = advanced(2);
    const dup: OperationEvent = { ...ok(r), index: 1 } as OperationEvent;
    expect(transition(r, dup, 5).changed).toBe(false);
  });
  it('a result from an older run', () => {
    const r = advanced(2);
    expect(transition(r, { ...ok(r), run: 7 } as OperationEvent, 5).changed).toBe(false);
  });
  it('a result for the other phase', () => {
    const r = advanced(2);
    expect(transition(r, { ...ok(r), phase: 'rollback' } as OperationEvent, 5).changed).toBe(false);
  });
  it('a result after the migration ended', () => {
    let r = advanced(0);
    while (r.state === 'running') r = step(r, ok(r));
    expect(transition(r, { ...ok(r), index: 6 } as OperationEvent, 5).changed).toBe(false);
  });
  it('a result while paused', () => {
    const r = step(advanced(5), fail(advanced(5)));
    expect(r.state).toBe('paused');
    expect(transition(r, ok(r), 5).changed).toBe(false);
  });
  it('a result before start', () => {
    const r = record();
    expect(transition(r, { ...ok(r) } as OperationEvent, 5).changed).toBe(false);
  });
});

describe('state machine: failures and compensation', () => {
  it('a preflight failure ends rolled back with nothing to undo', () => {
    const r = advanced(1);
    const t = transition(r, fail(r, 'CONTAINER_EXISTS_ON_TARGET'), 5);
    expect(t.record.state).toBe('rolled-back');
    expect(t.record.error?.code).toBe('CONTAINER_EXISTS_ON_TARGET');
    expect(t.commands).toEqual([{ type: 'finished', state: 'rolled-back' }]);
  });

  it('a transfer failure removes the target copy', () => {
    const r = advanced(2);
    const t = transition(r, fail(r), 5);
    expect(t.record.state).toBe('rolling-back');
    expect(enqueued(t)).toEqual(['rollback:discard-target@h2#0']);
  });

  it('a checkpoint failure resumes the frozen source first, then removes the target copy', () => {
    const { all, end } = rollBack(advanced(3));
    expect(all).toEqual(['rollback:resume-source@h1#0', 'rollback:discard-target@h2#0']);
    expect(end.state).toBe('rolled-back');
  });

  it('a restore failure removes the target copy, resumes the source and announces it there', () => {
    const { all, end } = rollBack(advanced(4));
    expect(all).toEqual(['rollback:discard-target@h2#0', 'rollback:resume-source@h1#0', 'rollback:arp-refresh@h1#0']);
    expect(end.state).toBe('rolled-back');
  });

  it('a failure during rollback pauses', () => {
    let r = advanced(3);
    r = step(r, fail(r));
    r = step(r, fail(r, 'SSH_DOWN'));
    expect(r.state).toBe('paused');
    expect(r.phase).toBe('rollback');
    expect(r.error?.code).toBe('SSH_DOWN');
  });

  it('past the point of no return a failure pauses instead of rolling back', () => {
    const r = advanced(5);
    const t = transition(r, fail(r), 5);
    expect(t.record.state).toBe('paused');
    expect(t.record.phase).toBe('forward');
    expect(t.commands).toEqual([]);
  });
});

describe('state machine: retry', () => {
  it('resumes a paused forward migration at the failed step with a new run', () => {
    let r = advanced(6);
    r = step(r, fail(r));
    const t = transition(r, { type: 'retry' }, 5);
    expect(t.record.state).toBe('running');
    expect(t.record.run).toBe(1);
    expect(t.record.error).toBeUndefined();
    expect(enqueued(t)).toEqual(['forward:cleanup@h1#1']);
    expect(transition(t.record, ok(t.record), 5).record.state).toBe('done');
  });

  it('resumes a paused rollback', () => {
    let r = advanced(3);
    r = step(r, fail(r));
    r = step(r, fail(r));
    const t = transition(r, { type: 'retry' }, 5);
    expect(t.record.state).toBe('rolling-back');
    expect(enqueued(t)).toEqual(['rollback:resume-source@h1#1']);
  });

  it.each(['pending', 'running', 'done', 'rolled-back'])('is refused when %s', (state) => {
    let r: OperationRecord = record();
    if (state !== 'pending') r = advanced(1);
    if (state === 'done') while (r.state === 'running') r = step(r, ok(r));
    if (state === 'rolled-back') r = step(r, fail(r));
    expect(r.state).toBe(state);
    expect(() => transition(r, { type: 'retry' }, 5)).toThrow(TransitionError);
  });
});

describe('state machine: cancel', () => {
  it('a pending migration ends rolled back at once', () => {
    expect(transition(record(), { type: 'cancel' }, 5).record.state).toBe('rolled-back');
  });

  it('a running migration finishes its step, then rolls back from it', () => {
    let r = advanced(3);
    const t = transition(r, { type: 'cancel' }, 5);
    expect(t.commands).toEqual([]);
    r = t.record;
    expect(r.cancelRequested).toBe(true);
    const after = transition(r, ok(r), 5);
    expect(after.record.state).toBe('rolling-back');
    expect(enqueued(after)).toEqual(['rollback:resume-source@h1#0']);
  });

  it('is refused past the point of no return', () => {
    const r = advanced(5);
    expect(() => transition(r, { type: 'cancel' }, 5)).toThrow(/already runs on the target/);
  });

  it('is refused once ended', () => {
    const r = step(advanced(1), fail(advanced(1)));
    expect(() => transition(r, { type: 'cancel' }, 5)).toThrow(TransitionError);
  });

  it('is refused while rolling back', () => {
    const r = step(advanced(2), fail(advanced(2)));
    expect(r.state).toBe('rolling-back');
    expect(() => transition(r, { type: 'cancel' }, 5)).toThrow(/already rolling back/);
  });

  it('is refused while paused in the rollback (retry finishes it)', () => {
    let r = advanced(3);
    r = step(r, fail(r));
    r = step(r, fail(r));
    expect(() => transition(r, { type: 'cancel' }, 5)).toThrow(/retry finishes the rollback/);
  });

  it('start is refused once started', () => {
    expect(() => transition(advanced(0), { type: 'start' }, 5)).toThrow(TransitionError);
  });
});

describe('state machine: fencing epochs', () => {
  const fences = (t: ReturnType<typeof transition>) => t.commands.flatMap((c) => (c.type === 'enqueue' ? [c.fence] : []));

  it('steps before the handover carry the starting epoch, owned by the source', () => {
    const t = transition(record(), { type: 'start' }, 5);
    expect(fences(t)).toEqual([{ epoch: 1, owner: 'h1' }]);
  });

  it('the handover raises the epoch and makes the target the owner', () => {
    const r = advanced(3); // checkpoint running
    const t = transition(r, ok(r), 5); // checkpoint done → restore enqueued
    expect(t.record.epoch).toBe(2);
    expect(t.record.owner).toBe('h2');
    expect(fences(t)).toEqual([{ epoch: 2, owner: 'h2' }]);
    const after = transition(t.record, ok(t.record), 5); // restore done → arp-refresh under the same epoch
    expect(fences(after)).toEqual([{ epoch: 2, owner: 'h2' }]);
  });

  it('a rollback hands ownership back to the source under a newer epoch', () => {
    let r = advanced(4); // restore running under epoch 2, owner h2
    expect(r.epoch).toBe(2);
    const t = transition(r, fail(r), 5);
    r = t.record;
    expect(r.epoch).toBe(3);
    expect(r.owner).toBe('h1');
    expect(fences(t)).toEqual([{ epoch: 3, owner: 'h1' }]);
  });

  it('a retry keeps the epoch: it re-issues the same decision', () => {
    let r = advanced(6);
    r = step(r, fail(r));
    const t = transition(r, { type: 'retry' }, 5);
    expect(fences(t)).toEqual([{ epoch: 2, owner: 'h2' }]);
  });
});

describe('state machine: pause (from the reconciler)', () => {
  const error = { name: 'FerryError', code: 'HOST_UNREACHABLE', message: 'h2 silent', retryable: false };
  it('pauses a running migration, failing the step in flight', () => {
    const r = advanced(2);
    const t = transition(r, { type: 'pause', error }, 5);
    expect(t.record.state).toBe('paused');
    expect(t.record.steps[2]!.state).toBe('failed');
    expect(t.commands).toEqual([]);
    expect(transition(t.record, { type: 'retry' }, 5).record.state).toBe('running');
  });
  it('pauses a rollback', () => {
    const r = step(advanced(3), fail(advanced(3)));
    expect(transition(r, { type: 'pause', error }, 5).record.state).toBe('paused');
  });
  it.each(['pending', 'paused', 'done'])('is refused when %s', (state) => {
    let r: OperationRecord = record();
    if (state === 'paused') r = step(advanced(6), fail(advanced(6)));
    if (state === 'done') {
      r = advanced(0);
      while (r.state === 'running') r = step(r, ok(r));
    }
    expect(r.state).toBe(state);
    expect(() => transition(r, { type: 'pause', error }, 5)).toThrow(TransitionError);
  });
});
