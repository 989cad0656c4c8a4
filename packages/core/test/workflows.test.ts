import { describe, expect, it } from 'vitest';
import {
  catalogue,
  macFromId,
  newRecord,
  OPERATION_KINDS,
  parseCloneRequest,
  parseUnifyRequest,
  resolveTraits,
  stepInput,
  transition,
  workflows,
  type Capabilities,
} from '../src/index.js';
import { peer, record } from './fixtures.js';

const caps: Capabilities = { runtime: 'lxc', freeze: true, checkpoint: false };

describe('workflows', () => {
  it('every kind has one, and each lists a (step, role) once, each step in the catalogue', () => {
    for (const kind of OPERATION_KINDS) {
      const wf = workflows[kind];
      expect(wf.kind).toBe(kind);
      const ids = wf.steps.map((d) => `${d.name}@${d.role}`);
      expect(new Set(ids).size, kind).toBe(ids.length);
      for (const d of wf.steps) expect(catalogue[d.name], d.name).toBeDefined();
    }
  });

  it('every step a plan can hold (forward or compensating) has its definition in the workflow', () => {
    const migrate = record();
    const clone = parseCloneRequest({ container: 'a', name: 'b', from: 'h1', to: 'h2' });
    const unify = parseUnifyRequest({ containers: ['a', 'b'], container: 'a', host: 'h1' });
    const plans = [migrate.plan, workflows.clone.plan(clone, () => caps), workflows.unify.plan(unify, () => caps)];
    const defs = [workflows.migrate, workflows.clone, workflows.unify].map((wf) => new Set(wf.steps.map((d) => `${d.name}@${d.role}`)));
    plans.forEach((p, i) => {
      for (const s of [...p.steps, ...p.compensations.map((c) => c.step)]) expect(defs[i]!.has(`${s.name}@${s.role}`), `${s.name}@${s.role}`).toBe(true);
    });
  });

  it('a migration hands the container over at restore; clone and unify never', () => {
    expect(record().plan.handoverAt).toBe(record().plan.steps.findIndex((s) => s.name === 'restore'));
    expect(workflows.clone.plan(parseCloneRequest({ container: 'a', name: 'b', from: 'h1', to: 'h2' }), () => caps).handoverAt).toBeUndefined();
  });

  it('a unify runs on its one host, with no dummy source and target', () => {
    const request = parseUnifyRequest({ containers: ['a', 'b'], container: 'a', host: 'h1', mode: 'hardlink' });
    const plan = workflows.unify.plan(request, () => caps);
    const r = newRecord({ id: 'm-unify00001', kind: 'unify', request, plan, hosts: { host: peer('h1') }, epoch: 3, now: 1 });
    expect(plan.steps).toEqual([{ name: 'unify', role: 'host', host: 'h1' }]);
    expect(r.owner).toBe('h1');
    expect(stepInput(r, 'forward', 0)).toMatchObject({ container: 'a', containers: ['a', 'b'], mode: 'hardlink', epoch: 3 });
    expect(plan.mode).toBeUndefined();
  });

  it('a clone without a MAC gets one derived from its id, the same each time its steps are issued', () => {
    const request = parseCloneRequest({ container: 'a', name: 'b', from: 'h1', to: 'h2' });
    const plan = workflows.clone.plan(request, () => caps);
    let r = newRecord({ id: 'm-clone00001', kind: 'clone', request, plan, hosts: { source: peer('h1'), target: peer('h2') }, epoch: 1, now: 1 });
    r = transition(r, { type: 'start' }, 1).record;
    const out = { role: 'source', wasRunning: false, sizeBytes: 1, bindMounts: [] };
    r = transition(r, { type: 'step-result', phase: 'forward', index: 0, run: 0, ok: true, output: out, attempts: 1, endedAt: 2 }, 2).record;
    const mac = macFromId('m-clone00001');
    expect(mac).toMatch(/^02(:[0-9a-f]{2}){5}$/);
    expect(stepInput(r, 'forward', 1)).toMatchObject({ container: 'b', expect: { mac } });
    expect(stepInput(r, 'forward', 3)).toMatchObject({ container: 'a', name: 'b', mac, hostname: 'b', start: false });
  });

  it('ARP refresh of a container with no known address is planned and sends nothing (its input still parses)', () => {
    let r = transition(record(), { type: 'start' }, 1).record;
    const out = { role: 'source', wasRunning: true, sizeBytes: 1, bindMounts: [] };
    r = transition(r, { type: 'step-result', phase: 'forward', index: 0, run: 0, ok: true, output: out, attempts: 1, endedAt: 2 }, 2).record;
    const arp = r.steps.findIndex((s) => s.name === 'arp-refresh');
    expect((stepInput(r, 'forward', arp) as { ip?: string }).ip).toBeUndefined();
    expect(stepInput(r, 'forward', r.steps.findIndex((s) => s.name === 'restore'))).not.toHaveProperty('ip');
  });

  it('traits come from the catalogue, resolved from a job input', () => {
    const p = peer('h2');
    expect(resolveTraits('clone-copy', { migrationId: 'm-x00000001', container: 'a', epoch: 1, name: 'b', peer: p, freeze: true })).toMatchObject({ bulk: true, atRest: true, peer: 'h2' });
    expect(resolveTraits('clone-copy', { migrationId: 'm-x00000001', container: 'a', epoch: 1, name: 'b', peer: p, freeze: false }).atRest).toBe(false);
    expect(resolveTraits('restore', {})).toMatchObject({ ownerOnly: true, mayStartContainer: true, atRest: false, bulk: false });
    // An input that does not parse has none of the input's traits.
    expect(resolveTraits('checkpoint', { nonsense: true })).toMatchObject({ atRest: false });
  });
});
