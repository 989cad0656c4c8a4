import { mkdir, readFile, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { CommandError, PreconditionError } from '@ferry/core';
import { run } from '@ferry/infra';
import { LxcRuntime } from '../src/runtime/lxc.js';
import { probeFreezer } from '../src/runtime/freezer.js';
import { lxcState, makeContainer, rand, removeLxcPath, tempDir, waitFor } from './helpers.js';

vi.setConfig({ testTimeout: 30_000, hookTimeout: 30_000 });

/**
 * Appends a counter to /count as fast as it can, from a child of init (as a container's services
 * are): any run after a freeze shows as new lines.
 */
const COUNTER = '(i=0; while true; do i=$((i+1)); echo $i >> /count; done) &\nwait\n';

describe('LxcRuntime on a real busybox container', () => {
  let lxcPath: string;
  let bindSrc: string;
  let rt: LxcRuntime;
  const name = `test-${rand()}`;

  beforeAll(async () => {
    lxcPath = await tempDir('ferry-lxc-');
    bindSrc = await tempDir('ferry-bind-');
    await makeContainer(lxcPath, name, {
      init: COUNTER,
      extra: [
        `lxc.mount.entry = ${bindSrc} mnt none bind,create=dir 0 0`,
        'lxc.mount.entry = /sys/kernel/security sys/kernel/security none ro,bind,optional 0 0',
        `lxc.mount.entry = ${lxcPath}/${name}/extra tmp none bind,create=dir 0 0`,
      ],
    });
    await mkdir(join(lxcPath, name, 'extra'));
    rt = new LxcRuntime({ lxcPath, mountRoots: [bindSrc] });
  });

  afterAll(async () => {
    await removeLxcPath(lxcPath);
    await removeLxcPath(bindSrc);
  });

  it('reports capabilities as this machine probes them: the freezer found, checkpoint as `criu check` says', async () => {
    const caps = await rt.capabilities();
    expect(caps.runtime).toBe('lxc');
    expect(caps.freeze).toBe((await probeFreezer()).usable);
    // Which CRIU works depends on the machine (Debian 12's 3.17 fails on recent kernels): ask it.
    const check = await run('criu', ['check'], { timeoutMs: 30_000 }).then(
      () => ({ ok: true, out: '' }),
      (e: unknown) => ({ ok: false, out: e instanceof CommandError ? e.failure.stderrTail : String(e) }),
    );
    expect(caps.checkpoint).toBe(check.ok);
    if (check.ok) expect(caps.checkpointReason).toBeUndefined();
    else expect(caps.checkpointReason).toBeTruthy();
    expect(await rt.capabilities()).toBe(await rt.capabilities()); // probed once
  });

  it('lists and describes a stopped container; null for a missing one', async () => {
    expect(await rt.info(`test-${rand()}`)).toBeNull();
    const i = await rt.info(name);
    expect(i).toMatchObject({ name, state: 'STOPPED' });
    expect(i?.pid).toBeUndefined();
    expect((await rt.list()).map((c) => c.name)).toEqual([name]);
    expect(rt.containerDir(name)).toBe(join(lxcPath, name));
    expect(rt.rootfsDir(name)).toBe(join(lxcPath, name, 'rootfs'));
  });

  it('bindMounts: absolute sources outside the container dir, optional ones left out', async () => {
    expect(await rt.bindMounts(name)).toEqual([bindSrc]);
  });

  it('starts (waiting for RUNNING), freezes and thaws', async () => {
    await rt.start(name);
    const i = await rt.info(name);
    expect(i?.state).toBe('RUNNING');
    expect(i?.pid).toBeGreaterThan(1);
    await rt.start(name); // idempotent
    await rt.freeze(name);
    // The tasks are stopped when freeze returns; LXC's monitor is told beside it (FREEZING meanwhile).
    await waitFor(async () => (await lxcState(lxcPath, name)) === 'FROZEN', 10_000, 'LXC to report FROZEN');
    await rt.freeze(name); // idempotent
    await rt.unfreeze(name);
    expect(await lxcState(lxcPath, name)).toBe('RUNNING');
    await rt.unfreeze(name); // idempotent
  });

  it('refuses to destroy a running container', async () => {
    await expect(rt.destroy(name)).rejects.toMatchObject({ code: 'CONTAINER_NOT_STOPPED' });
    await expect(rt.destroy(name)).rejects.toBeInstanceOf(PreconditionError);
  });

  it('stops a FROZEN container without letting it run again', async () => {
    const count = join(lxcPath, name, 'rootfs', 'count');
    await waitFor(async () => (await readFile(count, 'utf8').catch(() => '')).length > 0, 10_000, 'the counter to write');
    await rt.freeze(name);
    const atFreeze = await readFile(count, 'utf8');
    expect(atFreeze.length).toBeGreaterThan(0);
    await sleep(300);
    expect(await readFile(count, 'utf8')).toBe(atFreeze); // frozen: nothing written
    await rt.stop(name);
    expect(await lxcState(lxcPath, name)).toBe('STOPPED');
    // Not one more line after the freeze: the kill was taken before any task ran again.
    expect(await readFile(count, 'utf8')).toBe(atFreeze);
    await rt.stop(name); // idempotent on STOPPED
  });

  it('adoptConfig rewrites the old container dir in every path (and screens it: an unconfined profile dropped)', async () => {
    const cfg = join(lxcPath, name, 'config');
    const original = await readFile(cfg, 'utf8');
    const unconfined = 'lxc.apparmor.profile = unconfined';
    expect(original).toContain(unconfined);
    const before = original.replace(unconfined, `# ferry: dropped, not accepted from a peer (an unconfined AppArmor profile (the host default applies)): ${unconfined}`);
    const oldDir = '/var/lib/other-host/lxc/' + name;
    const foreign = original.split(join(lxcPath, name)).join(oldDir);
    await writeFile(cfg, foreign);
    const adopted = await rt.adoptConfig(name, { containerDir: oldDir, rootfsDir: `${oldDir}/rootfs` });
    expect(adopted.dropped).toEqual([expect.stringMatching(/^config line \d+ dropped: lxc\.apparmor\.profile = unconfined/)]);
    const after = await readFile(cfg, 'utf8');
    expect(after).toBe(before);
    expect(after).toContain(`lxc.rootfs.path = dir:${join(lxcPath, name)}/rootfs`);
    expect(after).toContain(`lxc.log.file = ${join(lxcPath, name)}/lxc.log`);
    expect(after).toContain(`lxc.mount.entry = ${join(lxcPath, name)}/extra tmp`);
    expect(after).toContain(`lxc.mount.entry = ${bindSrc} mnt`); // outside: untouched
    expect(((await stat(cfg)).mode & 0o777).toString(8)).toBe('640');
    expect(await rt.adoptConfig(name, { containerDir: oldDir, rootfsDir: `${oldDir}/rootfs` })).toEqual({ dropped: [] }); // idempotent
    expect(await readFile(cfg, 'utf8')).toBe(before);
  });

  it('destroys a stopped container; refuses one whose rootfs lies outside its dir', async () => {
    const other = `test-${rand()}`;
    await makeContainer(lxcPath, other);
    const cfg = join(lxcPath, other, 'config');
    const text = await readFile(cfg, 'utf8');
    await writeFile(cfg, text.replace(/^lxc\.rootfs\.path = .*$/m, `lxc.rootfs.path = dir:${join(lxcPath, name, 'rootfs')}`));
    await expect(rt.destroy(other)).rejects.toMatchObject({ code: 'ROOTFS_OUTSIDE_CONTAINER_DIR' });
    await writeFile(cfg, text);
    await rt.destroy(other);
    expect(await rt.info(other)).toBeNull();
    await expect(stat(join(lxcPath, other))).rejects.toThrow();
    await rt.destroy(other); // gone: nothing to do
    expect((await stat(join(lxcPath, name, 'rootfs', 'bin'))).isDirectory()).toBe(true);
  });

  it('start failure is a CommandError with LXC’s own reason', async () => {
    const bad = `test-${rand()}`;
    await makeContainer(lxcPath, bad, { net: { link: `nobr${rand(2)}`, ip: '198.18.99.9', prefix: 24, mac: '02:00:00:00:99:09' } });
    const e = (await rt.start(bad).catch((x: unknown) => x)) as Error;
    expect(e).toMatchObject({ code: 'CONTAINER_START_FAILED', retryable: false });
    expect(e.message).toMatch(/nobr/); // the reason from the container's log: the missing bridge
    // Without lxc.log.file in the config, the reason still comes (from a temporary log).
    const cfg = join(lxcPath, bad, 'config');
    await writeFile(cfg, (await readFile(cfg, 'utf8')).replace(/^lxc\.log\.(file|level) = .*$/gm, ''));
    const e2 = (await rt.start(bad).catch((x: unknown) => x)) as Error;
    expect(e2.message).toMatch(/nobr/);
    expect(await lxcState(lxcPath, bad)).toBe('STOPPED');
    expect(await rt.network(bad)).toEqual({ ip: '198.18.99.9', mac: '02:00:00:00:99:09', link: expect.stringMatching(/^nobr/) });
  });

  it('a container started from another network namespace looks STOPPED here, and destroy refuses it', async () => {
    const other = `test-${rand()}`;
    const ns = `test-${rand()}`;
    await makeContainer(lxcPath, other);
    await run('ip', ['netns', 'add', ns]);
    const inNs = (args: string[]) => run('nsenter', [`--net=/run/netns/${ns}`, ...args]);
    try {
      await inNs(['lxc-start', '-P', lxcPath, '-n', other, '-d']);
      await inNs(['lxc-wait', '-P', lxcPath, '-n', other, '-s', 'RUNNING', '-t', '10']);
      expect((await rt.info(other))?.state).toBe('STOPPED'); // lxc-info cannot reach the monitor
      await expect(rt.destroy(other)).rejects.toMatchObject({ code: 'CONTAINER_IN_USE' });
      expect((await stat(join(lxcPath, other, 'rootfs', 'bin', 'busybox'))).isFile()).toBe(true);
      // Seen from its own namespace it runs, and freezing works there (nsenter keeps the cgroup mounts).
      await inNs(['lxc-freeze', '-P', lxcPath, '-n', other]);
      expect((await inNs(['lxc-info', '-P', lxcPath, '-n', other, '-s', '-H'])).stdout.trim()).toBe('FROZEN');
    } finally {
      await inNs(['lxc-stop', '-P', lxcPath, '-n', other, '-k']).catch(() => undefined);
      await run('ip', ['netns', 'del', ns]);
    }
    await rt.destroy(other);
    expect(await rt.info(other)).toBeNull();
  });
});
