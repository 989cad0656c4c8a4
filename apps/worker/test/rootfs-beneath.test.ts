import { mkdir, mkdtemp, readFile, lstat, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { readRootfsFile, rootfsEntry, writeRootfsFile } from '../src/runtime/rootfs.js';

// Writes into a container's rootfs from the host never follow a link the container (or a copied
// config) put there: not at the top (the rootfs itself), not in a directory, not the file itself.
describe('rootfs writes stay beneath the rootfs', () => {
  let dir: string;
  let rootfs: string;
  let outside: string;
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'ferry-rootfs-'));
    rootfs = join(dir, 'rootfs');
    outside = join(dir, 'host');
    await mkdir(join(rootfs, 'etc'), { recursive: true });
    await mkdir(join(outside, 'etc'), { recursive: true });
    await writeFile(join(outside, 'etc/hostname'), 'the host\n');
  });
  afterEach(() => rm(dir, { recursive: true, force: true }));

  it('writes a plain file', async () => {
    expect(await writeRootfsFile(rootfs, 'etc/hostname', 'web2\n')).toBe(true);
    expect(await readRootfsFile(rootfs, 'etc/hostname')).toBe('web2\n');
  });

  it('refuses a rootfs that is itself a symlink, and writes nothing where it points', async () => {
    const linked = join(dir, 'linked-rootfs');
    await symlink(outside, linked);
    await expect(writeRootfsFile(linked, 'etc/hostname', 'web2\n')).rejects.toMatchObject({ code: 'ROOTFS_UNSAFE_PATH' });
    await expect(readRootfsFile(linked, 'etc/hostname')).rejects.toMatchObject({ code: 'ROOTFS_UNSAFE_PATH' });
    expect(await readFile(join(outside, 'etc/hostname'), 'utf8')).toBe('the host\n');
  });

  it('refuses a directory on the way that is a symlink', async () => {
    await rm(join(rootfs, 'etc'), { recursive: true });
    await symlink(join(outside, 'etc'), join(rootfs, 'etc'));
    await expect(writeRootfsFile(rootfs, 'etc/hostname', 'web2\n')).rejects.toMatchObject({ code: 'ROOTFS_UNSAFE_PATH' });
    expect(await readFile(join(outside, 'etc/hostname'), 'utf8')).toBe('the host\n');
  });

  it('replaces a file that is a symlink instead of writing through it', async () => {
    await symlink(join(outside, 'etc/hostname'), join(rootfs, 'etc/hostname'));
    expect(await rootfsEntry(rootfs, 'etc/hostname')).toBe('symlink');
    expect(await readRootfsFile(rootfs, 'etc/hostname')).toBeNull();
    expect(await writeRootfsFile(rootfs, 'etc/hostname', 'web2\n')).toBe(true);
    expect((await lstat(join(rootfs, 'etc/hostname'))).isFile()).toBe(true);
    expect(await readFile(join(outside, 'etc/hostname'), 'utf8')).toBe('the host\n');
  });

  it('refuses paths that climb out', async () => {
    await expect(writeRootfsFile(rootfs, '../host/etc/hostname', 'x')).rejects.toThrow(/not a plain relative path/);
    await expect(writeRootfsFile(rootfs, 'etc/../../host/etc/hostname', 'x')).rejects.toThrow(/not a plain relative path/);
    expect(await readFile(join(outside, 'etc/hostname'), 'utf8')).toBe('the host\n');
  });
});
