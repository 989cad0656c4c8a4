import { describe, expect, it } from 'vitest';
import { pino } from 'pino';
import type { StepContext } from '../../apps/worker/src/context.js';
import { FakeRuntime, FakeWorld, fakeSteps } from '../support/fake/index.js';

/** FAKE: the fast tier's own tools, checked before the workflow tests lean on them. */
describe('fake world, runtime and steps (the fast tier’s test tools)', () => {
  const world = () => {
    const w = new FakeWorld();
    w.addHost('h1');
    w.addHost('h2', { checkpoint: true });
    return w;
  };

  it('the invariant check catches a container active on two hosts at once, at the change that did it', async () => {
    const w = world();
    w.create('h1', 'web', { state: 'RUNNING' });
    w.create('h2', 'web', { state: 'STOPPED' });
    expect(w.violations).toEqual([]);
    w.setState('h2', 'web', 'RUNNING');
    w.setState('h2', 'web', 'STOPPED');
    expect(w.violations).toHaveLength(1);
    expect(w.violations[0]).toContain('web active on h1 and h2 (after h2: STOPPED -> RUNNING)');
    // Frozen counts: its processes exist.
    w.setState('h1', 'web', 'FROZEN');
    w.setState('h2', 'web', 'RUNNING');
    expect(w.violations).toHaveLength(2);
  });

  it('the runtime declares what it can do and refuses what LXC would', async () => {
    const w = world();
    const h1 = new FakeRuntime(w, 'h1', '/fake/h1');
    const h2 = new FakeRuntime(w, 'h2', '/fake/h2');
    expect(await h1.capabilities()).toMatchObject({ runtime: 'fake', freeze: true, checkpoint: false, exec: false, mounts: false, setIdentity: true });
    expect((await h1.capabilities()).checkpointReason).toBeTruthy();
    expect((await h2.capabilities()).checkpoint).toBe(true);
    await expect(h1.checkpoint('web', '/x')).rejects.toMatchObject({ code: 'CHECKPOINT_UNSUPPORTED' });
    await expect(h1.exec('web')).rejects.toMatchObject({ code: 'EXEC_UNSUPPORTED' });
    await expect(h1.start('web')).rejects.toMatchObject({ code: 'FAKE_RUNTIME_REFUSED' });

    w.create('h1', 'web', { ip: '10.0.3.10', mac: '02:00:00:00:00:10' });
    expect(await h1.info('web')).toMatchObject({ name: 'web', state: 'STOPPED', ip: '10.0.3.10' });
    await expect(h1.freeze('web')).rejects.toMatchObject({ code: 'FAKE_RUNTIME_REFUSED' });
    await h1.start('web');
    expect((await h1.info('web'))?.pid).toBeGreaterThan(0);
    await expect(h1.destroy('web')).rejects.toMatchObject({ code: 'FAKE_RUNTIME_REFUSED' });
    // A copy whose config still names its source's paths does not start until adopted.
    w.add('h2', { name: 'web', state: 'STOPPED', files: new Map(), config: { bindMounts: [], pathsOf: 'h1' } });
    await expect(h2.start('web')).rejects.toMatchObject({ message: expect.stringContaining('not adopted') });
    expect(w.violations).toEqual([]);
    await h2.adoptConfig('web', { containerDir: '/fake/h1/web', rootfsDir: '/fake/h1/web/rootfs' });
    await h2.start('web');
    expect(w.violations).toHaveLength(1);
  });

  it('fake steps observe before they act: a checkpoint run again after its freeze takes the container as it is', async () => {
    const w = world();
    w.create('h1', 'web', { state: 'RUNNING', files: { 'a': '1' } });
    w.add('h2', { name: 'web', state: 'STOPPED', files: new Map(), marker: 'm-aaaaaa01' });
    const ctx: StepContext = {
      host: { name: 'h1', address: '127.0.0.1', sshPort: 22, sshUser: 'root', lxcPath: '/fake/h1', sshKey: '', knownHosts: '', stateDir: '/fake/h1/.state' },
      runtime: new FakeRuntime(w, 'h1', '/fake/h1'),
      log: pino({ level: 'silent' }),
      progress: () => undefined,
      peerInfo: async () => null,
      signal: new AbortController().signal,
    };
    const steps = fakeSteps(w);
    const fault = w.faults.add({ step: 'checkpoint', host: 'h1', at: 'middle', kind: 'fail', retryable: true, code: 'TRANSFER_NETWORK' });
    const input = { migrationId: 'm-aaaaaa01', container: 'web', epoch: 1, peer: { name: 'h2', address: '127.0.0.1', sshPort: 22, sshUser: 'root', lxcPath: '/fake/h2' }, mode: 'restart' as const, wasRunning: true, verify: 'changed' as const };
    await expect(steps.checkpoint(ctx, input)).rejects.toMatchObject({ code: 'TRANSFER_NETWORK', retryable: true });
    expect(fault.hits).toBe(1);
    expect(w.container('h1', 'web')!.state).toBe('FROZEN');
    const out = await steps.checkpoint(ctx, input);
    expect(out).toMatchObject({ method: 'stop', verify: 'changed' });
    expect(w.historyOf('h1', 'web')).toEqual(['absent', 'RUNNING', 'FROZEN', 'STOPPED']);
    expect(w.container('h2', 'web')!.files.get('a')).toBe('1');
    // Delivered once more: the recorded result, nothing done again.
    expect(await steps.checkpoint(ctx, input)).toEqual(out);
    expect(w.events).toHaveLength(4);
  });
});
