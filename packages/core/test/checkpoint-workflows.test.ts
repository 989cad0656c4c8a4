import { describe, expect, it } from 'vitest';
import {
  newRecord,
  parseCheckpointRequest,
  parseRestoreRequest,
  rollbackPlan,
  stepInput,
  transition,
  ValidationError,
  workflows,
  type Plan,
} from '../src/index.js';
import { noCheckpoint, peer, withCheckpoint } from './fixtures.js';

const names = (p: Plan) => p.steps.map((s) => `${s.name}@${s.host}`);
const defined = (wf: { steps: readonly { name: string; role: string }[] }, p: Plan) => {
  const defs = new Set(wf.steps.map((d) => `${d.name}@${d.role}`));
  for (const s of [...p.steps, ...p.compensations.map((c) => c.step)]) expect(defs.has(`${s.name}@${s.role}`), `${s.name}@${s.role}`).toBe(true);
};

describe('checkpoint workflow (ferry checkpoint)', () => {
  const request = parseCheckpointRequest({ container: 'web', host: 'h1' });

  it('is one dump on the container\'s host, nothing to compensate, owned there', () => {
    const plan = workflows.checkpoint.plan(request, () => withCheckpoint);
    expect(names(plan)).toEqual(['checkpoint-dump@h1']);
    expect(plan.pointOfNoReturn).toBe(0);
    expect(plan.compensations).toEqual([]);
    expect(plan.owner).toBe('h1');
    defined(workflows.checkpoint, plan);
    const r = transition(newRecord({ id: 'm-cpt0000001', kind: 'checkpoint', request, plan, hosts: { host: peer('h1') }, epoch: 4, now: 1 }), { type: 'start' }, 1).record;
    expect(stepInput(r, 'forward', 0)).toEqual({ migrationId: 'm-cpt0000001', container: 'web', epoch: 4 });
    expect(workflows.checkpoint.holds(request)).toEqual(['web']);
  });

  it('is refused on a host that cannot checkpoint, naming why', () => {
    expect(() => workflows.checkpoint.plan(request, () => noCheckpoint)).toThrow(ValidationError);
    expect(() => workflows.checkpoint.plan(request, () => noCheckpoint)).toThrow(/h1 cannot checkpoint \(criu check failed\)/);
  });
});

describe('restore workflow (ferry restore)', () => {
  it('in place: one restore on the host, nothing to compensate (a failed restore leaves the checkpoint)', () => {
    const request = parseRestoreRequest({ container: 'web', from: 'h1', to: 'h1' });
    const plan = workflows.restore.plan(request, () => withCheckpoint);
    expect(names(plan)).toEqual(['checkpoint-restore@h1']);
    expect(plan.compensations).toEqual([]);
    expect(plan.handoverAt).toBeUndefined();
    expect(workflows.restore.hostNames(request)).toEqual(['h1']);
    defined(workflows.restore, plan);
  });

  it('to another host: the stopped container and its images move, the target restores, the source goes', () => {
    const request = parseRestoreRequest({ container: 'web', from: 'h1', to: 'h2' });
    const plan = workflows.restore.plan(request, (h) => (h === 'h2' ? withCheckpoint : noCheckpoint));
    expect(names(plan)).toEqual(['preflight@h1', 'preflight@h2', 'rsync-transfer@h1', 'checkpoint@h1', 'restore@h2', 'arp-refresh@h2', 'cleanup@h1']);
    const at = (n: string) => plan.steps.findIndex((s) => s.name === n);
    expect(plan.pointOfNoReturn).toBe(at('restore'));
    expect(plan.handoverAt).toBe(at('restore'));
    expect(plan.owner).toBe('h1');
    defined(workflows.restore, plan);
    const undo = (failed: string) => rollbackPlan(plan, at(failed), false).map((s) => `${s.name}@${s.host}`);
    // Nothing to undo before the copy; the copy goes after it; the source only drops its records.
    expect(undo('preflight')).toEqual([]);
    expect(undo('rsync-transfer')).toEqual(['discard-target@h2']);
    expect(undo('checkpoint')).toEqual(['discard-target@h2', 'resume-source@h1']);
    expect(undo('restore')).toEqual(['discard-target@h2', 'resume-source@h1']);

    let r = newRecord({ id: 'm-rst0000001', kind: 'restore', request, plan, hosts: { source: peer('h1'), target: peer('h2') }, epoch: 1, now: 1 });
    r = transition(r, { type: 'start' }, 1).record;
    expect(stepInput(r, 'forward', 0)).toMatchObject({ role: 'source', requireCheckpoint: true, peer: { name: 'h2' } });
    expect(stepInput(r, 'forward', at('rsync-transfer'))).toMatchObject({ wasRunning: false });
    expect(stepInput(r, 'forward', at('checkpoint'))).toMatchObject({ wasRunning: false, mode: 'restart', verify: 'changed' });
    expect(stepInput(r, 'forward', at('restore'))).toMatchObject({ method: 'dump', images: 'checkpoint', start: true, source: { name: 'h1' } });
    expect(stepInput(r, 'forward', at('cleanup'))).toMatchObject({ keepSource: false });
    const resume = plan.compensations.find((c) => c.step.name === 'resume-source')!;
    r.rollback = [{ ...resume.step, state: 'pending', run: 1, attempts: 0 }];
    expect(stepInput(r, 'rollback', 0)).toMatchObject({ wasRunning: false });
  });

  it('is refused where the target cannot restore, naming why', () => {
    const request = parseRestoreRequest({ container: 'web', from: 'h1', to: 'h2' });
    expect(() => workflows.restore.plan(request, (h) => (h === 'h2' ? noCheckpoint : withCheckpoint))).toThrow(/to: h2 cannot restore a checkpoint \(criu check failed\)/);
  });
});
