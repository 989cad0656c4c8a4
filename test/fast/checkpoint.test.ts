import { describe, expect, it, vi } from 'vitest';
import { shownState, type OperationRecord } from '@ferry/core';
import { FakeCluster, useFakeClusters, FakeRuntime, FakeWorld, filesDigest } from '../support/fake/index.js';
import { describeHost } from '../../apps/worker/src/heartbeat.js';

/**
 * FAST TIER, FAKE HOSTS: `ferry checkpoint` and `ferry restore` (in place and to another host)
 * through the real scheduler, processor and host workers on fake hosts, forward and rollback.
 * With real CRIU: apps/worker/test/checkpoint-to-disk.test.ts. After every test: no container was
 * ever active on two hosts at once.
 */
describe('checkpoint to disk and restore (fast tier: fake hosts, real scheduler and workers)', () => {
  const clusters = useFakeClusters();

  const FILES = { 'etc/hostname': 'web\n', 'srv/data': 'counter=41\n' };
  const names = (steps: OperationRecord['steps']) => steps.map((s) => `${s.name}@${s.host}`);

  async function cluster(opts: { h2Checkpoint?: boolean } = {}): Promise<FakeCluster> {
    const world = new FakeWorld();
    world.addHost('h1', { checkpoint: true });
    world.addHost('h2', { checkpoint: opts.h2Checkpoint ?? true });
    world.create('h1', 'web', { state: 'RUNNING', ip: '10.0.3.10', mac: '02:00:00:00:00:10', files: FILES });
    const c = await clusters.start({ world });
    return c;
  }

  /** What a worker of `host` publishes for `web`, from a runtime made afresh (as after a restart). */
  async function published(c: FakeCluster, host: string) {
    const cfg = c.hostConfig(host);
    const info = await describeHost(cfg, new FakeRuntime(c.world, host, cfg.lxcPath));
    return info.containers.find((x) => x.name === 'web');
  }

  async function checkpointed(c: FakeCluster): Promise<string> {
    const id = await c.submit('checkpoint', { container: 'web', host: 'h1' });
    const r = await c.waitFor(id, 'done');
    expect(names(r.steps)).toEqual(['checkpoint-dump@h1']);
    return id;
  }

  it('checkpoint: dumped to disk and stopped; published as checkpointed, also by a restarted worker', async () => {
    const c = await cluster();
    const id = await checkpointed(c);
    const web = c.world.container('h1', 'web')!;
    expect(web.state).toBe('STOPPED');
    expect(web.checkpoint).toMatchObject({ operation: id });
    const pub = await published(c, 'h1');
    expect(pub?.checkpoint?.at).toBe(web.checkpoint!.at);
    expect(shownState(pub!)).toBe('checkpointed');
    expect(await c.store.lockHolder('web')).toBeNull();
  });

  it('checkpoint refused: a container that is not running (named reason), a host that cannot (rejected at submission)', async () => {
    const c = await cluster({ h2Checkpoint: false });
    c.world.setState('h1', 'web', 'STOPPED');
    const r = await c.waitFor(await c.submit('checkpoint', { container: 'web', host: 'h1' }), 'rolled-back');
    expect(r.error?.code).toBe('CONTAINER_NOT_RUNNING');
    expect(c.world.container('h1', 'web')!.state).toBe('STOPPED');
    c.world.create('h2', 'db', { state: 'RUNNING' });
    const id = await c.submit('checkpoint', { container: 'db', host: 'h2' });
    const rej = await vi.waitFor(async () => {
      const x = await c.store.get(id);
      if (x?.state !== 'rejected') throw new Error(`not rejected yet: ${x?.state}`);
      return x;
    });
    expect(rej.error.message).toMatch(/h2 cannot checkpoint/);
    expect(c.world.container('h2', 'db')!.state).toBe('RUNNING');
  });

  it('a dump that fails after the container stopped leaves it running, with no checkpoint', async () => {
    const c = await cluster();
    c.world.faults.add({ step: 'checkpoint-dump', host: 'h1', at: 'middle', kind: 'fail', code: 'FAKE_CRIU_FAILED' });
    const r = await c.waitFor(await c.submit('checkpoint', { container: 'web', host: 'h1' }), 'rolled-back');
    expect(r.error?.code).toBe('FAKE_CRIU_FAILED');
    expect(c.world.runningOn('web')).toEqual(['h1']);
    expect(c.world.container('h1', 'web')!.checkpoint).toBeUndefined();
    expect((await published(c, 'h1'))?.checkpoint).toBeUndefined();
  });

  it('restore in place: runs again from its images, which are then removed; a re-run after the start finishes it', async () => {
    const c = await cluster();
    await checkpointed(c);
    // The first attempt fails once the container runs, before the images are removed.
    c.world.faults.add({ step: 'checkpoint-restore', host: 'h1', at: 'middle', kind: 'fail', code: 'FAKE_RM_FAILED', retryable: true, times: 1 });
    const r = await c.waitFor(await c.submit('restore', { container: 'web', from: 'h1', to: 'h1' }), 'done');
    expect(names(r.steps)).toEqual(['checkpoint-restore@h1']);
    expect(r.steps[0]!.attempts).toBe(2);
    expect(c.world.runningOn('web')).toEqual(['h1']);
    expect(c.world.container('h1', 'web')!.checkpoint).toBeUndefined();
    expect((await published(c, 'h1'))?.state).toBe('RUNNING');
    expect((await published(c, 'h1'))?.checkpoint).toBeUndefined();
  });

  it('restore to another host: rootfs and images move, it runs there from them, the source copy is removed', async () => {
    const c = await cluster();
    await checkpointed(c);
    const r = await c.waitFor(await c.submit('restore', { container: 'web', from: 'h1', to: 'h2' }), 'done');
    expect(names(r.steps)).toEqual(['preflight@h1', 'preflight@h2', 'rsync-transfer@h1', 'checkpoint@h1', 'restore@h2', 'arp-refresh@h2', 'cleanup@h1']);
    expect(c.world.presentOn('web')).toEqual(['h2']);
    expect(c.world.runningOn('web')).toEqual(['h2']);
    const there = c.world.container('h2', 'web')!;
    expect(there.checkpoint).toBeUndefined();
    expect(filesDigest(there.files)).toBe(filesDigest(new Map(Object.entries(FILES))));
    expect(c.world.historyOf('h1', 'web')).toEqual(['absent', 'RUNNING', 'STOPPED', 'absent']);
    expect(await c.store.owner('web')).toMatchObject({ host: 'h2' });
    expect(await c.store.lockHolder('web')).toBeNull();
  });

  it('restore to another host that fails before the target runs it: the copy goes, the source stays checkpointed', async () => {
    const c = await cluster();
    const cp = await checkpointed(c);
    c.world.faults.add({ step: 'restore', host: 'h2', at: 'start', kind: 'fail', code: 'FAKE_RESTORE_FAILED' });
    const r = await c.waitFor(await c.submit('restore', { container: 'web', from: 'h1', to: 'h2' }), 'rolled-back');
    expect(r.error?.code).toBe('FAKE_RESTORE_FAILED');
    expect(names(r.rollback)).toEqual(['discard-target@h2', 'resume-source@h1']);
    expect(r.rollback[1]!.output).toEqual({ action: 'none', running: false });
    expect(c.world.presentOn('web')).toEqual(['h1']);
    expect(c.world.activeOn('web')).toEqual([]);
    expect(c.world.container('h1', 'web')!.checkpoint).toMatchObject({ operation: cp });
    expect(shownState((await published(c, 'h1'))!)).toBe('checkpointed');
    expect(await c.store.owner('web')).toMatchObject({ host: 'h1' });
    // And it can still be restored where it is.
    await c.waitFor(await c.submit('restore', { container: 'web', from: 'h1', to: 'h1' }), 'done');
    expect(c.world.runningOn('web')).toEqual(['h1']);
  });

  it('restore of a container that is not checkpointed is refused by the source preflight', async () => {
    const c = await cluster();
    const r = await c.waitFor(await c.submit('restore', { container: 'web', from: 'h1', to: 'h2' }), 'rolled-back');
    expect(r.error?.code).toBe('NOT_CHECKPOINTED');
    expect(c.world.runningOn('web')).toEqual(['h1']);
    expect(c.world.presentOn('web')).toEqual(['h1']);
  });
});
