import { mkdir, readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { formatReport, unify } from '../src/unify/index.js';
import { buildContainers, mountFs, type TestFs } from './unify/fixtures.js';

vi.setConfig({ testTimeout: 50_000, hookTimeout: 50_000 });

describe('unify where block sharing is not supported', () => {
  const mounts: TestFs[] = [];
  let ext4: string[];
  let tmpfs: string[];

  beforeAll(async () => {
    const e = await mountFs('ext4', 64);
    mounts.push(e);
    const t = await mountFs('tmpfs', 64);
    mounts.push(t);
    ext4 = await buildContainers(join(e.dir, 'lxc'), 2);
    tmpfs = await buildContainers(join(t.dir, 'lxc'), 2);
  });
  afterAll(async () => {
    for (const m of mounts) await m.close();
  });

  it('dedupe on ext4 fails with UNIFY_NOT_SUPPORTED naming the file system, and creates no store', async () => {
    const err = await unify(ext4).catch((e: unknown) => e);
    expect(err).toMatchObject({ code: 'UNIFY_NOT_SUPPORTED', message: expect.stringMatching(/dedupe is not supported by the ext4 file system at .*EOPNOTSUPP/) });
    expect(await readdir(join(ext4[0]!, '..', '..'))).toEqual(['c0', 'c1']);
  });

  it('a dry run on ext4 counts the duplicates and says which mode could share them there, changing nothing', async () => {
    const dry = await unify(ext4, { dryRun: true });
    expect(dry.filesystem.type).toBe('ext4');
    expect(dry.modes).toMatchObject({ dedupe: false, hardlink: true, notes: expect.arrayContaining([expect.stringMatching(/EOPNOTSUPP/)]) });
    // dedupe's count (content only) and hardlink's (content and metadata: c1's x.dat has an extra xattr).
    expect(dry.duplicateGroups).toBeGreaterThan(0);
    expect(dry.filesShared).toBeGreaterThan(0);
    const dryLinks = await unify(ext4, { dryRun: true, mode: 'hardlink' });
    expect(dryLinks.modes).toEqual(dry.modes);
    expect(dryLinks.filesShared).toBeGreaterThan(0);
    expect(dryLinks.filesShared).toBeLessThan(dry.filesShared);
    const text = formatReport(dry);
    expect(text).toMatch(/\[dry run\]/);
    expect(text).toMatch(/would share \d+ files/);
    expect(text).toMatch(/on ext4: hardlink \(stopped containers only\) could share them; dedupe cannot \(.*EOPNOTSUPP.*\)/);
    expect(await readdir(join(ext4[0]!, '..', '..'))).toEqual(['c0', 'c1']);
  });

  it('dedupe on tmpfs fails with UNIFY_NOT_SUPPORTED naming tmpfs; its dry run counts and says dedupe cannot', async () => {
    await expect(unify(tmpfs)).rejects.toMatchObject({ code: 'UNIFY_NOT_SUPPORTED', message: expect.stringContaining('tmpfs') });
    const dry = await unify(tmpfs, { dryRun: true });
    expect(dry.modes?.dedupe).toBe(false);
    expect(dry.filesShared).toBeGreaterThan(0);
    expect(formatReport(dry)).toMatch(/on tmpfs: .*dedupe cannot/);
  });

  it('hardlink mode still works on ext4 (links and the immutable flag need no block sharing)', async () => {
    const r = await unify(ext4, { mode: 'hardlink', running: [false, false] });
    expect(r.filesystem.type).toBe('ext4');
    expect(r.filesShared).toBeGreaterThan(0);
    expect(r.bytesFreed).toBeGreaterThan(r.bytesShared * 0.9);
    const back = await unify(ext4, { revert: true, running: [false, false] });
    expect(back.problems).toEqual([]);
  });

  it('a store on another file system is refused', async () => {
    await mkdir(join(mounts[1]!.dir, 'store-elsewhere'), { recursive: true });
    await expect(unify(ext4, { store: join(mounts[1]!.dir, 'store-elsewhere', '.ferry-store') })).rejects.toMatchObject({
      code: 'UNIFY_CROSS_FILESYSTEM',
    });
  });
});
