/**
 * Fixtures for the unify tests: real file systems in loop files (XFS with reflink, ext4) or tmpfs,
 * and container root filesystems with every kind of difference unify must respect.
 * Every mount and loop device is released by `close()`, which never throws.
 */
import { createHash, randomBytes } from 'node:crypto';
import { chmod, chown, link, lstat, mkdir, mkdtemp, rm, symlink, utimes, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { run, succeeds } from '@ferry/infra';
import { manifest, type Entry } from '../../src/manifest/manifest.js';
import { extents, sameBlocks } from '../../src/unify/extents.js';
import { openRead } from '../../src/unify/content.js';

export interface TestFs {
  /** Mount point. */
  dir: string;
  close(): Promise<void>;
}

/** A fresh file system of `kind` mounted on a temporary directory (XFS needs at least 300 MB). */
export async function mountFs(kind: 'xfs' | 'ext4' | 'tmpfs', sizeMiB = 320): Promise<TestFs> {
  const base = await mkdtemp(join(tmpdir(), `ferry-unify-${kind}-`));
  const dir = join(base, 'mnt');
  await mkdir(dir);
  const img = join(base, 'fs.img');
  let loop: string | undefined;
  let mounted = false;
  const close = async () => {
    if (mounted) {
      if (!(await succeeds('umount', [dir]))) await succeeds('umount', ['-l', dir]);
    }
    if (loop) await succeeds('losetup', ['-d', loop]);
    await rm(base, { recursive: true, force: true }).catch(() => {});
  };
  try {
    if (kind === 'tmpfs') {
      await run('mount', ['-t', 'tmpfs', '-o', `size=${sizeMiB}m`, 'tmpfs', dir]);
    } else {
      await run('truncate', ['-s', `${sizeMiB}M`, img]);
      if (kind === 'xfs') await run('mkfs.xfs', ['-q', '-m', 'reflink=1', img]);
      else await run('mkfs.ext4', ['-q', '-F', img]);
      loop = (await run('losetup', ['--find', '--show', img])).stdout.trim();
      await run('mount', [loop, dir]);
    }
    mounted = true;
  } catch (e) {
    await close();
    throw e;
  }
  return { dir, close };
}

const T0 = 1_600_000_000;
const bytes = (n: number, seed: string) => {
  // Deterministic per seed, different between seeds, incompressible enough.
  const out = Buffer.alloc(n);
  let block: Buffer = Buffer.from(seed);
  for (let off = 0; off < n; off += 32) {
    block = createHash('sha256').update(block).digest();
    block.copy(out, off);
  }
  return out;
};

async function file(root: string, rel: string, content: Buffer | string, o: { mode?: number; uid?: number; gid?: number; mtime?: number } = {}) {
  const p = join(root, rel);
  await mkdir(join(p, '..'), { recursive: true });
  await writeFile(p, content);
  await chown(p, o.uid ?? 0, o.gid ?? 0);
  await chmod(p, o.mode ?? 0o644);
  await utimes(p, T0, o.mtime ?? T0);
}

/**
 * Builds `n` container directories `<lxcPath>/c<i>/rootfs` that are copies of one image with
 * differences. Sizes are what the tests' space figures rely on (see SHARED_BYTES).
 */
export async function buildContainers(lxcPath: string, n = 3): Promise<string[]> {
  const big = bytes(3 * 1024 * 1024, 'big');
  const lib = bytes(1024 * 1024, 'lib');
  const dat = bytes(200 * 1024, 'dat');
  const doc = bytes(10 * 1024, 'doc');
  const suid = bytes(64 * 1024, 'suid');
  const opt = bytes(256 * 1024, 'opt');
  const log = bytes(300 * 1024, 'log');
  const out: string[] = [];
  for (let i = 0; i < n; i++) {
    const r = join(lxcPath, `c${i}`, 'rootfs');
    await mkdir(r, { recursive: true });
    for (const d of ['proc', 'sys', 'dev', 'tmp', 'etc', 'var/log', 'usr/lib', 'usr/bin', 'usr/share/doc', 'opt']) await mkdir(join(r, d), { recursive: true });
    await file(r, 'bin/big', big, { mode: 0o755 });
    await file(r, 'usr/lib/libA.so', lib, { mode: 0o755 });
    await link(join(r, 'usr/lib/libA.so'), join(r, 'usr/lib/libA.so.1'));
    // Same content everywhere; c2's copy has another mtime (dedupe: shared; hardlink: not).
    await file(r, 'usr/share/doc/readme', doc, { mtime: i === 2 ? T0 + 60 : T0 });
    // Same content everywhere; c1's copy has an extra xattr (dedupe: shared; hardlink: not).
    await file(r, 'usr/share/x.dat', dat);
    await run('setfattr', ['-n', 'user.origin', '-v', 'image', join(r, 'usr/share/x.dat')]);
    if (i === 1) await run('setfattr', ['-n', 'user.extra', '-v', 'c1', join(r, 'usr/share/x.dat')]);
    await utimes(join(r, 'usr/share/x.dat'), T0, T0);
    // setuid, owned by a user, with an ACL: all equal in every container.
    await file(r, 'usr/bin/suid', suid, { mode: 0o4755, uid: 1000, gid: 1000 });
    await run('setfacl', ['-m', 'u:1001:r', join(r, 'usr/bin/suid')]);
    await chmod(join(r, 'usr/bin/suid'), 0o4755);
    await utimes(join(r, 'usr/bin/suid'), T0, T0);
    // Owner differs in c2.
    await file(r, 'etc/app.conf', 'setting = 1\n'.repeat(500), { uid: i === 2 ? 0 : 1000, gid: i === 2 ? 0 : 1000 });
    // Identical but excluded by default (passwd) or skipped (var/log).
    await file(r, 'etc/passwd', 'root:x:0:0:root:/root:/bin/sh\n'.repeat(100));
    await file(r, 'var/log/messages', log);
    await file(r, `etc/hostname`, `c${i}\n`);
    await file(r, 'etc/empty', '');
    // Two equal files inside one tree.
    await file(r, 'opt/a', opt);
    await file(r, 'opt/b', opt);
    // A name that is not UTF-8.
    const raw = Buffer.concat([Buffer.from(join(r, 'opt/')), Buffer.from([0xff, 0x66])]);
    await writeFile(raw, bytes(8192, 'raw'));
    await utimes(raw, T0, T0);
    // Unique to each container.
    await file(r, 'unique', bytes(512 * 1024, `unique-${i}`));
    await symlink('usr/lib', join(r, 'lib'));
    await symlink('big', join(r, 'bin/sh'));
    for (const d of ['', 'etc', 'opt', 'bin', 'usr/lib', 'usr/share', 'usr/share/doc', 'usr/bin', 'var/log']) await utimes(join(r, d), T0, T0);
    out.push(r);
  }
  await run('sync', []);
  return out;
}

/** Bytes a full unify of 3 containers should share with the default exclusions (dedupe mode). */
export const DEDUPE_SHARED_BYTES =
  2 * (3 * 1024 * 1024) + // bin/big
  2 * (1024 * 1024) + // libA (one inode, two links)
  2 * (10 * 1024) + // readme
  2 * (200 * 1024) + // x.dat
  2 * (64 * 1024) + // suid
  2 * 6000 + // app.conf
  (3 * 2 - 1) * (256 * 1024) + // opt/a and opt/b in three trees
  2 * 8192; // non-UTF-8 name

/** One copy of each of those contents: the copy the others now share. */
export const DEDUPE_KEPT_BYTES = 3 * 1024 * 1024 + 1024 * 1024 + 10 * 1024 + 200 * 1024 + 64 * 1024 + 6000 + 256 * 1024 + 8192;

/** The manifest of a tree without what hardlinking may change (link groups). */
export async function shape(root: string, opts: { linkGroups?: boolean } = {}): Promise<Entry[]> {
  const m = await manifest(root);
  return opts.linkGroups === false ? m.map(({ linkGroup: _lg, ...e }) => e) : m;
}

export async function inode(p: string | Buffer): Promise<bigint> {
  return (await lstat(p, { bigint: true })).ino;
}

export async function shareBlocks(a: string, b: string): Promise<boolean> {
  const fa = await openRead(a);
  const fb = await openRead(b);
  try {
    return sameBlocks(extents(fa.fd), extents(fb.fd));
  } finally {
    await fa.close();
    await fb.close();
  }
}

export const rand = () => randomBytes(4).toString('hex');
