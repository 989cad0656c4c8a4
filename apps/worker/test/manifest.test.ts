import { randomBytes } from 'node:crypto';
import { chmod, link, mkdir, rm, unlink, utimes, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { run } from '@ferry/infra';
import { manifest, manifestDigest } from '../src/manifest/manifest.js';
import { buildTree, tempDir } from './helpers.js';

vi.setConfig({ testTimeout: 60_000, hookTimeout: 60_000 });

describe('manifest', () => {
  let root: string;
  beforeAll(async () => {
    root = await tempDir('ferry-manifest-');
    await buildTree(root);
  });
  afterAll(async () => {
    await rm(root, { recursive: true, force: true });
  });

  it('describes every path, sorted, a dir named like rsync\'s partial dir included', async () => {
    const m = await manifest(root);
    const paths = m.map((e) => e.path);
    expect(paths).toEqual([...paths].sort());
    expect(paths[0]).toBe('.');
    expect(paths).toContain('.ferry-partial/junk');
    expect(m.find((e) => e.path === 'a/f1')).toMatchObject({
      type: 'file',
      size: 6,
      sha256: '5891b5b522d5df086d0ff0b110fbd9d21bb4fc7163af34d08286a2e846f6be03',
      linkGroup: 'a/b/f1link',
    });
    expect(m.find((e) => e.path === 'sparse')).toMatchObject({ size: 64 * 1024 * 1024 });
    expect(Number.isInteger(m[0]!.mtimeMs)).toBe(true);
  });

  it('the digest is stable and sees every kind of change', async () => {
    // Times of whatever the changes touch are set to whole seconds, before and after each change.
    const touched = ['.', 'empty', 'a', 'owned', 'suid', 'a/f1'];
    const fixTimes = async () => {
      for (const p of touched) await utimes(join(root, p), 1_700_000_000, 1_700_000_000);
    };
    await fixTimes();
    const d0 = await manifestDigest(root);
    expect(await manifestDigest(root)).toBe(d0);
    const changes: Array<[string, () => Promise<unknown>, () => Promise<unknown>]> = [
      ['content', () => writeFile(join(root, 'owned'), 'y'), () => writeFile(join(root, 'owned'), 'x')],
      ['mode', () => chmod(join(root, 'suid'), 0o755), () => chmod(join(root, 'suid'), 0o4755)],
      ['xattr', () => run('setfattr', ['-n', 'user.new', '-v', '1', join(root, 'a/f1')]), () => run('setfattr', ['-x', 'user.new', join(root, 'a/f1')])],
      ['hard link', () => unlink(join(root, 'third-link')), () => link(join(root, 'a/f1'), join(root, 'third-link'))],
      ['new file', () => writeFile(join(root, 'empty/n'), ''), () => unlink(join(root, 'empty/n'))],
    ];
    for (const [what, change, undo] of changes) {
      await change();
      expect(await manifestDigest(root), what).not.toBe(d0);
      await undo();
      await fixTimes();
      expect(await manifestDigest(root), `${what} undone`).toBe(d0);
    }
    // A dir named like rsync's partial dir is the container's: it counts.
    await writeFile(join(root, '.ferry-partial/more'), 'z');
    await fixTimes();
    expect(await manifestDigest(root)).not.toBe(d0);
    await unlink(join(root, '.ferry-partial/more'));
  });

  it('is reasonably fast on a 256 MiB tree', async () => {
    const big = await tempDir('ferry-manifest-big-');
    try {
      const chunk = randomBytes(1024 * 1024);
      for (let d = 0; d < 8; d++) {
        await mkdir(join(big, `d${d}`));
        for (let f = 0; f < 8; f++) await writeFile(join(big, `d${d}`, `f${f}`), Buffer.concat([chunk, chunk, chunk, chunk]));
        for (let f = 0; f < 500; f++) await writeFile(join(big, `d${d}`, `small${f}`), `${d}-${f}`);
      }
      const started = Date.now();
      const m = await manifest(big);
      const ms = Date.now() - started;
      expect(m.length).toBe(1 + 8 + 8 * 508);
      console.log(`manifest of 256 MiB in ${m.length} entries: ${ms} ms`);
    } finally {
      await rm(big, { recursive: true, force: true });
    }
  });
});
