/**
 * What `ferry status`, `watch` and `list` print, from records made as the scheduler makes them:
 * each names its operation's kind, and a pass still scanning says so. Pure; no Redis, no root.
 */
import { describe, expect, it } from 'vitest';
import { fields, newRecord, parseCloneRequest, parseMigrationRequest, parseUnifyRequest, workflows, type Capabilities, type StoredRecord } from '@ferry/core';
import type { ProgressEntry } from '@ferry/infra';
import { renderList, renderStatus } from '../src/render.js';

const caps: Capabilities = { runtime: 'lxc', freeze: true, checkpoint: false, checkpointReason: 'criu check failed' };
const peer = (name: string) => ({ name, address: '198.18.0.11', sshPort: 22, sshUser: 'root', lxcPath: `/lab/${name}/lxc` });

function migration(): StoredRecord {
  const request = parseMigrationRequest({ container: 'web', from: 'h1', to: 'h2' });
  return newRecord({ id: 'm-migrate0001', kind: 'migrate', request, plan: workflows.migrate.plan(request, () => caps), hosts: { source: peer('h1'), target: peer('h2') }, epoch: 1, now: 1000 });
}
function clone(): StoredRecord {
  const request = parseCloneRequest({ container: 'web', name: 'web2', from: 'h1', to: 'h2' });
  return newRecord({ id: 'm-clone000001', kind: 'clone', request, plan: workflows.clone.plan(request, () => caps), hosts: { source: peer('h1'), target: peer('h2') }, epoch: 1, now: 2000 });
}
function unify(state: 'rolled-back' | 'done'): StoredRecord {
  const request = parseUnifyRequest({ containers: ['u1', 'u2'], container: 'u1', host: 'h1', dryRun: true });
  const r = newRecord({ id: 'm-unify000001', kind: 'unify', request, plan: workflows.unify.plan(request, () => caps), hosts: { host: peer('h1') }, epoch: 1, now: 3000 });
  return { ...r, state, endedAt: 4000 };
}

describe('status, watch and list name the kind of operation', () => {
  it('a unify is a unify: its containers, host, mode and dry run, never "migration"', () => {
    const text = renderStatus(unify('rolled-back'));
    expect(text.split('\n')[0]).toBe('unify m-unify000001: u1, u2 on h1 (dedupe, dry run)  ROLLED-BACK');
    expect(text).not.toMatch(/migration/);
  });

  it('a migration and a clone each say their kind', () => {
    expect(renderStatus(migration()).split('\n')[0]).toMatch(/^migrate m-migrate0001: web h1 → h2 \(restart\)  PENDING$/);
    expect(renderStatus(clone()).split('\n')[0]).toBe('clone m-clone000001: web → web2 (h1 → h2)  PENDING');
  });

  it('list has a KIND column', () => {
    const lines = renderList([unify('done'), clone(), migration()]).split('\n');
    expect(lines[0]).toMatch(/^ID +KIND +STATE +CONTAINER +HOSTS +CREATED +TOOK$/);
    expect(lines[1]).toMatch(/^m-unify000001 +unify +done +u1,u2 +h1 /);
    expect(lines[2]).toMatch(/^m-clone000001 +clone +pending +web→web2 +h1→h2 /);
    expect(lines[3]).toMatch(/^m-migrate0001 +migrate +pending +web +h1→h2 /);
    expect(renderList([])).toBe('no operations');
  });
});

describe('watch while a pass scans', () => {
  const running = (): StoredRecord => {
    const r = migration();
    if (r.state === 'rejected') throw new Error('unreachable');
    const steps = r.steps.map((s, i) => (i < 2 ? { ...s, state: 'done' as const, startedAt: 1000, endedAt: 1100 } : i === 2 ? { ...s, state: 'running' as const, startedAt: 1100 } : s));
    return { ...r, state: 'running', steps };
  };
  const at = (p: { stage: string } & Record<string, unknown>): Record<string, ProgressEntry> => ({ [fields.progress('forward', 2)]: { phase: 'forward', index: 2, at: 1200, ...p } });

  it('says "scanning N files" instead of 0% at 0.00kB/s', () => {
    const text = renderStatus(running(), at({ stage: 'precopy', pass: 1, message: 'scanning 5251 files' }));
    expect(text).toMatch(/rsync-transfer .* running .*precopy pass 1: scanning 5251 files$/m);
    expect(text).not.toMatch(/0%/);
  });

  it('shows the bar once data moves', () => {
    const text = renderStatus(running(), at({ stage: 'precopy', pass: 1, bytes: 32768, percent: 45, rate: '12.34MB/s' }));
    expect(text).toMatch(/precopy pass 1 \[#+\.+\] {2}45% 12\.34MB\/s$/m);
  });
});
