import { randomBytes } from 'node:crypto';
import { mkdir, readdir, rm, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { FerryError } from '@ferry/core';
import { run } from '@ferry/infra';
import { diffManifests, manifest, manifestDigest } from '../src/manifest/manifest.js';
import { rsyncPush, type RsyncProgress } from '../src/transfer/rsync.js';
import { RSYNC_NETWORK_EXITS } from '../src/transfer/rsync-errors.js';
import { sshCheck, sshRun, type SshTarget } from '../src/transfer/ssh.js';
import { buildTree, sshPeer, tempDir, type SshPeerFixture } from './helpers.js';

vi.setConfig({ testTimeout: 30_000, hookTimeout: 30_000 });

describe('rsync push over a real sshd in a network namespace', () => {
  let peer: SshPeerFixture;
  let src: string;
  let t: SshTarget;

  beforeAll(async () => {
    peer = await sshPeer(201, async (dir) => {
      await mkdir(join(dir, 'small'));
      await run('mount', ['-t', 'tmpfs', '-o', 'size=2m', 'tmpfs', join(dir, 'small')]);
      await mkdir(join(dir, 'dst'));
    });
    src = await tempDir('ferry-src-');
    await buildTree(src);
    t = { address: peer.address, port: peer.port, user: 'root', key: peer.key, knownHosts: peer.knownHosts };
  });

  afterAll(async () => {
    if (peer) {
      await run('umount', [join(peer.dir, 'small')]).catch(() => undefined);
      await peer.close();
    }
    if (src) await rm(src, { recursive: true, force: true });
  });

  it('ssh: runs a fixed command; refuses shell text', async () => {
    await sshCheck(t);
    const r = await sshRun(t, 'uname', ['-s']);
    expect(r.stdout.trim()).toBe('Linux');
    await expect(sshRun(t, 'echo', ['$(id)'])).rejects.toMatchObject({ code: 'INVALID_REMOTE_COMMAND' });
  });

  it('ssh: closed port → PEER_UNREACHABLE (retryable); wrong pinned key → PEER_HOST_KEY (not)', async () => {
    const e1 = await sshCheck({ ...t, port: 2299 }).catch((e: unknown) => e);
    expect(e1).toBeInstanceOf(FerryError);
    expect(e1).toMatchObject({ code: 'PEER_UNREACHABLE', retryable: true });
    const e2 = await sshCheck({ ...t, knownHosts: peer.wrongKnownHosts }).catch((e: unknown) => e);
    expect(e2).toMatchObject({ code: 'PEER_HOST_KEY', retryable: false });
  });

  it('copies hard links, xattrs, ACLs, a sparse file, devices, a fifo, symlinks, odd names: manifests equal', async () => {
    const dest = join(peer.dir, 'dst', 'c1');
    const progress: RsyncProgress[] = [];
    const s1 = await rsyncPush({ source: src, target: t, dest, onProgress: (p) => progress.push(p) });
    expect(s1.bytesSent).toBeGreaterThan(1024 * 1024);
    expect(s1.literalBytes).toBeGreaterThan(1024 * 1024);
    expect(s1.filesChanged).toBeGreaterThanOrEqual(8);
    expect(progress.length).toBeGreaterThan(0);
    expect(progress.at(-1)!.bytes).toBeGreaterThan(0);

    const [ms, md] = await Promise.all([manifest(src), manifest(dest)]);
    expect(diffManifests(ms, md)).toEqual([]);
    expect(md).toEqual(ms);
    expect(await manifestDigest(dest)).toBe(await manifestDigest(src));

    const byPath = new Map(md.map((e) => [e.path, e]));
    expect(byPath.get('a/f1')?.linkGroup).toBe('a/b/f1link');
    expect(byPath.get('third-link')?.linkGroup).toBe('a/b/f1link');
    expect(byPath.get('a/f1')?.xattrs).toMatchObject({ 'user.test': '0x76616c31' });
    expect(Object.keys(byPath.get('a/f1')?.xattrs ?? {})).toContain('system.posix_acl_access');
    expect(byPath.get('a/b')?.xattrs).toEqual({ 'trusted.x': '0xdead' });
    expect(byPath.get('null')).toMatchObject({ type: 'chardev', rdev: { major: 1, minor: 3 } });
    expect(byPath.get('loopx')).toMatchObject({ type: 'blockdev', rdev: { major: 7, minor: 200 } });
    expect(byPath.get('a/b/sym')).toMatchObject({ type: 'symlink', target: '../f1', uid: 1234, gid: 5678 });
    expect(byPath.get('suid')?.mode).toBe(0o4755);
    expect(byPath.get('new\nline')?.xattrs).toEqual({ 'user.k': '0x76' });
    expect(byPath.get('back\\slash')?.xattrs).toEqual({ 'user.k': '0x77' });
    expect(md.some((e) => e.rawPath === Buffer.from('bad-\xff\xfe', 'latin1').toString('hex'))).toBe(true);
    // The hole stayed a hole.
    const sp = await stat(join(dest, 'sparse'));
    expect(sp.size).toBe(64 * 1024 * 1024);
    expect(sp.blocks * 512).toBeLessThan(1024 * 1024);

    // Nothing changed: the next pass sends almost nothing and changes no file.
    const s2 = await rsyncPush({ source: src, target: t, dest });
    expect(s2.literalBytes).toBe(0);
    expect(s2.filesChanged).toBe(0);
    expect(s2.bytesSent).toBeLessThan(10_000);

    // One file changed, one deleted, in the same second as the last pass and with the same size:
    // the pass must still see it (nanosecond mtime comparison), and directory times must match.
    await writeFile(join(src, 'a/f1'), 'HELLO\n');
    await rm(join(src, 'random'));
    await mkdir(join(src, 'a/new'));
    const s3 = await rsyncPush({ source: src, target: t, dest });
    expect(s3.filesChanged).toBe(2);
    expect(diffManifests(await manifest(src), await manifest(dest))).toEqual([]);
    expect(await manifestDigest(dest)).toBe(await manifestDigest(src));
  });

  it('ferry files in the target dir survive --delete when excluded', async () => {
    const dest = join(peer.dir, 'dst', 'c2');
    await mkdir(dest);
    await writeFile(join(dest, '.ferry-migration'), 'm-test\n');
    await writeFile(join(dest, 'stale'), 'x');
    await rsyncPush({ source: src, target: t, dest, excludes: ['/.ferry-migration'] });
    const names = await readdir(dest);
    expect(names).toContain('.ferry-migration');
    expect(names).not.toContain('stale');
  });

  it('a single file to a missing dir creates that dir (the marker push)', async () => {
    const dest = join(peer.dir, 'dst', 'fresh');
    await rsyncPush({ source: src, files: ['owned'], profile: 'plain', target: t, dest });
    expect((await readdir(dest)).sort()).toEqual(['owned']);
  });

  it('closed port → TRANSFER_NETWORK, retryable', async () => {
    const e = await rsyncPush({ source: src, target: { ...t, port: 2299 }, dest: '/tmp/never' }).catch((x: unknown) => x);
    expect(e).toMatchObject({ code: 'TRANSFER_NETWORK', retryable: true });
    // ssh's 255 or rsync's 12, whichever side notices first: a race, not a contract.
    expect([...RSYNC_NETWORK_EXITS]).toContain((e as FerryError).details?.exitCode);
  });

  it('no host at the address → TRANSFER_NETWORK, retryable', async () => {
    const e = await rsyncPush({
      source: src,
      target: { ...t, address: peer.address.replace(/\.2$/, '.77'), connectTimeoutSec: 2 },
      dest: '/tmp/never',
    }).catch((x: unknown) => x);
    expect(e).toMatchObject({ code: 'TRANSFER_NETWORK', retryable: true });
  });

  it('unknown host key → PEER_HOST_KEY, not retryable', async () => {
    const e = await rsyncPush({ source: src, target: { ...t, knownHosts: peer.wrongKnownHosts }, dest: '/tmp/never' }).catch((x: unknown) => x);
    expect(e).toMatchObject({ code: 'PEER_HOST_KEY', retryable: false });
  });

  it('full target disk → TARGET_DISK_FULL, not retryable, naming the place', async () => {
    const big = await tempDir('ferry-big-');
    try {
      await writeFile(join(big, 'big'), randomBytes(5 * 1024 * 1024));
      const dest = join(peer.dir, 'small', 'c');
      const e = await rsyncPush({ source: big, target: t, dest, peerLabel: 'hostB' }).catch((x: unknown) => x);
      expect(e).toMatchObject({ code: 'TARGET_DISK_FULL', retryable: false });
      expect((e as Error).message).toMatch(/hostB/);
      expect((e as Error).message).toMatch(/No space left on device/);
      expect((e as Error).message).toContain(dest);
    } finally {
      await rm(big, { recursive: true, force: true });
    }
  });

  it('an interrupted pass is retryable and the next one resumes from the partial dir', async () => {
    const big = await tempDir('ferry-big-');
    try {
      await writeFile(join(big, 'big'), randomBytes(8 * 1024 * 1024));
      const dest = join(peer.dir, 'dst', 'resume');
      const partialDir = join(peer.dir, 'dst', '.resume.ferry-partial');
      const ac = new AbortController();
      let seen = 0;
      const e = await rsyncPush({
        source: big,
        target: t,
        dest,
        partialDir,
        bwlimitKBps: 2048,
        signal: ac.signal,
        onProgress: (p) => {
          seen = p.bytes;
          if (p.bytes > 3 * 1024 * 1024) ac.abort();
        },
      }).catch((x: unknown) => x);
      expect(e).toMatchObject({ code: 'TRANSFER_INTERRUPTED', retryable: true });
      expect(seen).toBeGreaterThan(3 * 1024 * 1024);
      // The receiver keeps what it got in the partial dir (beside the tree, not in it); give it a
      // moment to notice the hangup.
      const partial = join(partialDir, 'big');
      let kept = 0;
      for (let i = 0; i < 50 && kept === 0; i++) {
        kept = await stat(partial).then((s) => s.size, () => 0);
        if (!kept) await new Promise((r) => setTimeout(r, 100));
      }
      expect(kept).toBeGreaterThan(1024 * 1024);
      const s = await rsyncPush({ source: big, target: t, dest, partialDir });
      expect(s.literalBytes).toBeLessThan(8 * 1024 * 1024 - kept / 2);
      expect(await manifest(dest)).toEqual(await manifest(big));
      expect((await readdir(dest)).sort()).toEqual(['big']);
    } finally {
      await rm(big, { recursive: true, force: true });
    }
  });
});
