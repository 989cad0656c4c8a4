import { mkdir, open, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { createHash } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { run } from '@ferry/infra';
import { diffManifests, type Entry } from '../src/manifest/manifest.js';
import { dedupeWhole } from '../src/unify/dedupe-range.js';
import { gcStore, unify, usedBytes } from '../src/unify/index.js';
import { buildContainers, DEDUPE_KEPT_BYTES, DEDUPE_SHARED_BYTES, inode, mountFs, shape, shareBlocks, type TestFs } from './unify/fixtures.js';

vi.setConfig({ testTimeout: 50_000, hookTimeout: 50_000 });

const sha = async (p: string) => createHash('sha256').update(await readFile(p)).digest('hex');

describe('unify, dedupe mode (XFS with reflink in a loop file)', () => {
  let fs: TestFs;
  let lxc: string;
  let roots: string[];
  let before: Entry[][];

  beforeAll(async () => {
    fs = await mountFs('xfs', 320);
    lxc = join(fs.dir, 'lxc');
    roots = await buildContainers(lxc, 3);
    before = await Promise.all(roots.map((r) => shape(r)));
  });
  afterAll(async () => {
    await fs?.close();
  });

  it('dry run reports what would be shared and changes nothing', async () => {
    const used = await usedBytes(fs.dir);
    const r = await unify(roots, { dryRun: true });
    expect(r.dryRun).toBe(true);
    expect(r.filesystem.type).toBe('xfs');
    expect(r.bytesShared).toBe(DEDUPE_SHARED_BYTES);
    expect(r.objectsCreated).toBe(0);
    for (const [i, root] of roots.entries()) expect(diffManifests(before[i]!, await shape(root))).toEqual([]);
    await expect(stat(join(lxc, '.ferry-store'))).rejects.toThrow();
    expect(await usedBytes(fs.dir)).toBe(used);
  });

  it('shares the duplicates: manifests and inodes unchanged, space freed by about their size', async () => {
    const inodes = await Promise.all(roots.map((r) => inode(join(r, 'bin/big'))));
    const r = await unify(roots, { running: [true, false, true] });
    expect(r.problems).toEqual([]);
    expect(r.mode).toBe('dedupe');
    expect(r.filesShared).toBeGreaterThan(0);
    expect(r.bytesShared).toBe(DEDUPE_SHARED_BYTES);
    // statfs, not du: the file system really gained about the duplicate bytes (block rounding aside).
    expect(r.bytesFreed).toBeGreaterThan(DEDUPE_SHARED_BYTES * 0.95);
    expect(r.bytesFreed).toBeLessThan(DEDUPE_SHARED_BYTES * 1.1);
    for (const [i, root] of roots.entries()) expect(diffManifests(before[i]!, await shape(root))).toEqual([]);
    expect(await Promise.all(roots.map((root) => inode(join(root, 'bin/big'))))).toEqual(inodes);
    // Shared where equal (even if metadata differs), not where excluded or skipped.
    expect(await shareBlocks(join(roots[0]!, 'bin/big'), join(roots[2]!, 'bin/big'))).toBe(true);
    expect(await shareBlocks(join(roots[0]!, 'usr/share/doc/readme'), join(roots[2]!, 'usr/share/doc/readme'))).toBe(true);
    expect(await shareBlocks(join(roots[0]!, 'etc/passwd'), join(roots[1]!, 'etc/passwd'))).toBe(false);
    expect(await shareBlocks(join(roots[0]!, 'var/log/messages'), join(roots[1]!, 'var/log/messages'))).toBe(false);
  });

  it('a second run finds everything already shared', async () => {
    const r = await unify(roots);
    expect(r.filesShared).toBe(0);
    // Now every copy shares the store object's blocks, the kept one included.
    expect(r.bytesAlreadyShared).toBe(DEDUPE_SHARED_BYTES + DEDUPE_KEPT_BYTES);
    expect(Math.abs(r.bytesFreed)).toBeLessThan(64 * 1024);
  });

  it('a write in one container changes only that container', async () => {
    const others = await Promise.all([sha(join(roots[1]!, 'bin/big')), sha(join(roots[2]!, 'bin/big'))]);
    const fh = await open(join(roots[0]!, 'bin/big'), 'r+');
    await fh.write(Buffer.from('changed in c0'), 0, 13, 1024 * 1024);
    await fh.close();
    expect(await sha(join(roots[0]!, 'bin/big'))).not.toBe(others[0]);
    expect([await sha(join(roots[1]!, 'bin/big')), await sha(join(roots[2]!, 'bin/big'))]).toEqual(others);
  });

  it('a container arriving later is unified against the store alone', async () => {
    const c3 = join(lxc, 'c3', 'rootfs');
    await mkdir(join(lxc, 'c3'));
    // A real copy: plain cp (and node's fs.cp) would reflink on XFS.
    await run('cp', ['-a', '--reflink=never', roots[1]!, c3]);
    const r = await unify([c3]);
    expect(r.problems).toEqual([]);
    // bin/big, libA, readme, x.dat, suid, app.conf and the non-UTF-8 file match store objects;
    // opt/a and opt/b too.
    expect(r.filesShared).toBeGreaterThanOrEqual(8);
    expect(await shareBlocks(join(c3, 'usr/lib/libA.so'), join(roots[0]!, 'usr/lib/libA.so'))).toBe(true);
    await rm(join(lxc, 'c3'), { recursive: true });
  });

  it('gc removes store objects that no container shares any more', async () => {
    for (const root of roots) await rm(join(root, 'usr/share/x.dat'));
    const dry = await gcStore(join(lxc, '.ferry-store'), { dryRun: true });
    expect(dry.objectsRemoved).toBe(1);
    const r = await gcStore(join(lxc, '.ferry-store'));
    expect(r.objectsRemoved).toBe(1);
    expect(r.bytesRemoved).toBe(200 * 1024);
    expect(r.bytesFreed).toBeGreaterThanOrEqual(200 * 1024);
  });

  it('a container writing while unify runs keeps exactly what it wrote', async () => {
    const size = 2 * 1024 * 1024;
    const shadow = Buffer.alloc(size, 7);
    for (const root of roots) await writeFile(join(root, 'opt/busy'), shadow);
    const other = await sha(join(roots[1]!, 'opt/busy'));
    const fh = await open(join(roots[0]!, 'opt/busy'), 'r+');
    let stop = false;
    let writes = 0;
    const writer = (async () => {
      while (!stop) {
        const off = Math.floor(Math.random() * (size - 16));
        const data = Buffer.from(`write ${writes++}`.padEnd(16, '.'));
        data.copy(shadow, off);
        await fh.write(data, 0, 16, off);
        await new Promise((r) => setTimeout(r, 2));
      }
    })();
    const r = await unify(roots);
    stop = true;
    await writer;
    await fh.close();
    expect(writes).toBeGreaterThan(10);
    expect(r.problems.filter((p) => p.code !== 'CHANGED')).toEqual([]);
    // Buffer.equals: vitest's deep equality is slow on megabytes.
    expect((await readFile(join(roots[0]!, 'opt/busy'))).equals(shadow)).toBe(true);
    expect(await sha(join(roots[1]!, 'opt/busy'))).toBe(other);
    expect(await shareBlocks(join(roots[1]!, 'opt/busy'), join(roots[2]!, 'opt/busy'))).toBe(true);
  });

  it("the caller's rules come before the defaults", async () => {
    await writeFile(join(roots[0]!, 'opt/late'), 'x'.repeat(100_000));
    await writeFile(join(roots[1]!, 'opt/late'), 'x'.repeat(100_000));
    const r = await unify(roots, { excludes: ['+/opt/late', '+/opt', '~*'], noDefaultExcludes: true });
    expect(r.filesExamined).toBe(2);
    expect(r.filesShared).toBe(1);
  });

  it('the kernel compares before sharing: files that differ are answered "differs"', async () => {
    await writeFile(join(fs.dir, 'p'), 'y'.repeat(50_000));
    await writeFile(join(fs.dir, 'q'), `${'y'.repeat(49_999)}z`);
    await writeFile(join(fs.dir, 'r'), 'y'.repeat(50_000));
    const [p, q, r] = await Promise.all(['p', 'q', 'r'].map((n) => open(join(fs.dir, n), 'r')));
    try {
      const out = await dedupeWhole(p!.fd, [q!.fd, r!.fd], 50_000);
      expect(out.map((o) => o.result)).toEqual(['differs', 'same']);
    } finally {
      for (const f of [p, q, r]) await f!.close();
    }
  });
});
