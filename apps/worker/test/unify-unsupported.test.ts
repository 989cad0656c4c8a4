import { mkdir, readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { unify } from '../src/unify/index.js';
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
    await expect(unify(ext4, { dryRun: true })).rejects.toMatchObject({ code: 'UNIFY_NOT_SUPPORTED' });
    expect(await readdir(join(ext4[0]!, '..', '..'))).toEqual(['c0', 'c1']);
  });

  it('dedupe on tmpfs fails with UNIFY_NOT_SUPPORTED naming tmpfs', async () => {
    await expect(unify(tmpfs)).rejects.toMatchObject({ code: 'UNIFY_NOT_SUPPORTED', message: expect.stringContaining('tmpfs') });
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
