import { readdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { run } from '@ferry/infra';
import { diffManifests, type Entry } from '../src/manifest/manifest.js';
import { unify, usedBytes } from '../src/unify/index.js';
import { buildContainers, inode, mountFs, shape, type TestFs } from './unify/fixtures.js';

vi.setConfig({ testTimeout: 50_000, hookTimeout: 50_000 });

/** Bytes hardlink mode shares in the fixture: equal content AND equal metadata only. */
const HARDLINK_SHARED_BYTES =
  2 * (3 * 1024 * 1024) + // bin/big
  2 * (1024 * 1024) + // libA (one inode with two links per tree)
  1 * (10 * 1024) + // readme: c2's mtime differs
  1 * (200 * 1024) + // x.dat: c1 has an extra xattr
  2 * (64 * 1024) + // suid (owner, mode, ACL equal everywhere)
  1 * 6000 + // app.conf: c2's owner differs
  (3 * 2 - 1) * (256 * 1024) + // opt/a and opt/b
  2 * 8192; // non-UTF-8 name

const immutable = async (p: string) => (await run('lsattr', ['-d', p])).stdout.split(/\s/)[0]!.includes('i');

describe('unify, hardlink mode (XFS in a loop file)', () => {
  let fs: TestFs;
  let lxc: string;
  let roots: string[];
  let before: Entry[][];
  let inodesBefore: bigint[][];
  const probe = ['bin/big', 'usr/lib/libA.so', 'usr/share/doc/readme', 'usr/share/x.dat', 'usr/bin/suid', 'etc/app.conf', 'opt/a', 'opt/b'];

  beforeAll(async () => {
    fs = await mountFs('xfs', 320);
    lxc = join(fs.dir, 'lxc');
    roots = await buildContainers(lxc, 3);
    before = await Promise.all(roots.map((r) => shape(r)));
    inodesBefore = await Promise.all(roots.map((r) => Promise.all(probe.map((p) => inode(join(r, p))))));
  });
  afterAll(async () => {
    await fs?.close();
  });

  it('refuses running containers, and callers that do not say', async () => {
    await expect(unify(roots, { mode: 'hardlink', running: [false, true, false] })).rejects.toMatchObject({
      code: 'UNIFY_CONTAINER_RUNNING',
      message: expect.stringContaining(roots[1]!),
    });
    await expect(unify(roots, { mode: 'hardlink' })).rejects.toMatchObject({ code: 'UNIFY_BAD_ARGUMENT' });
    await expect(unify(roots, { revert: true, running: [false, false, false] })).rejects.toMatchObject({ code: 'UNIFY_JOURNAL_MISSING' });
  });

  it('dry run reports and changes nothing', async () => {
    const used = await usedBytes(fs.dir);
    const r = await unify(roots, { mode: 'hardlink', dryRun: true });
    expect(r.bytesShared).toBe(HARDLINK_SHARED_BYTES);
    for (const [i, root] of roots.entries()) expect(diffManifests(before[i]!, await shape(root))).toEqual([]);
    expect(await usedBytes(fs.dir)).toBe(used);
  });

  it('links equal files with equal metadata, makes them immutable, keeps every manifest', async () => {
    const r = await unify(roots, { mode: 'hardlink', running: [false, false, false] });
    expect(r.problems).toEqual([]);
    expect(r.bytesShared).toBe(HARDLINK_SHARED_BYTES);
    expect(r.bytesFreed).toBeGreaterThan(HARDLINK_SHARED_BYTES * 0.95);
    expect(r.bytesFreed).toBeLessThan(HARDLINK_SHARED_BYTES * 1.1);
    // Contents, modes, owners, mtimes, xattrs and ACLs as before; only link groups differ.
    for (const [i, root] of roots.entries()) {
      expect(diffManifests(await shape(root, { linkGroups: false }), before[i]!.map(({ linkGroup: _l, ...e }) => e))).toEqual([]);
    }
    const ino = (i: number, p: string) => inode(join(roots[i]!, p));
    expect(await ino(0, 'bin/big')).toBe(await ino(2, 'bin/big'));
    expect(await ino(0, 'usr/lib/libA.so.1')).toBe(await ino(1, 'usr/lib/libA.so'));
    expect(await ino(0, 'opt/a')).toBe(await ino(0, 'opt/b'));
    expect(await ino(0, 'usr/bin/suid')).toBe(await ino(2, 'usr/bin/suid'));
    // Differ only in mtime, an xattr, the owner: not linked.
    expect(await ino(0, 'usr/share/doc/readme')).not.toBe(await ino(2, 'usr/share/doc/readme'));
    expect(await ino(0, 'usr/share/x.dat')).not.toBe(await ino(1, 'usr/share/x.dat'));
    expect(await ino(0, 'usr/share/x.dat')).toBe(await ino(2, 'usr/share/x.dat'));
    expect(await ino(0, 'etc/app.conf')).not.toBe(await ino(2, 'etc/app.conf'));
    // Excluded by default.
    expect(await ino(0, 'etc/passwd')).not.toBe(await ino(1, 'etc/passwd'));
    // Shared inodes are immutable: no container changes them in place.
    expect(await immutable(join(roots[1]!, 'bin/big'))).toBe(true);
    expect(await immutable(join(roots[1]!, 'unique'))).toBe(false);
    await expect(writeFile(join(roots[1]!, 'bin/big'), 'x')).rejects.toMatchObject({ code: 'EPERM' });
    // The journal holds one record per original inode that was linked or kept.
    const journal = (await readFile(join(lxc, '.ferry-store', 'journal.jsonl'), 'utf8')).trim().split('\n');
    expect(journal.length).toBeGreaterThan(10);
  });

  it('a second run has nothing left to do', async () => {
    const r = await unify(roots, { mode: 'hardlink', running: [false, false, false] });
    expect(r.filesShared).toBe(0);
    expect(r.filesAlreadyShared).toBeGreaterThan(0);
  });

  it('revert restores every file as its own inode, exactly as before', async () => {
    const r = await unify(roots, { revert: true, running: [false, false, false] });
    expect(r.problems).toEqual([]);
    expect(r.filesRestored).toBeGreaterThan(0);
    for (const [i, root] of roots.entries()) expect(diffManifests(before[i]!, await shape(root))).toEqual([]);
    // Separate inodes again, across and within trees; nothing immutable; the store empty.
    const after = await Promise.all(roots.map((root) => Promise.all(probe.map((p) => inode(join(root, p))))));
    const all = after.flat();
    expect(new Set(all).size).toBe(all.length);
    expect(after.flat().length).toBe(inodesBefore.flat().length);
    for (const root of roots) for (const p of probe) expect(await immutable(join(root, p))).toBe(false);
    expect((await readFile(join(lxc, '.ferry-store', 'journal.jsonl'), 'utf8')).trim()).toBe('');
    expect(await readdir(join(lxc, '.ferry-store', 'links'))).toEqual(expect.any(Array));
    const left = (await run('find', [join(lxc, '.ferry-store', 'links'), '-type', 'f'])).stdout.trim();
    expect(left).toBe('');
  });

  it('revert of one container leaves the others linked', async () => {
    await unify(roots, { mode: 'hardlink', running: [false, false, false] });
    const r = await unify([roots[0]!], { revert: true, running: [false] });
    expect(r.problems).toEqual([]);
    expect(diffManifests(before[0]!, await shape(roots[0]!))).toEqual([]);
    expect(await inode(join(roots[0]!, 'bin/big'))).not.toBe(await inode(join(roots[1]!, 'bin/big')));
    expect(await inode(join(roots[1]!, 'bin/big'))).toBe(await inode(join(roots[2]!, 'bin/big')));
    expect(await immutable(join(roots[1]!, 'bin/big'))).toBe(true);
    expect(await immutable(join(roots[0]!, 'bin/big'))).toBe(false);
    await unify([roots[1]!, roots[2]!], { revert: true, running: [false, false] });
    for (const [i, root] of roots.entries()) expect(diffManifests(before[i]!, await shape(root))).toEqual([]);
  });
});
