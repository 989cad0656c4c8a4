import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { mkdirSync, mkdtempSync, readFileSync } from 'node:fs';
import { mkdir, rm, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { FerryError, type ContainerDetails, type OperationSummary } from '@ferry/core';
import { run, type RunOptions } from '@ferry/infra';
import { labContainerCreate, labDown, labUp, type LabInfo } from '@ferry/lab';
import { processesInRootfs } from '../../apps/worker/src/runtime/lxc.js';
import { CLI, containerState, isolate } from '../support/lab.js';
import { execCases } from '../support/exec-cases.js';

// The lab's kernel names are one set per machine and other suites use labs too: wait (bounded)
// for theirs to go, and only ever take down the lab this file brought up.
vi.setConfig({ hookTimeout: 900_000, testTimeout: 180_000 });

const ALL = Array.from({ length: 256 }, (_, i) => i);

/** The real CLI; every exit code is a result. */
async function ferry(args: string[], opts: RunOptions = {}) {
  const r = await run(process.execPath, [CLI, ...args], { timeoutMs: 300_000, okExitCodes: ALL, ...opts });
  return { code: r.exitCode, stdout: r.stdout, stderr: r.stderr };
}

async function labUpWhenFree(): Promise<LabInfo> {
  const deadline = Date.now() + 10 * 60_000;
  for (;;) {
    try {
      return await labUp({ hosts: 2 });
    } catch (e) {
      const busy = e instanceof FerryError && (e.code === 'LAB_CONFLICT' || e.code === 'LAB_ALREADY_UP');
      if (!busy || Date.now() > deadline) throw e;
      await sleep(10_000);
    }
  }
}

describe('the container toolbox in the lab: exec and bind mounts', () => {
  let lab: LabInfo | undefined;
  let share: string;
  let stateDir: string;
  const h = (name: string) => lab!.hosts.find((x) => x.name === name)!;
  const config = (host: string, name: string) => readFileSync(join(h(host).lxcPath, name, 'config'), 'utf8');
  const running = async (host: string, name: string, text: string) => {
    const pids = await processesInRootfs(join(h(host).lxcPath, name, 'rootfs'));
    return pids.filter((p) => {
      try {
        return readFileSync(`/proc/${p}/cmdline`, 'utf8').split('\0').join(' ').includes(text);
      } catch {
        return false;
      }
    });
  };

  beforeAll(async () => {
    stateDir = isolate().stateDir;
    lab = await labUpWhenFree();
    // Below the workers' mount root (FERRY_MOUNT_ROOTS): nothing else may be shared.
    mkdirSync(join(lab.stateDir, 'shared'), { recursive: true });
    share = mkdtempSync(join(lab.stateDir, 'shared', 'ferry-share-'));
    await labContainerCreate({ name: 'tb1', host: 'h1' });
    await labContainerCreate({ name: 'tb2', host: 'h1' });
  });
  afterAll(async () => {
    if (lab) await labDown(); // ours: brought up by this file (its redis goes with it)
    if (share) await rm(share, { recursive: true, force: true });
    if (lab && stateDir) await rm(stateDir, { recursive: true, force: true });
  });

  describe('exec', () => {
    it.each(execCases('tb1'))('$what', async ({ args, expected }) => {
      expect(await ferry(args)).toEqual(expected);
    });

    it('forwards Ctrl-C: a sleep 30 is interrupted, ferry exits 130', async () => {
      const ctl = new AbortController();
      const p = ferry(['exec', 'tb1', '--', 'sh', '-c', 'sleep 30; echo not interrupted'], { signal: ctl.signal, killSignal: 'SIGINT' });
      const deadline = Date.now() + 15_000;
      while (!(await running('h1', 'tb1', 'sleep 30')).length) {
        if (Date.now() > deadline) throw new Error('sleep 30 never ran in tb1');
        await sleep(100);
      }
      ctl.abort();
      const r = await p;
      expect(r.code).toBe(130);
      expect(r.stdout).toBe('');
      expect(await running('h1', 'tb1', 'sleep 30')).toEqual([]);
    });

    it.each([
      ['a missing container', ['exec', 'ghost', '--', 'true'], /'ghost' does not exist on any host/],
      ['an unknown host', ['exec', 'tb1', '--host', 'h9', '--', 'true'], /unknown host 'h9' \(known hosts: h1, h2\)/],
      ['the wrong host', ['exec', 'tb1', '--host', 'h2', '--', 'true'], /'tb1' does not exist on host h2/],
    ])('bad input: %s → exit 2', async (_w, args, msg) => {
      const r = await ferry(args);
      expect(r.code).toBe(2);
      expect(r.stderr).toMatch(msg);
    });
  });

  describe('bind mounts', () => {
    it('a file written on the host is seen in two containers; --ro is read-only', async () => {
      const m1 = await ferry(['mount', 'tb1', share, '/mnt/share']);
      expect(m1.stderr).toBe('');
      expect(m1).toMatchObject({ code: 0 });
      const m2 = await ferry(['mount', 'tb2', share, '/srv/shared', '--ro', '--json']);
      expect(JSON.parse(m2.stdout)).toMatchObject({ container: 'tb2', host: 'h1', target: '/srv/shared', readOnly: true, live: 'applied', configChanged: true });
      await writeFile(join(share, 'note.txt'), 'written on the host\n');
      expect((await ferry(['exec', 'tb1', '--', 'cat', '/mnt/share/note.txt'])).stdout).toBe('written on the host\n');
      expect((await ferry(['exec', 'tb2', '--', 'cat', '/srv/shared/note.txt'])).stdout).toBe('written on the host\n');
      const w = await ferry(['exec', 'tb2', '--', 'touch', '/srv/shared/x']);
      expect(w.code).not.toBe(0);
      expect(w.stderr).toMatch(/Read-only file system/);
      expect((await ferry(['exec', 'tb1', '--', 'touch', '/mnt/share/from-tb1'])).code).toBe(0);
      expect(config('h1', 'tb1')).toContain(`lxc.mount.entry = ${share} mnt/share none bind,create=dir,nosuid,nodev 0 0`);
      expect(config('h1', 'tb2')).toContain(`lxc.mount.entry = ${share} srv/shared none bind,create=dir,nosuid,nodev,ro 0 0`);
      const d = JSON.parse((await ferry(['show', 'tb2', '--json'])).stdout) as ContainerDetails;
      expect(d).toMatchObject({ name: 'tb2', host: 'h1', state: 'RUNNING' });
      expect(d.ip).toMatch(/^198\.18\.0\./);
      expect(d.mounts).toContainEqual({ source: share, target: '/srv/shared', readOnly: true, optional: false, active: true });
    });

    it('the mount survives a migration: active on the target', async () => {
      const r = await ferry(['migrate', 'tb1', '--from', 'h1', '--to', 'h2', '--wait', '--json']);
      expect(r.code).toBe(0);
      const s = JSON.parse(r.stdout.trim().split('\n').at(-1)!) as OperationSummary;
      expect(s.state).toBe('done');
      expect(await containerState('h2', h('h2').lxcPath, 'tb1')).toBe('RUNNING');
      await writeFile(join(share, 'after.txt'), 'written after the move\n');
      const cat = await ferry(['exec', 'tb1', '--', 'cat', '/mnt/share/note.txt', '/mnt/share/after.txt']);
      expect(cat).toMatchObject({ code: 0, stdout: 'written on the host\nwritten after the move\n' });
      const d = JSON.parse((await ferry(['show', 'tb1', '--json'])).stdout) as ContainerDetails;
      expect(d.host).toBe('h2');
      expect(d.mounts).toContainEqual({ source: share, target: '/mnt/share', readOnly: false, optional: false, active: true });
    });

    it('umount: gone at once and from the config', async () => {
      const r = await ferry(['umount', 'tb1', '/mnt/share']);
      expect(r).toMatchObject({ code: 0 });
      expect(r.stdout).toMatch(/unmounted \/mnt\/share in tb1 on h2/);
      expect((await ferry(['exec', 'tb1', '--', 'ls', '/mnt/share'])).stdout).toBe('');
      expect(config('h2', 'tb1')).not.toContain(share);
    });

    describe('bad input: a clear message, exit 2, the config unchanged', () => {
      let file: string;
      beforeAll(async () => {
        file = join(share, 'a-file');
        await writeFile(file, 'x');
        const rootfs = join(h('h1').lxcPath, 'tb2', 'rootfs');
        await mkdir(join(rootfs, 'opt'), { recursive: true });
        await symlink('/etc', join(rootfs, 'opt/escape'));
      });
      const cases: [string, () => string[], RegExp][] = [
        ['a missing container', () => ['mount', 'ghost', share, '/mnt/x'], /'ghost' does not exist on any host/],
        ['a relative path', () => ['mount', 'tb2', share, 'mnt/x'], /path in the container must be an absolute path/],
        ['a path escaping with ..', () => ['mount', 'tb2', share, '/mnt/../../etc'], /may not hold '\.\.'/],
        ['a path escaping through a symlink', () => ['mount', 'tb2', share, '/opt/escape/x'], /\/opt\/escape in tb2 is a symbolic link/],
        ['a non-directory source', () => ['mount', 'tb2', file, '/mnt/x'], /a-file on h1 is not a directory/],
        ['a missing source', () => ['mount', 'tb2', join(share, 'nope'), '/mnt/x'], /does not exist on h1/],
        ['a host dir outside the mount roots', () => ['mount', 'tb2', '/root', '/mnt/x'], /not shared: \/root lies in \/root \(on h1\)/],
      ];
      it.each(cases)('%s', async (_w, args, msg) => {
        const before = config('h1', 'tb2');
        const r = await ferry(args());
        expect(r.stderr).toMatch(msg);
        expect(r.code).toBe(2);
        expect(config('h1', 'tb2')).toBe(before);
      });
    });
  });
});
