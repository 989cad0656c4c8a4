import { beforeAll, describe, expect, it } from 'vitest';
import { join } from 'node:path';
import { run } from '@ferry/infra';
import { hostExec, labContainerCreate, type LabInfo } from '@ferry/lab';
import { manifest, manifestDigest } from '../../apps/worker/src/manifest/manifest.js';
import { containerState, ferry, useLab } from '../support/lab.js';

// The wiring of unify in the lab: CLI → scheduler → the host's worker → the engine. The lab's LXC
// paths are on ext4 here, so dedupe must refuse clearly and hardlink mode must work; the engine's
// dedupe itself is tested on a real XFS filesystem in apps/worker/test/unify-dedupe.test.ts.
describe('unify in the lab', () => {
  const { lab: getLab, host: h } = useLab(2);
  let lab: LabInfo;
  const rootfs = (name: string) => join(h('h1').lxcPath, name, 'rootfs');
  /** The manifest without hard-link groups: what unify must leave unchanged. */
  const content = async (name: string) => (await manifest(rootfs(name))).map(({ linkGroup: _l, ...e }) => e);

  beforeAll(async () => {
    lab = getLab();
    for (const n of ['u1', 'u2']) await labContainerCreate({ name: n, host: 'h1', sizeMb: 2 });
  });

  it('hardlink mode is refused for running containers, before anything is queued', async () => {
    const r = await ferry(['unify', 'u1', 'u2', '--mode', 'hardlink']);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/'u1' is RUNNING; hardlink mode .* needs stopped containers/);
  });

  it('dedupe where the filesystem cannot share blocks fails with a clear error, changing nothing', async () => {
    const before = await manifestDigest(rootfs('u1'));
    const r = await ferry(['unify', 'u1', 'u2', '--json']);
    expect(r.code).toBe(1);
    const s = JSON.parse(r.stdout.trim().split('\n').at(-1)!) as { state: string; error: { code: string; message: string } };
    expect(s.state).toBe('rolled-back');
    expect(s.error.code).toBe('UNIFY_NOT_SUPPORTED');
    expect(s.error.message).toMatch(/ext4/);
    expect(await manifestDigest(rootfs('u1'))).toBe(before);
  });

  it('a dry run where the filesystem cannot share blocks still counts the duplicates and says which mode could share them', async () => {
    const before = await manifestDigest(rootfs('u1'));
    const r = await ferry(['unify', 'u1', 'u2', '--dry-run']);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^unify m-\S+: u1, u2 on h1 \(dedupe, dry run\) {2}DONE$/m);
    expect(r.stdout).toMatch(/would share \d+ files/);
    expect(r.stdout).toMatch(/on ext4: hardlink \(stopped containers only\) could share them; dedupe cannot \(/);
    expect(await manifestDigest(rootfs('u1'))).toBe(before);
  });

  it('hardlink mode shares identical files of stopped containers, and revert makes every file its own again', async () => {
    for (const n of ['u1', 'u2']) await hostExec('h1', ['lxc-stop', '-P', h('h1').lxcPath, '-n', n, '-k']);
    await new Promise((r) => setTimeout(r, 2500)); // the registry shows them stopped at the next beat
    expect(await containerState('h1', h('h1').lxcPath, 'u1')).toBe('STOPPED');
    // The same software in both, as from one image: equal content and metadata (the template wrote
    // each container's files at its own time, and hardlink mode rightly refuses unequal mtimes).
    await run('cp', ['-a', '--reflink=never', join(rootfs('u1'), 'bin'), join(rootfs('u1'), 'opt-lib')]);
    await run('cp', ['-a', '--reflink=never', join(rootfs('u1'), 'opt-lib'), join(rootfs('u2'), 'opt-lib')]);
    const before = { u1: await content('u1'), u2: await content('u2'), d1: await manifestDigest(rootfs('u1')) };

    const dry = await ferry(['unify', 'u1', 'u2', '--mode', 'hardlink', '--dry-run', '--json']);
    expect(dry.code).toBe(0);
    const dryReport = JSON.parse(dry.stdout.trim().split('\n').at(-1)!).report as { filesShared: number; bytesFreed: number };
    expect(dryReport.filesShared).toBeGreaterThan(0);
    expect(await manifestDigest(rootfs('u1'))).toBe(before.d1);

    const r = await ferry(['unify', 'u1', 'u2', '--mode', 'hardlink', '--json']);
    expect(r.stderr).not.toMatch(/ferry: /);
    expect(r.code).toBe(0);
    const report = JSON.parse(r.stdout.trim().split('\n').at(-1)!).report as { filesShared: number; bytesShared: number; bytesFreed: number };
    expect(report.filesShared).toBeGreaterThan(0);
    expect(report.bytesFreed).toBeGreaterThan(0);
    expect(await content('u1')).toEqual(before.u1);
    expect(await content('u2')).toEqual(before.u2);

    const back = await ferry(['unify', 'u1', 'u2', '--mode', 'hardlink', '--revert', '--json']);
    expect(back.code).toBe(0);
    expect(await content('u1')).toEqual(before.u1);
    expect(await manifestDigest(rootfs('u1'))).toBe(before.d1);
  });

  it('unknown containers are bad input', async () => {
    const r = await ferry(['unify', 'u1', 'nope', '--host', 'h1']);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/'nope' does not exist on host h1/);
  });
});
