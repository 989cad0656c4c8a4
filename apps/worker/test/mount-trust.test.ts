/**
 * `ferry mount` on a real running container (BindMountOps + LxcRuntime): only directories below
 * the worker's mount roots, resolved; always nosuid,nodev; and the live mount enters the
 * container's namespace only through its init, never through a PID that now names another process.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdir, readFile, rm, stat, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { procId, run } from '@ferry/infra';
import { BindMountOps } from '../src/mounts/mount-ops.js';
import { LxcRuntime } from '../src/runtime/lxc.js';
import { liveBindMount } from '../src/runtime/live-mount.js';
import { secureMountRoots } from '../src/runtime/mount-roots.js';
import { makeContainer, rand, rejection, removeLxcPath, tempDir } from './helpers.js';

vi.setConfig({ testTimeout: 60_000, hookTimeout: 60_000 });

/** Mount points (field 5) with their per-mount options (field 6) in a /proc/<pid>/mountinfo. */
async function mounts(pid: number | 'self'): Promise<Map<string, string[]>> {
  const text = await readFile(`/proc/${pid}/mountinfo`, 'utf8');
  return new Map(text.split('\n').filter(Boolean).map((l) => [l.split(' ')[4]!, l.split(' ')[5]!.split(',')]));
}

describe('ferry mount: host directories from the mount roots only, nosuid,nodev, through the init', () => {
  let base: string;
  let lxcPath: string;
  let shared: string;
  let rt: LxcRuntime;
  let ops: BindMountOps;
  let pid: number;
  let hostProc: ChildProcess | undefined;
  const name = `mt-${rand()}`;
  const req = () => `r-${rand(6)}`;

  beforeAll(async () => {
    base = await tempDir('ferry-mount-trust-');
    lxcPath = join(base, 'lxc');
    shared = join(base, 'shared');
    await mkdir(join(shared, 'data'), { recursive: true });
    await mkdir(join(base, 'outside'));
    await symlink('/etc', join(shared, 'etc-link'));
    await makeContainer(lxcPath, name);
    await makeContainer(lxcPath, 'other');
    // As the worker does at start: the root a mount of its own, nosuid,nodev (binds inherit it).
    expect(await secureMountRoots([shared])).toEqual({ secured: [shared], missing: [] });
    expect(await secureMountRoots([shared, join(base, 'nope')])).toEqual({ secured: [], missing: [join(base, 'nope')] });
    rt = new LxcRuntime({ lxcPath, mountRoots: [shared], protectedDirs: [join(base, 'state')] });
    ops = new BindMountOps({ runtime: rt, host: 'h1', log: pino({ level: 'silent' }), policy: rt.bindPolicy });
    await rt.start(name);
    pid = (await rt.info(name))!.pid!;
  });

  afterAll(async () => {
    hostProc?.kill('SIGKILL');
    await removeLxcPath(lxcPath);
    await run('umount', ['-l', shared]).catch(() => undefined);
    await rm(base, { recursive: true, force: true });
  });

  it('refuses /, /root/.ssh, another container, a link out of a root, a dir outside the roots: nothing mounted, config unchanged', async () => {
    const config = () => readFile(join(lxcPath, name, 'config'), 'utf8');
    const before = await config();
    const cases: Array<[string, RegExp]> = [
      ['/', /host's root/],
      ['/root/.ssh', /lies in \/root/],
      ['/etc', /lies in \/etc/],
      [join(lxcPath, 'other', 'rootfs'), /lies in the LXC path/],
      [join(shared, 'etc-link'), /resolves to \/etc/],
      [join(base, 'outside'), /not under an allowed mount root/],
      [join(base, 'state'), /worker's own state/],
    ];
    for (const [hostDir, why] of cases) {
      const e = await rejection(ops.mount({ kind: 'mount', requestId: req(), container: name, hostDir, path: '/mnt/x', readOnly: false }));
      expect(e, hostDir).toMatchObject({ code: 'BIND_SOURCE_NOT_ALLOWED' });
      expect(String(e?.message), hostDir).toMatch(why);
    }
    expect(await config()).toBe(before);
    expect((await mounts(pid)).has('/mnt/x')).toBe(false);
    // No roots configured: nothing at all may be shared.
    const none = new BindMountOps({ runtime: rt, host: 'h1', log: pino({ level: 'silent' }), policy: { ...rt.bindPolicy, roots: [] } });
    const e = await rejection(none.mount({ kind: 'mount', requestId: req(), container: name, hostDir: join(shared, 'data'), path: '/mnt/x', readOnly: false }));
    expect(e).toMatchObject({ code: 'BIND_SOURCE_NOT_ALLOWED' });
    expect(String(e?.message)).toMatch(/no mount roots are allowed on this host/);
  });

  it('mounts a dir below a root live and in the config, nosuid,nodev (and ro when asked)', async () => {
    await writeFile(join(shared, 'data', 'note'), 'shared\n');
    const r = await ops.mount({ kind: 'mount', requestId: req(), container: name, hostDir: join(shared, 'data'), path: '/mnt/data', readOnly: false });
    expect(r).toMatchObject({ live: 'applied', configChanged: true, source: join(shared, 'data') });
    expect(await readFile(join(lxcPath, name, 'config'), 'utf8')).toContain(`lxc.mount.entry = ${join(shared, 'data')} mnt/data none bind,create=dir,nosuid,nodev 0 0`);
    expect((await mounts(pid)).get('/mnt/data')).toEqual(expect.arrayContaining(['rw', 'nosuid', 'nodev']));
    expect(await readFile(`/proc/${pid}/root/mnt/data/note`, 'utf8')).toBe('shared\n');
    await ops.mount({ kind: 'mount', requestId: req(), container: name, hostDir: join(shared, 'data'), path: '/mnt/ro', readOnly: true });
    expect((await mounts(pid)).get('/mnt/ro')).toEqual(expect.arrayContaining(['ro', 'nosuid', 'nodev']));
    // At the next start: the ro line's flags from LXC, the rw one's inherited from the root's mount.
    await rt.stop(name);
    await rt.start(name);
    pid = (await rt.info(name))!.pid!;
    expect((await mounts(pid)).get('/mnt/data')).toEqual(expect.arrayContaining(['nosuid', 'nodev']));
    expect((await mounts(pid)).get('/mnt/ro')).toEqual(expect.arrayContaining(['ro', 'nosuid', 'nodev']));
  });

  it("a PID that names another process (the init died, its PID reused by a host process) is refused: nothing mounted on the host", async () => {
    hostProc = spawn('sleep', ['600'], { stdio: 'ignore' });
    const hostPid = hostProc.pid!;
    const target = join(base, 'host-target');
    const stale = { name, state: 'RUNNING' as const, pid: hostPid };
    const e = await rejection(rt.liveBindMount(stale, { source: join(shared, 'data'), target, readOnly: false }));
    expect(e).toMatchObject({ code: 'CONTAINER_INIT_CHANGED' });
    expect((await mounts('self')).has(target)).toBe(false);
    await expect(stat(target)).rejects.toThrow();
    // The helper checks again after it holds the process: a start time that no longer matches
    // (the PID reused between the worker's look and the helper's) is refused there.
    const init = { pid, startTime: (await procId(pid))!.startTime + 1, rootfs: rt.rootfsDir(name) };
    const e2 = await rejection(liveBindMount(init, join(shared, 'data'), '/mnt/late', false));
    expect(e2).toMatchObject({ code: 'CONTAINER_INIT_CHANGED' });
    expect(String(e2?.message)).toMatch(/no longer the container's init/);
    expect((await mounts(pid)).has('/mnt/late')).toBe(false);
    // And a host process with the right start time but another root: refused by the helper too.
    const e3 = await rejection(liveBindMount({ pid: hostPid, startTime: (await procId(hostPid))!.startTime, rootfs: rt.rootfsDir(name) }, join(shared, 'data'), target, false));
    expect(e3).toMatchObject({ code: 'CONTAINER_INIT_CHANGED' });
    expect((await mounts('self')).has(target)).toBe(false);
  });
});
