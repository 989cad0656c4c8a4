/**
 * The dashboard's sections from a snapshot made by hand: what each shows, and that nothing read
 * from Redis (which hosts write) reaches the page unescaped. Pure; no Redis.
 */
import { describe, expect, it } from 'vitest';
import { fields, newRecord, parseMigrationRequest, summarize, workflows, type Capabilities, type HostInfo, type MigrateRecord } from '@ferry/core';
import { renderSections } from '../src/view.js';
import { renderPage } from '../src/page.js';
import type { Snapshot } from '../src/snapshot.js';

const caps: Capabilities = { runtime: 'lxc', freeze: true, checkpoint: false, checkpointReason: 'criu check failed' };
const peer = (name: string) => ({ name, address: '198.18.0.11', sshPort: 22, sshUser: 'root', lxcPath: `/lab/${name}/lxc` });
const NOW = 1_000_000;
const HOSTILE = '<img src=x onerror=alert(1)>';

function migration(id: string): MigrateRecord {
  const request = parseMigrationRequest({ container: 'web', from: 'h1', to: 'h2' });
  const r = newRecord({ id, kind: 'migrate', request, plan: workflows.migrate.plan(request, () => caps), hosts: { source: peer('h1'), target: peer('h2') }, epoch: 1, now: NOW - 60_000 });
  if (r.kind !== 'migrate') throw new Error('unreachable');
  return r;
}

function host(name: string, containers: HostInfo['containers']): HostInfo {
  return { ...peer(name), capabilities: caps, containers, freeBytes: 50 * 2 ** 30, capacity: { cpus: 4, memBytes: 8 * 2 ** 30 }, lastSeen: NOW - 60_000, workerPid: 1 };
}

function snapshot(): Snapshot {
  const running = migration('m-running0001');
  running.state = 'running';
  running.steps = running.steps.map((s, i) => (i < 2 ? { ...s, state: 'done', startedAt: NOW - 50_000, endedAt: NOW - 49_900 } : i === 2 ? { ...s, state: 'running', enqueuedAt: NOW - 12_000 } : s));
  const done = migration('m-done000001');
  Object.assign(done, { state: 'done', endedAt: NOW - 1000 });
  const failed = migration('m-failed00001');
  Object.assign(failed, { state: 'rolled-back', endedAt: NOW - 500, error: { name: 'StepError', code: 'FAKE_DISK_ERROR', message: `disk said ${HOSTILE}`, retryable: false } });
  return {
    at: NOW,
    hosts: [
      host('h1', [{ name: 'web', state: 'RUNNING', ip: '10.0.3.10', load: { cpu: 1, memBytes: 2 * 2 ** 30, diskBytes: 2 ** 20 } }]),
      { ...host('h2', [{ name: 'db', state: 'STOPPED', checkpoint: { at: NOW - 5000 } }]), address: HOSTILE as never },
    ],
    alive: new Map([
      ['h1', NOW - 400],
      ['h2', NOW - 9000],
    ]),
    active: [{ record: running, summary: summarize(running), progress: { [fields.progress('forward', 2)]: { phase: 'forward', index: 2, at: NOW, stage: 'precopy', pass: 2, percent: 42, bytes: 3 * 2 ** 20, rate: '12.34MB/s' } } }],
    ended: [
      { record: failed, summary: summarize(failed), progress: {} },
      { record: done, summary: { ...summarize(done), bytesTransferred: 25 * 2 ** 20, frozenMs: 710, downtimeMs: 851 }, progress: {} },
    ],
  };
}

describe('dashboard sections', () => {
  const s = renderSections(snapshot());

  it('hosts: load against capacity, free disk, heartbeat age (late past 5 s), each container with its state and load', () => {
    expect(s.hosts).toMatch(/<tbody data-host="h1">/);
    expect(s.hosts).toMatch(/25% of 4/); // 1 CPU of 4
    expect(s.hosts).toMatch(/25% \(2\.0 GiB of 8\.0 GiB\)/);
    expect(s.hosts).toMatch(/50\.0 GiB/);
    expect(s.hosts).toMatch(/<td class="ok">0\.4 s ago<\/td>/);
    expect(s.hosts).toMatch(/<td class="late">9\.0 s ago<\/td>/);
    expect(s.hosts).toMatch(/<tr class="container" data-container="web"><td>web<\/td><td>10\.0\.3\.10<\/td><td class="state RUNNING">RUNNING<\/td><td>1\.00 cpu<\/td><td>2\.0 GiB<\/td><td>disk 1\.0 MiB<\/td>/);
    expect(s.hosts).toMatch(/data-container="db".*checkpointed/);
  });

  it('running: each step with host and state, the running one with its stage, bar, bytes, rate and time since issued', () => {
    expect(s.running).toMatch(/<article class="operation" data-op="m-running0001" data-state="running">/);
    expect(s.running).toMatch(/migrate m-running0001: web h1 → h2 \(restart\)/);
    expect(s.running).toMatch(/<tr data-step="preflight" data-phase="forward" data-state="done">.*100 ms/);
    const transfer = /<tr data-step="rsync-transfer"[^]*?<\/tr>/.exec(s.running)![0];
    expect(transfer).toMatch(/precopy pass 2/);
    expect(transfer).toMatch(/<progress max="100" value="42"><\/progress> <span class="percent">42%<\/span>/);
    expect(transfer).toMatch(/3\.0 MiB/);
    expect(transfer).toMatch(/12\.34MB\/s/);
    expect(transfer).toMatch(/12\.0 s/);
    expect(s.running).toMatch(/<tr data-step="checkpoint" data-phase="forward" data-state="pending">/);
  });

  it('history: newest first, with its figures (took, frozen, downtime, moved) and the error of one that failed', () => {
    const rows = s.history.split('<tr data-op=').slice(1);
    expect(rows.map((r) => r.split('"')[1])).toEqual(['m-failed00001', 'm-done000001']);
    expect(rows[1]).toMatch(/<td>migrate<\/td><td class="subject">web<\/td><td>h1 → h2<\/td><td>restart<\/td><td class="state done">done<\/td><td>59\.00 s<\/td><td>710 ms<\/td><td>851 ms<\/td><td>25\.0 MiB<\/td><td class="error"><\/td>/);
    expect(rows[0]).toMatch(/FAKE_DISK_ERROR: disk said/);
  });

  it('escapes whatever came from Redis', () => {
    const all = Object.values(s).join('\n');
    expect(all).not.toContain(HOSTILE);
    expect(all).toContain('&lt;img src=x onerror=alert(1)&gt;');
    expect(renderPage(s)).not.toContain(HOSTILE);
  });

  it('says when there is nothing to show', () => {
    const empty = renderSections({ at: NOW, hosts: [], alive: new Map(), active: [], ended: [] });
    expect(empty.hosts).toMatch(/no hosts registered/);
    expect(empty.running).toMatch(/nothing running/);
    expect(empty.history).toMatch(/no operation has ended yet/);
  });
});
