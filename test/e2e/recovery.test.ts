import { beforeAll, describe, expect, it } from 'vitest';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { run } from '@ferry/infra';
import { labContainerCreate, startScheduler, startWorker, stopScheduler, stopWorker, type LabInfo } from '@ferry/lab';
import { containerState, ferry, httpFrom, useLab } from '../support/lab.js';

async function status(id: string) {
  return JSON.parse((await ferry(['status', id, '--json'])).stdout) as { state: string; steps: { name: string; state: string; phase: string }[]; error?: { code: string } };
}

async function until<T>(what: string, fn: () => Promise<T | null | undefined | false>, ms = 120_000): Promise<T> {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    const v = await fn();
    if (v) return v;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`timed out waiting for ${what}`);
}

// Real lab, real processes killed with SIGKILL and started again as a supervisor would.
describe('retry and cancel after a crash', () => {
  const { lab: getLab, host: h } = useLab(2);
  let lab: LabInfo;

  beforeAll(async () => {
    lab = getLab();
  });

  it('cancel during the transfer, after the scheduler was killed, rolls back: source runs, target has nothing', async () => {
    const ct = await labContainerCreate({ name: 'cx1', host: 'h1', sizeMb: 48 });
    const sub = await ferry(['migrate', 'cx1', '--from', 'h1', '--to', 'h2', '--bwlimit', '4000', '--json']);
    expect(sub.code).toBe(0);
    const { id } = JSON.parse(sub.stdout) as { id: string };
    await until('the transfer', async () => (await status(id)).steps.find((s) => s.name === 'rsync-transfer')?.state === 'running');
    await stopScheduler('SIGKILL');
    await startScheduler();
    const c = await ferry(['cancel', id, '--wait']);
    expect(c.stderr).not.toMatch(/ferry: /);
    expect(c.code).toBe(0);
    const s = await status(id);
    expect(s.state).toBe('rolled-back');
    expect(s.steps.filter((x) => x.phase === 'rollback').map((x) => x.name)).toEqual(['discard-target']);
    expect(await containerState('h1', h('h1').lxcPath, 'cx1')).toBe('RUNNING');
    expect(existsSync(join(h('h2').lxcPath, 'cx1'))).toBe(false);
    expect(await httpFrom(lab.client.netns, `http://${ct.ip}/`)).toContain('cx1');
    // The container is free again: a new migration is accepted.
    expect((await ferry(['migrate', 'cx1', '--from', 'h1', '--to', 'h2', '--wait', '--json'])).code).toBe(0);
  });

  it('a migration paused past the point of no return resumes with retry after the scheduler and a worker were killed', async () => {
    await labContainerCreate({ name: 'cx2', host: 'h1', sizeMb: 4 });
    // A file system mounted inside the source's rootfs makes its removal fail (lxc-destroy does not
    // cross devices): after the target runs the container, the migration pauses.
    const pinned = join(h('h1').lxcPath, 'cx2', 'rootfs', 'mnt', 'pinned');
    await run('mkdir', ['-p', pinned]);
    await run('mount', ['-t', 'tmpfs', '-o', 'size=1m', 'ferry-test-pin', pinned]);
    try {
      const r = await ferry(['migrate', 'cx2', '--from', 'h1', '--to', 'h2', '--wait', '--json']);
      expect(r.code).toBe(1);
      const paused = JSON.parse(r.stdout.trim().split('\n').at(-1)!) as { id: string; state: string };
      expect(paused.state).toBe('paused');
      expect(await containerState('h2', h('h2').lxcPath, 'cx2')).toBe('RUNNING');
      expect(await containerState('h1', h('h1').lxcPath, 'cx2')).toBe('STOPPED');
      // Cancel is refused past the point of no return; the container runs on the target only.
      const refused = await ferry(['cancel', paused.id]);
      expect(refused.code).toBe(2);
      expect(refused.stderr).toMatch(/already runs on the target/);

      await stopScheduler('SIGKILL');
      await stopWorker('h1', 'SIGKILL');
      await run('umount', [pinned]);
      await startWorker('h1');
      await startScheduler();
      const retried = await ferry(['retry', paused.id, '--wait']);
      expect(retried.code).toBe(0);
      expect((await status(paused.id)).state).toBe('done');
      expect(existsSync(join(h('h1').lxcPath, 'cx2'))).toBe(false);
      expect(await containerState('h2', h('h2').lxcPath, 'cx2')).toBe('RUNNING');
    } finally {
      await run('umount', [pinned]).catch(() => undefined);
    }
  });

  it('SIGTERM to the source worker mid-transfer hands the step back; the migration still ends done', async () => {
    await labContainerCreate({ name: 'cx3', host: 'h1', sizeMb: 32 });
    const sub = await ferry(['migrate', 'cx3', '--from', 'h1', '--to', 'h2', '--bwlimit', '4000', '--json']);
    const { id } = JSON.parse(sub.stdout) as { id: string };
    await until('the transfer', async () => (await status(id)).steps.find((s) => s.name === 'rsync-transfer')?.state === 'running');
    await new Promise((r) => setTimeout(r, 1500));
    await stopWorker('h1', 'SIGTERM');
    await startWorker('h1');
    const end = await until('the end', async () => {
      const s = await status(id);
      return ['done', 'rolled-back', 'paused'].includes(s.state) && s;
    }, 180_000);
    expect(end.state).toBe('done');
    expect(await containerState('h2', h('h2').lxcPath, 'cx3')).toBe('RUNNING');
  });

  it('retry of a migration that is not paused is bad input', async () => {
    const r = await ferry(['retry', 'm-doesnotexist']);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/no operation with id m-doesnotexist/);
  });
});
