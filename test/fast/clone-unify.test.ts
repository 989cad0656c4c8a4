import { describe, expect, it } from 'vitest';
import { macFromId, type OperationRecord } from '@ferry/core';
import { FakeCluster, useFakeClusters, FakeWorld, filesDigest } from '../support/fake/index.js';

/**
 * FAST TIER, FAKE HOSTS: clones and unify through the real scheduler, processor and host workers
 * on fake hosts (test/support/fake). On real hosts: test/e2e/clone.test.ts, test/e2e/unify.test.ts.
 * After every test: no container was ever active on two hosts at once.
 */
describe('clone and unify (fast tier: fake hosts, real scheduler and workers)', () => {
  const clusters = useFakeClusters();

  const names = (steps: OperationRecord['steps']) => steps.map((s) => `${s.name}@${s.host}`);
  const WEB = {
    'etc/hostname': 'web\n',
    'etc/hosts': '127.0.0.1 localhost\n127.0.1.1 web web.lan\n10.0.3.9 web-db\n',
    'etc/machine-id': '0123456789abcdef0123456789abcdef\n',
    'etc/ssh/ssh_host_ed25519_key': 'PRIVATE\n',
    'etc/ssh/ssh_host_ed25519_key.pub': 'PUBLIC\n',
    'etc/ssh/sshd_config': 'Port 22\n',
    'srv/www/index.html': '<h1>hello</h1>\n',
  };

  async function cluster(): Promise<FakeCluster> {
    const world = new FakeWorld();
    world.addHost('h1');
    world.addHost('h2');
    world.create('h1', 'web', { state: 'RUNNING', ip: '10.0.3.10', mac: '02:00:00:00:00:10', hostname: 'web', files: WEB });
    const c = await clusters.start({ world });
    return c;
  }

  /** The source as it was: running on h1 only, its files untouched. */
  function expectSourceUntouched(c: FakeCluster) {
    expect(c.world.presentOn('web')).toEqual(['h1']);
    expect(c.world.runningOn('web')).toEqual(['h1']);
    expect(filesDigest(c.world.container('h1', 'web')!.files)).toBe(filesDigest(new Map(Object.entries(WEB))));
    expect(c.world.container('h1', 'web')!.config).toMatchObject({ ip: '10.0.3.10', mac: '02:00:00:00:00:10', hostname: 'web' });
  }

  it('clone forward: the copy runs on the target under its own name and identity; the source, frozen for the last pass, runs on', async () => {
    const c = await cluster();
    const id = await c.clone({ container: 'web', name: 'web2', from: 'h1', to: 'h2', ip: '10.0.3.20', freeze: true });
    const r = await c.waitFor(id, 'done');
    expect(names(r.steps)).toEqual(['preflight@h1', 'preflight@h2', 'clone-copy@h1', 'clone-identity@h2']);
    expect(r.steps[2]!.output).toMatchObject({ frozen: true });
    const copy = c.world.container('h2', 'web2')!;
    expect(copy.state).toBe('RUNNING');
    expect(copy.marker).toBeUndefined();
    expect(copy.config).toMatchObject({ ip: '10.0.3.20', mac: macFromId(id), hostname: 'web2', pathsOf: 'h2' });
    expect(copy.files.get('etc/hostname')).toBe('web2\n');
    expect(copy.files.get('etc/hosts')).toBe('127.0.0.1 localhost\n127.0.1.1 web2 web2.lan\n10.0.3.9 web-db\n');
    expect(copy.files.get('etc/machine-id')).not.toBe(WEB['etc/machine-id']);
    expect([...copy.files.keys()].filter((p) => p.startsWith('etc/ssh/'))).toEqual(['etc/ssh/sshd_config']);
    expect(r.steps[3]!.output).toMatchObject({ running: true, ip: '10.0.3.20', removedHostKeys: ['/etc/ssh/ssh_host_ed25519_key', '/etc/ssh/ssh_host_ed25519_key.pub'] });
    expect(c.world.presentOn('web2')).toEqual(['h2']);
    expectSourceUntouched(c);
    expect(c.world.historyOf('h1', 'web')).toEqual(['absent', 'RUNNING', 'FROZEN', 'RUNNING']);
    expect(await c.store.lockHolder('web2')).toBeNull();
  });

  it('clone rollback: a copy that fails while the source is frozen is removed, and the source is thawed', async () => {
    const c = await cluster();
    c.world.faults.add({ step: 'clone-copy', host: 'h1', at: 'middle', kind: 'fail', code: 'FAKE_COPY_FAILED' });
    const id = await c.clone({ container: 'web', name: 'web2', from: 'h1', to: 'h2', freeze: true });
    const r = await c.waitFor(id, 'rolled-back');
    expect(r.error?.code).toBe('FAKE_COPY_FAILED');
    expect(names(r.rollback)).toEqual(['discard-target@h2', 'resume-source@h1']);
    expect(r.rollback[0]!.output).toEqual({ stopped: false, removed: true });
    expect(r.rollback.every((s) => s.state === 'done')).toBe(true);
    expect(c.world.presentOn('web2')).toEqual([]);
    expectSourceUntouched(c);
    expect(c.world.historyOf('h1', 'web')).toEqual(['absent', 'RUNNING', 'FROZEN', 'RUNNING']);
  });

  it('clone rollback after the copy got its identity (marker gone): removed by its ownership record', async () => {
    const c = await cluster();
    c.world.faults.add({ step: 'clone-identity', host: 'h2', at: 'middle', kind: 'fail' });
    const id = await c.clone({ container: 'web', name: 'web2', from: 'h1', to: 'h2', freeze: true });
    const r = await c.waitFor(id, 'rolled-back');
    expect(r.rollback[0]).toMatchObject({ name: 'discard-target', state: 'done', output: { removed: true } });
    expect(c.world.presentOn('web2')).toEqual([]);
    expect(c.world.host('h2').scratch.has(id)).toBe(false);
    expectSourceUntouched(c);
  });

  it('unify forward on one host: identical files shared, containers left as they ran', async () => {
    const world = new FakeWorld();
    world.addHost('h1');
    const base = { 'bin/busybox': 'B'.repeat(10_000), 'etc/os-release': 'NAME=fake\n' };
    world.create('h1', 'a', { state: 'RUNNING', files: { ...base, 'etc/hostname': 'a\n' } });
    world.create('h1', 'b', { files: { ...base, 'etc/hostname': 'b\n' } });
    const c = await clusters.start({ world, hosts: ['h1'] });
    const id = await c.unify({ containers: ['a', 'b'], host: 'h1' });
    const r = await c.waitFor(id, 'done');
    expect(names(r.steps)).toEqual(['unify@h1']);
    expect(r.steps[0]!.output).toMatchObject({ filesExamined: 6, filesShared: 2, bytesShared: 10_000 + 'NAME=fake\n'.length, bytesFreed: 10_000 + 'NAME=fake\n'.length });
    expect(c.world.container('h1', 'a')!.state).toBe('RUNNING');
    expect(c.world.container('h1', 'b')!.state).toBe('STOPPED');
    expect(await c.store.lockHolder('a')).toBeNull();

    // Again: nothing more to share. Hardlink mode refuses a running container; nothing to undo.
    const again = await c.waitFor(await c.unify({ containers: ['a', 'b'], host: 'h1' }), 'done');
    expect(again.steps[0]!.output).toMatchObject({ filesShared: 0, filesAlreadyShared: 2, bytesFreed: 0 });
    const hard = await c.waitFor(await c.unify({ containers: ['a', 'b'], host: 'h1', mode: 'hardlink' }), 'rolled-back');
    expect(hard.error?.code).toBe('UNIFY_CONTAINER_RUNNING');
    expect(hard.rollback).toEqual([]);
  });
});
