import { mkdir, readFile, readdir, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import type { HostConfig } from '../src/config.js';
import type { Runtime } from '../src/runtime/runtime.js';
import { LxcRuntime } from '../src/runtime/lxc.js';
import { findCriu } from '../src/runtime/criu.js';
import { describeHost } from '../src/heartbeat.js';
import { callStep as call, lxcState, makeContainer, peerOf, rand, rejection, stepContext, twoHosts, waitFor, type TestContext, type TwoHosts } from './helpers.js';

vi.setConfig({ testTimeout: 60_000, hookTimeout: 60_000 });

/**
 * `ferry checkpoint` / `ferry restore` steps with a real CRIU (host tier: root, LXC, sshd): the
 * dump to disk, the checkpointed state read from disk, a restore in place and one on another host
 * (the rootfs and images moved by the migration's own steps), each time a counter that lives only
 * in a shell's memory counting on from its dumped value in the same process. Skipped, with the
 * reason printed, where CRIU does not work.
 */
const COUNTER = 'i=0\nwhile true; do\n  i=$((i+1))\n  echo "$$ $i" > /count.tmp\n  mv /count.tmp /count\n  sleep 0.1\ndone\n';

describe('checkpoint to disk and restore, real CRIU', () => {
  let fx: TwoHosts | undefined;
  let hostA: HostConfig;
  let hostB: HostConfig;
  let a: TestContext;
  let b: TestContext;
  let skipWhy: string | undefined;
  const name = `test-${rand()}`;
  const criu = findCriu();
  const count = async (lxcPath: string): Promise<{ pid: number; n: number } | undefined> => {
    const m = /^(\d+) (\d+)$/.exec((await readFile(join(lxcPath, name, 'rootfs', 'count'), 'utf8').catch(() => '')).trim());
    return m ? { pid: Number(m[1]), n: Number(m[2]) } : undefined;
  };
  const exists = (p: string) => stat(p).then(() => true, () => false);
  const ids = (epoch: number) => ({ migrationId: `m-${rand()}`, container: name, epoch });
  /** The counter goes on from `from` in the same process (a cold start would count from 1). */
  const countsOn = async (lxcPath: string, from: { pid: number; n: number }) => {
    await waitFor(async () => ((await count(lxcPath))?.n ?? 0) >= from.n + 5, 15_000, 'the counter to go on');
    expect((await count(lxcPath))?.pid).toBe(from.pid);
  };

  beforeAll(async () => {
    fx = await twoHosts(231, 232, 'ferry-cpt-');
    ({ hostA, hostB } = fx);
    const rt = (lxcPath: string) => new LxcRuntime({ lxcPath, criu, live: true });
    a = stepContext(hostA, rt(hostA.lxcPath));
    b = stepContext(hostB, rt(hostB.lxcPath));
    const caps = await a.runtime.capabilities();
    skipWhy = caps.checkpoint ? undefined : `no working CRIU (${caps.checkpointReason}); scripts/setup.sh builds one with FERRY_CRIU_SRC`;
    if (skipWhy) {
      console.warn(`checkpoint-to-disk.test.ts skipped: ${skipWhy}`);
      return;
    }
    const dir = await makeContainer(hostA.lxcPath, name, { init: '/bin/sh /counter.sh &\nwait\n', criu: true });
    await writeFile(join(dir, 'rootfs', 'counter.sh'), COUNTER);
    await a.runtime.start(name);
    await waitFor(async () => ((await count(hostA.lxcPath))?.n ?? 0) >= 10, 15_000, 'the counter to reach 10');
  });

  afterAll(async () => {
    await fx?.close();
  });

  it('a dump that fails leaves the container running: before CRIU stopped it, and after (started again)', async (t) => {
    if (skipWhy) return t.skip();
    const failing = (afterDump: boolean): Runtime =>
      Object.assign(Object.create(a.runtime) as Runtime, {
        checkpoint: async (n: string, dir: string) => {
          if (afterDump) await a.runtime.checkpoint(n, dir);
          throw new Error('injected: dump failed');
        },
      });
    for (const afterDump of [false, true]) {
      const ctx = { ...a, runtime: failing(afterDump) };
      const e = await rejection(call('checkpoint-dump', ctx, ids(2)));
      expect(String(e?.message)).toMatch(/injected/);
      expect(await lxcState(hostA.lxcPath, name)).toBe('RUNNING');
      expect(await exists(join(hostA.lxcPath, name, '.ferry-checkpoint'))).toBe(false);
      expect(await exists(join(hostA.lxcPath, name, '.ferry-checkpoint.tmp'))).toBe(false);
    }
    await waitFor(async () => ((await count(hostA.lxcPath))?.n ?? 0) >= 10, 15_000, 'the counter (started again) to reach 10');
  });

  it('checkpoint: dumped to disk, stopped, checkpointed as read from disk; re-delivery returns the same; restore in place counts on', async (t) => {
    if (skipWhy) return t.skip();
    const c = ids(3);
    const out = await call('checkpoint-dump', a, c);
    expect(await lxcState(hostA.lxcPath, name)).toBe('STOPPED');
    const dumped = (await count(hostA.lxcPath))!;
    const dir = join(hostA.lxcPath, name, '.ferry-checkpoint');
    expect(out).toMatchObject({ dir });
    expect(out.bytes).toBeGreaterThan(0);
    expect(JSON.parse(await readFile(join(dir, 'ferry-checkpoint.json'), 'utf8'))).toMatchObject({ container: name, operation: c.migrationId, configDigest: out.configDigest });
    expect(await call('checkpoint-dump', a, c)).toEqual(out);
    // A worker made afresh (as after a restart) publishes it checkpointed.
    const info = await describeHost(hostA, new LxcRuntime({ lxcPath: hostA.lxcPath, criu, live: true }));
    expect(info.containers.find((x) => x.name === name)).toMatchObject({ state: 'STOPPED', checkpoint: { at: out.at } });
    // Not running: a second checkpoint is refused with its reason.
    expect(await rejection(call('checkpoint-dump', a, ids(3)))).toMatchObject({ code: 'CONTAINER_NOT_RUNNING' });
    // Nor is it migrated or cloned as a stopped container (it would start cold, its images left behind).
    expect(await rejection(call('preflight', a, { ...ids(3), role: 'source', peer: peerOf(hostB) }))).toMatchObject({ code: 'CONTAINER_CHECKPOINTED' });

    const r = await call('checkpoint-restore', a, ids(4));
    expect(r).toMatchObject({ running: true, checkpointAt: out.at });
    expect(await lxcState(hostA.lxcPath, name)).toBe('RUNNING');
    await countsOn(hostA.lxcPath, dumped);
    expect(await exists(dir)).toBe(false);
    expect(await rejection(call('checkpoint-restore', a, ids(4)))).toMatchObject({ code: 'NOT_CHECKPOINTED' });
  });

  it('a worker killed in the dump (container stopped, no manifest): the step, delivered again, takes the dump that attempt finished', async (t) => {
    if (skipWhy) return t.skip();
    await waitFor(async () => (await lxcState(hostA.lxcPath, name)) === 'RUNNING', 10_000, 'running');
    const c = ids(7);
    // What the killed attempt left: its start record, a complete dump in the temp dir, the container stopped.
    await mkdir(join(hostA.stateDir, c.migrationId), { recursive: true });
    await writeFile(join(hostA.stateDir, c.migrationId, 'dump-started.json'), '{"at":1}\n');
    const tmp = join(hostA.lxcPath, name, '.ferry-checkpoint.tmp');
    await mkdir(tmp, { recursive: true });
    await a.runtime.checkpoint(name, tmp);
    const cut = (await count(hostA.lxcPath))!;
    expect(await lxcState(hostA.lxcPath, name)).toBe('STOPPED');
    const out = await call('checkpoint-dump', a, c);
    expect(await lxcState(hostA.lxcPath, name)).toBe('STOPPED');
    expect(await exists(join(hostA.lxcPath, name, '.ferry-checkpoint', 'ferry-checkpoint.json'))).toBe(true);
    expect(await exists(tmp)).toBe(false);
    // The cut-off attempt's dump is the checkpoint (same process), not a cold start dumped again.
    const again = (await count(hostA.lxcPath))!;
    expect(again.pid).toBe(cut.pid);
    expect(again.n).toBeGreaterThanOrEqual(cut.n);
    expect(await call('checkpoint-restore', a, ids(8))).toMatchObject({ running: true, checkpointAt: out.at });
    await countsOn(hostA.lxcPath, again);
    await call('checkpoint-dump', a, ids(9)); // checkpointed again for the next test
  });

  it('restore on another host: rootfs and images moved by the migration steps, restored there, counting on', async (t) => {
    if (skipWhy) return t.skip();
    if ((await lxcState(hostA.lxcPath, name)) === 'RUNNING') await call('checkpoint-dump', a, ids(5));
    const dumped = (await count(hostA.lxcPath))!;
    const c = ids(6);
    await call('preflight', a, { ...c, role: 'source', peer: peerOf(hostB), requireCheckpoint: true });
    await call('rsync-transfer', a, { ...c, peer: peerOf(hostB), wasRunning: false, precopy: {} });
    expect((await readdir(join(hostB.lxcPath, name, '.ferry-checkpoint'))).length).toBeGreaterThan(1);
    const cp = await call('checkpoint', a, { ...c, peer: peerOf(hostB), mode: 'restart', wasRunning: false, verify: 'changed' });
    expect(cp.method).toBe('none');
    const r = await call('restore', b, { ...c, source: peerOf(hostA), method: 'dump', images: 'checkpoint', start: true, expectManifestDigest: cp.manifestDigest, verify: cp.verify });
    expect(r.running).toBe(true);
    await countsOn(hostB.lxcPath, dumped);
    expect(await exists(join(hostB.lxcPath, name, '.ferry-checkpoint'))).toBe(false);
    expect(await call('cleanup', a, { ...c, keepSource: false })).toEqual({ removed: true, kept: false });
    await b.runtime.stop(name);
  });
});
