import { describe, expect, it } from 'vitest';
import { parseMigrationRequest, rollbackPlan, ValidationError } from '../src/index.js';
import { noCheckpoint, planMigration, withCheckpoint } from './fixtures.js';

const req = (extra: object = {}) => parseMigrationRequest({ container: 'web', from: 'h1', to: 'h2', ...extra });

describe('plan', () => {
  it('orders the steps and puts each on the host that must run it', () => {
    const p = planMigration(req(), { source: noCheckpoint, target: noCheckpoint });
    expect(p.steps.map((s) => `${s.name}@${s.host}`)).toEqual([
      'preflight@h1',
      'preflight@h2',
      'rsync-transfer@h1',
      'index-copy@h2',
      'checkpoint@h1',
      'restore@h2',
      'arp-refresh@h2',
      'cleanup@h1',
    ]);
    expect(p.steps[p.pointOfNoReturn]!.name).toBe('restore');
  });

  it('auto picks restart when either host cannot checkpoint, live when both can', () => {
    expect(planMigration(req(), { source: withCheckpoint, target: noCheckpoint }).mode).toBe('restart');
    expect(planMigration(req(), { source: withCheckpoint, target: withCheckpoint }).mode).toBe('live');
  });

  it('says why it chose the mode it chose', () => {
    expect(planMigration(req(), { source: withCheckpoint, target: noCheckpoint }).modeReason).toBe('auto: no live path (h2: criu check failed)');
    expect(planMigration(req(), { source: withCheckpoint, target: withCheckpoint }).modeReason).toBe('auto: h1 and h2 can both checkpoint/restore');
    expect(planMigration(req({ mode: 'restart' }), { source: withCheckpoint, target: withCheckpoint }).modeReason).toBe('asked for (--mode restart)');
  });

  it('refuses live mode without checkpoint, saying which host and why', () => {
    expect(() => planMigration(req({ mode: 'live' }), { source: withCheckpoint, target: noCheckpoint })).toThrow(ValidationError);
    expect(() => planMigration(req({ mode: 'live' }), { source: withCheckpoint, target: noCheckpoint })).toThrow(/h2: criu check failed/);
  });

  it('restart mode is honoured even where live is possible', () => {
    expect(planMigration(req({ mode: 'restart' }), { source: withCheckpoint, target: withCheckpoint }).mode).toBe('restart');
  });

  it('indexes the copy before the freeze only for the default verification (changed)', () => {
    for (const verify of ['full', 'off'] as const) {
      expect(planMigration(req({ options: { verify } }), { source: noCheckpoint, target: noCheckpoint }).steps.map((s) => s.name)).not.toContain('index-copy');
    }
  });

  it('leaves out arp-refresh when switched off', () => {
    const p = planMigration(req({ options: { arpRefresh: false } }), { source: noCheckpoint, target: noCheckpoint });
    expect(p.steps.map((s) => s.name)).not.toContain('arp-refresh');
  });

  it('rolls back only what was reached: the frozen source first until restore begins, the target copy first from then on', () => {
    const r = req();
    const p = planMigration(r, { source: noCheckpoint, target: noCheckpoint });
    const names = (i: number, wasRunning = true) => rollbackPlan(p, i, wasRunning).map((s) => `${s.name}@${s.host}`);
    expect(names(0)).toEqual([]);
    expect(names(1)).toEqual([]);
    expect(names(2)).toEqual(['discard-target@h2']);
    expect(names(3)).toEqual(['discard-target@h2']); // index-copy: nothing frozen yet
    expect(names(4)).toEqual(['resume-source@h1', 'discard-target@h2']);
    expect(names(5)).toEqual(['discard-target@h2', 'resume-source@h1', 'arp-refresh@h1']);
    expect(names(5, false)).toEqual(['discard-target@h2', 'resume-source@h1']);
  });
});
