import { link, mkdir, open, readFile, readdir, rename, rm, stat, utimes, writeFile } from 'node:fs/promises';
import { spawn } from 'node:child_process';
import { dirname, join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { run } from '@ferry/infra';
import type { HostConfig } from '../src/config.js';
import { LxcRuntime } from '../src/runtime/lxc.js';
import { findCriu } from '../src/runtime/criu.js';
import { localDump } from '../src/ownership/scratch.js';
import { metadataSum } from '../src/verify/tree-digest.js';
import { metaIndexFile } from '../src/verify/meta-index.js';
import {
  callStep,
  lxcState,
  makeContainer,
  peerOf,
  rand,
  rejection,
  stepContext,
  twoHosts,
  waitFor,
  type BridgeFixture,
  type TestContext,
  type TwoHosts,
} from './helpers.js';

vi.setConfig({ testTimeout: 40_000, hookTimeout: 40_000 });

/** Writes all the time: a counter appended to a log and a file rewritten in place. */
const BUSY = 'i=0; while true; do i=$((i+1)); echo $i >> /var/log/tick; echo $i > /state; sleep 0.05; done\n';

describe('steps on real containers, two hosts (separate LXC paths) and a real sshd', () => {
  let fx: TwoHosts | undefined;
  let net: BridgeFixture;
  let base: string;
  let hostA: HostConfig;
  let hostB: HostConfig;
  let ctxA: TestContext;
  let ctxB: TestContext;
  const call = callStep;
  const err = rejection;

  beforeAll(async () => {
    fx = await twoHosts(202, 203, 'ferry-steps-', ['bind']);
    ({ net, base, hostA, hostB, ctxA, ctxB } = fx);
  });

  afterAll(async () => {
    await fx?.close();
  });

  describe('forward: preflight, pre-copy, checkpoint (restart, verify), restore, ARP, cleanup', () => {
    const name = `test-${rand()}`;
    const mid = `m-${rand()}`;
    const ip = '198.18.203.20';
    const mac = '02:00:c6:12:cb:14';
    const common = () => ({ migrationId: mid, container: name, epoch: 1 });
    let src: Record<string, unknown>;
    let cp: Record<string, unknown>;

    beforeAll(async () => {
      await makeContainer(hostA.lxcPath, name, {
        init: BUSY,
        net: { link: net.bridge, ip, prefix: 24, mac },
        extra: [`lxc.mount.entry = ${join(base, 'bind')} mnt none bind,create=dir 0 0`],
      });
      await run('lxc-start', ['-P', hostA.lxcPath, '-n', name, '-d']);
      await run('lxc-wait', ['-P', hostA.lxcPath, '-n', name, '-s', 'RUNNING', '-t', '10']);
      await sleep(300);
    });

    it('preflight source: observes the container, reaches the peer', async () => {
      src = await call('preflight', ctxA, { ...common(), role: 'source', peer: peerOf(hostB) });
      expect(src).toMatchObject({ role: 'source', wasRunning: true, ip, mac, bindMounts: [join(base, 'bind')] });
      expect(src.sizeBytes).toBeGreaterThan(1024 * 1024);
    });

    it('preflight source: missing container, unreachable peer', async () => {
      expect(await err(call('preflight', ctxA, { ...common(), container: `test-${rand()}`, role: 'source', peer: peerOf(hostB) }))).toMatchObject({
        code: 'CONTAINER_MISSING',
        retryable: false,
      });
      expect(await err(call('preflight', ctxA, { ...common(), role: 'source', peer: { ...peerOf(hostB), sshPort: 2299 } }))).toMatchObject({
        code: 'PEER_UNREACHABLE',
        retryable: true,
      });
    });

    it('preflight target: fine; refuses too little space, a missing bind source, one outside its mount roots', async () => {
      const expectFromSource = { ip, mac, sizeBytes: src.sizeBytes, bindMounts: src.bindMounts };
      const ok = await call('preflight', ctxB, { ...common(), role: 'target', peer: peerOf(hostA), expect: expectFromSource });
      expect(ok.role).toBe('target');
      expect(ok.freeBytes).toBeGreaterThan(0);
      expect(
        await err(call('preflight', ctxB, { ...common(), role: 'target', peer: peerOf(hostA), expect: { ...expectFromSource, sizeBytes: 1e15 } })),
      ).toMatchObject({ code: 'TARGET_SPACE', retryable: false });
      expect(
        await err(
          call('preflight', ctxB, { ...common(), role: 'target', peer: peerOf(hostA), expect: { ...expectFromSource, bindMounts: [join(base, 'bind', 'nonexistent')] } }),
        ),
      ).toMatchObject({ code: 'BIND_SOURCE_MISSING' });
      // A peer's bind mount of host / or of another container's files: refused before any copy.
      for (const p of ['/', '/root/.ssh', join(hostB.lxcPath, 'other', 'rootfs')]) {
        expect(
          await err(call('preflight', ctxB, { ...common(), role: 'target', peer: peerOf(hostA), expect: { ...expectFromSource, bindMounts: [p] } })),
        ).toMatchObject({ code: 'BIND_SOURCE_NOT_ALLOWED' });
      }
    });

    it('rsync-transfer: pre-copies while running, marks the target dir, reports progress', async () => {
      const out = await call('rsync-transfer', ctxA, {
        ...common(),
        peer: peerOf(hostB),
        wasRunning: true,
        precopy: { maxPasses: 3, stopBelowBytes: 64 * 1024, minShrink: 0.9 },
      });
      const passes = out.passes as Array<{ bytesSent: number }>;
      expect(passes.length).toBeGreaterThanOrEqual(2); // first pass sends MiBs, above the threshold
      expect(passes[0]!.bytesSent).toBeGreaterThan(1024 * 1024);
      expect(out.bytesTransferred).toBe(passes.reduce((a, p) => a + p.bytesSent, 0));
      expect(typeof out.stopReason).toBe('string');
      const dirB = join(hostB.lxcPath, name);
      expect((await readFile(join(dirB, '.ferry-migration'), 'utf8')).trim()).toBe(mid);
      expect((await stat(join(dirB, 'rootfs/bin/busybox'))).isFile()).toBe(true);
      expect(ctxA.progressLog.some((p) => p.stage === 'precopy' && p.pass === 1)).toBe(true);
      expect(await lxcState(hostA.lxcPath, name)).toBe('RUNNING');
    });

    it('preflight target on retry: our partial copy is fine, another migration’s is not; IP/MAC in use', async () => {
      const expectFromSource = { ip, mac, sizeBytes: src.sizeBytes, bindMounts: [] };
      await call('preflight', ctxB, { ...common(), role: 'target', peer: peerOf(hostA), expect: expectFromSource });
      expect(
        await err(call('preflight', ctxB, { ...common(), migrationId: `m-${rand()}`, role: 'target', peer: peerOf(hostA), expect: expectFromSource })),
      ).toMatchObject({ code: 'CONTAINER_EXISTS_ON_TARGET', retryable: false });
      // Another container arriving with the same address as the partial copy here.
      expect(
        await err(call('preflight', ctxB, { ...common(), container: `test-${rand()}`, role: 'target', peer: peerOf(hostA), expect: expectFromSource })),
      ).toMatchObject({ code: 'IP_IN_USE' });
      expect(
        await err(
          call('preflight', ctxB, {
            ...common(),
            container: `test-${rand()}`,
            role: 'target',
            peer: peerOf(hostA),
            expect: { ...expectFromSource, ip: '198.18.203.99' },
          }),
        ),
      ).toMatchObject({ code: 'MAC_IN_USE' });
    });

    it('checkpoint: freeze, final pass, digest of the frozen rootfs, stop; recorded for re-delivery', async () => {
      const input = { ...common(), peer: peerOf(hostB), mode: 'restart', wasRunning: true, verify: 'full' };
      const before = Date.now();
      cp = await call('checkpoint', ctxA, input);
      expect(cp.method).toBe('stop');
      expect(cp.frozenAt).toBeGreaterThanOrEqual(before);
      expect(cp.manifestDigest).toMatch(/^[0-9a-f]{64}$/);
      expect(await lxcState(hostA.lxcPath, name)).toBe('STOPPED');
      expect(await call('checkpoint', ctxA, input)).toEqual(cp);
      // The copy already holds the last state the source wrote.
      const a = await readFile(join(hostA.lxcPath, name, 'rootfs/state'), 'utf8');
      expect(await readFile(join(hostB.lxcPath, name, 'rootfs/state'), 'utf8')).toBe(a);
    });

    it('restore: refuses a copy that does not match the digest', async () => {
      const e = await err(
        call('restore', ctxB, { ...common(), source: peerOf(hostA), method: 'stop', start: true, expectManifestDigest: 'f'.repeat(64) }),
      );
      expect(e).toMatchObject({ code: 'MANIFEST_MISMATCH', retryable: false });
      expect(await lxcState(hostB.lxcPath, name)).toBe('STOPPED');
    });

    it('restore: adopts the config, checks the digest, starts; idempotent', async () => {
      const input = { ...common(), source: peerOf(hostA), method: cp.method, start: true, expectManifestDigest: cp.manifestDigest };
      const out = await call('restore', ctxB, input);
      expect(out).toMatchObject({ running: true, manifestDigest: cp.manifestDigest });
      expect(out.pid).toBeGreaterThan(1);
      const dirB = join(hostB.lxcPath, name);
      const config = await readFile(join(dirB, 'config'), 'utf8');
      expect(config).toContain(`lxc.rootfs.path = dir:${dirB}/rootfs`);
      expect(config).not.toContain(hostA.lxcPath);
      expect(await readdir(dirB)).not.toContain('.ferry-migration');
      expect(await lxcState(hostB.lxcPath, name)).toBe('RUNNING');
      const again = await call('restore', ctxB, input);
      expect(again).toMatchObject({ running: true, pid: out.pid, manifestDigest: cp.manifestDigest });
      // It boots from the state the source left: the source's log, then new lines appended here.
      const logA = await readFile(join(hostA.lxcPath, name, 'rootfs/var/log/tick'), 'utf8');
      const logB = () => readFile(join(dirB, 'rootfs/var/log/tick'), 'utf8');
      await waitFor(async () => (await logB()).length > logA.length, 10_000, 'the restored copy to write');
      expect((await logB()).startsWith(logA)).toBe(true);
    });

    it('arp-refresh: gratuitous ARP from the container’s netns updates a neighbour', async () => {
      await run('ip', ['-n', net.clientNs, 'neigh', 'replace', ip, 'lladdr', '02:00:00:00:00:01', 'dev', 'eth0', 'nud', 'stale']);
      await sleep(500); // control: nothing else corrects the stale entry meanwhile
      expect((await run('ip', ['-n', net.clientNs, 'neigh', 'show', ip])).stdout).toContain('02:00:00:00:00:01');
      const out = await call('arp-refresh', ctxB, { ...common(), ip, count: 2, intervalMs: 50 });
      expect(out).toEqual({ sent: 1, following: 1, device: 'eth0' }); // the second follows in the background
      const neigh = (await run('ip', ['-n', net.clientNs, 'neigh', 'show', ip])).stdout;
      expect(neigh).toContain(mac);
      expect(await err(call('arp-refresh', ctxA, { ...common(), ip }))).toMatchObject({ code: 'CONTAINER_NOT_RUNNING' });
    });

    it('cleanup: refuses a running container; removes the stopped source; idempotent', async () => {
      expect(await err(call('cleanup', ctxB, { ...common(), keepSource: false }))).toMatchObject({ code: 'CONTAINER_ACTIVE' });
      expect(await call('cleanup', ctxA, { ...common(), keepSource: false })).toEqual({ removed: true, kept: false });
      expect(await ctxA.runtime.info(name)).toBeNull();
      await expect(stat(join(hostA.stateDir, mid))).rejects.toThrow();
      expect(await call('cleanup', ctxA, { ...common(), keepSource: false })).toEqual({ removed: false, kept: false });
      expect(await ctxB.runtime.info(name)).toMatchObject({ state: 'RUNNING' });
    });

    it('discard-target: stops and removes the copy this migration started', async () => {
      expect(await call('discard-target', ctxB, { ...common() })).toEqual({ stopped: true, removed: true });
      expect(await ctxB.runtime.info(name)).toBeNull();
      expect(await call('discard-target', ctxB, { ...common() })).toEqual({ stopped: false, removed: false });
    });
  });

  describe('rollback: discard-target and resume-source', () => {
    const name = `test-${rand()}`;
    const mid = `m-${rand()}`;
    const common = () => ({ migrationId: mid, container: name, epoch: 3 });

    beforeAll(async () => {
      await makeContainer(hostA.lxcPath, name, { init: BUSY });
      await run('lxc-start', ['-P', hostA.lxcPath, '-n', name, '-d']);
      await run('lxc-wait', ['-P', hostA.lxcPath, '-n', name, '-s', 'RUNNING', '-t', '10']);
    });

    it('after a stop-checkpoint: the copy is discarded, the source started again', async () => {
      const precopy = { maxPasses: 1, stopBelowBytes: 0, minShrink: 0.8 };
      await call('rsync-transfer', ctxA, { ...common(), peer: peerOf(hostB), wasRunning: true, precopy });
      const cp = await call('checkpoint', ctxA, { ...common(), peer: peerOf(hostB), mode: 'restart', wasRunning: true, verify: 'off' });
      expect(cp.method).toBe('stop');
      expect(cp.manifestDigest).toBeUndefined();
      expect(await lxcState(hostA.lxcPath, name)).toBe('STOPPED');

      // A dir of another migration on the target is never touched, nor taken as removed.
      const foreign = `test-${rand()}`;
      await mkdir(join(hostB.lxcPath, foreign));
      await writeFile(join(hostB.lxcPath, foreign, '.ferry-migration'), 'm-someoneelse\n');
      expect(await rejection(call('discard-target', ctxB, { ...common(), container: foreign }))).toMatchObject({ code: 'TARGET_NOT_OURS', retryable: false });
      expect(await readdir(join(hostB.lxcPath, foreign))).toEqual(['.ferry-migration']);

      // Not adopted yet: its config still names host A's rootfs, which must survive.
      expect(await readFile(join(hostB.lxcPath, name, 'config'), 'utf8')).toContain(hostA.lxcPath);
      expect(await call('discard-target', ctxB, common())).toEqual({ stopped: false, removed: true });
      await expect(stat(join(hostB.lxcPath, name))).rejects.toThrow();
      expect((await stat(join(hostA.lxcPath, name, 'rootfs/bin/busybox'))).isFile()).toBe(true);

      expect(await call('resume-source', ctxA, { ...common(), wasRunning: true })).toEqual({ action: 'started', running: true });
      expect(await lxcState(hostA.lxcPath, name)).toBe('RUNNING');
      expect(await call('resume-source', ctxA, { ...common(), wasRunning: true })).toEqual({ action: 'none', running: true });
    });

    it('a frozen source (checkpoint failed after the freeze) is thawed', async () => {
      await run('lxc-freeze', ['-P', hostA.lxcPath, '-n', name]);
      expect(await lxcState(hostA.lxcPath, name)).toBe('FROZEN');
      expect(await call('resume-source', ctxA, { ...common(), wasRunning: true })).toEqual({ action: 'thawed', running: true });
      expect(await lxcState(hostA.lxcPath, name)).toBe('RUNNING');
    });

    it('checkpoint re-run after a crash while frozen finishes the job', async () => {
      const mid2 = `m-${rand()}`;
      const c2 = { migrationId: mid2, container: name, epoch: 4 };
      const precopy = { maxPasses: 1, stopBelowBytes: 0, minShrink: 0.8 };
      await call('rsync-transfer', ctxA, { ...c2, peer: peerOf(hostB), wasRunning: true, precopy });
      await run('lxc-freeze', ['-P', hostA.lxcPath, '-n', name]); // as if the first attempt died right after freezing
      const cp = await call('checkpoint', ctxA, { ...c2, peer: peerOf(hostB), mode: 'restart', wasRunning: true, verify: 'full' });
      expect(cp.method).toBe('stop');
      expect(await lxcState(hostA.lxcPath, name)).toBe('STOPPED');
      const r = await call('restore', ctxB, { ...c2, source: peerOf(hostA), method: 'stop', start: false, expectManifestDigest: cp.manifestDigest });
      expect(r).toEqual({ running: false, manifestDigest: cp.manifestDigest });
      expect(await call('discard-target', ctxB, c2)).toEqual({ stopped: false, removed: true });
      expect(await call('resume-source', ctxA, { ...c2, wasRunning: true })).toEqual({ action: 'started', running: true });
    });

    it('live mode is refused where checkpoint is not available (CRIU broken here)', async () => {
      const mid3 = `m-${rand()}`;
      const e = await err(
        call('checkpoint', ctxA, { migrationId: mid3, container: name, epoch: 5, peer: peerOf(hostB), mode: 'live', wasRunning: true, verify: 'off' }),
      );
      expect(e).toMatchObject({ code: 'CHECKPOINT_UNSUPPORTED', retryable: false });
      expect(await lxcState(hostA.lxcPath, name)).toBe('RUNNING');
    });
  });

  describe('default verification: both sides index before the freeze, patch with the final pass list', () => {
    const name = `test-${rand()}`;
    beforeAll(async () => {
      await makeContainer(hostA.lxcPath, name, { init: BUSY });
      await run('lxc-start', ['-P', hostA.lxcPath, '-n', name, '-d']);
      await run('lxc-wait', ['-P', hostA.lxcPath, '-n', name, '-s', 'RUNNING', '-t', '10']);
    });

    const migrateOnce = async (change: (rootfs: string) => Promise<void>, ahead = false) => {
      const c = { migrationId: `m-${rand()}`, container: name, epoch: 6 };
      const precopy = { maxPasses: 2, stopBelowBytes: 0, minShrink: 0.8 };
      await call('rsync-transfer', ctxA, { ...c, peer: peerOf(hostB), wasRunning: true, precopy, ...(ahead ? { indexAhead: true } : {}) });
      const index = metaIndexFile(ctxA, c.migrationId);
      // Taken in the background after the step: the checkpoint must then use it, not walk again.
      if (ahead) await waitFor(async () => (await stat(`${index}.json`).catch(() => null)) !== null, 30_000, 'the index taken ahead');
      const aheadAt = ahead ? (await stat(index)).mtimeMs : undefined;
      expect(await call('index-copy', ctxB, c)).toMatchObject({ indexed: true });
      await change(join(hostA.lxcPath, name, 'rootfs')); // after both indexes' moment: only the final pass carries it
      const cp = await call('checkpoint', ctxA, { ...c, peer: peerOf(hostB), mode: 'restart', wasRunning: true, verify: 'changed' });
      if (aheadAt !== undefined) expect((await stat(index)).mtimeMs).toBe(aheadAt);
      const r = await call('restore', ctxB, { ...c, source: peerOf(hostA), method: 'stop', start: false, expectManifestDigest: cp.manifestDigest, verify: 'changed', metaPatch: cp.metaPatch });
      expect(r.manifestDigest).toBe(cp.manifestDigest);
      // Both sides agree with a fresh walk of each tree, whichever way they took the sum.
      expect(await metadataSum(join(hostB.lxcPath, name, 'rootfs'))).toBe(await metadataSum(join(hostA.lxcPath, name, 'rootfs')));
      expect(await call('discard-target', ctxB, c)).toEqual({ stopped: false, removed: true });
      expect(await call('resume-source', ctxA, { ...c, wasRunning: true })).toMatchObject({ running: true });
      return { cp, r };
    };

    it('a same-size rewrite with its mtime put back, a deletion and a rename: indexes patched on both sides, digests agree', async () => {
      const { cp, r } = await migrateOnce(async (root) => {
        await writeFile(join(root, 'etc/same'), 'a'.repeat(4096));
        await utimes(join(root, 'etc/same'), new Date('2020-01-01T00:00:00Z'), new Date('2020-01-01T00:00:00Z'));
        await writeFile(join(root, 'etc/gone'), 'x');
        await rename(join(root, 'etc/gone'), join(root, 'etc/moved'));
      });
      expect(cp).toMatchObject({ verify: 'changed', verifyMeta: 'index', metaPatch: true });
      expect(r).toMatchObject({ verifyMeta: 'index' });
    });

    it('the source indexed at the end of pre-copy (indexAhead): the checkpoint patches that index, digests agree', async () => {
      const { cp, r } = await migrateOnce(async (root) => {
        await writeFile(join(root, 'etc/same'), 'b'.repeat(4096));
        await utimes(join(root, 'etc/same'), new Date('2020-01-01T00:00:00Z'), new Date('2020-01-01T00:00:00Z'));
      }, true);
      expect(cp).toMatchObject({ verify: 'changed', verifyMeta: 'index', metaPatch: true });
      expect(r).toMatchObject({ verifyMeta: 'index' });
    });

    it('a new hard link among the changes: the index cannot vouch, both sides walk, digests still agree', async () => {
      const { cp, r } = await migrateOnce(async (root) => {
        await link(join(root, 'etc/moved'), join(root, 'etc/linked'));
      });
      expect(cp).toMatchObject({ verify: 'changed', verifyMeta: 'walk' });
      expect(r).toMatchObject({ verifyMeta: 'walk' });
    });
  });

  describe('live (CRIU dump) forward and rollback', () => {
    const name = `test-${rand()}`;
    const criu = findCriu();
    let skipWhy: string | undefined;
    let live: { a: TestContext; b: TestContext };
    const state = async (lxcPath: string) => Number((await readFile(join(lxcPath, name, 'rootfs/state'), 'utf8').catch(() => '0')).trim());

    beforeAll(async () => {
      const rt = (lxcPath: string) => new LxcRuntime({ lxcPath, criu, live: true });
      live = { a: stepContext(hostA, rt(hostA.lxcPath)), b: stepContext(hostB, rt(hostB.lxcPath)) };
      const caps = await live.a.runtime.capabilities();
      skipWhy = caps.checkpoint ? undefined : `no working CRIU (${caps.checkpointReason}); scripts/setup.sh builds one with FERRY_CRIU_SRC`;
      if (skipWhy) {
        console.warn(`steps.test.ts live tests skipped: ${skipWhy}`);
        return;
      }
      await makeContainer(hostA.lxcPath, name, { init: BUSY, criu: true });
      await run('lxc-start', ['-P', hostA.lxcPath, '-n', name, '-d']);
      await run('lxc-wait', ['-P', hostA.lxcPath, '-n', name, '-s', 'RUNNING', '-t', '10']);
      await waitFor(async () => (await state(hostA.lxcPath)) >= 10, 10_000, 'the counter');
    });

    it('a failure after the dump: the target copy goes, the source comes back from its dump (its memory, not a cold start)', async (t) => {
      if (skipWhy) return t.skip();
      const c = { migrationId: `m-${rand()}`, container: name, epoch: 6 };
      await call('rsync-transfer', live.a, { ...c, peer: peerOf(hostB), wasRunning: true, precopy: { maxPasses: 1, stopBelowBytes: 0, minShrink: 0.8 } });
      const cp = await call('checkpoint', live.a, { ...c, peer: peerOf(hostB), mode: 'live', wasRunning: true, verify: 'changed' });
      expect(cp.method).toBe('dump');
      expect(await lxcState(hostA.lxcPath, name)).toBe('STOPPED');
      const dumped = await state(hostA.lxcPath);
      expect((await readdir(join(hostB.lxcPath, name, '.ferry-dump'))).length).toBeGreaterThan(0);

      // As the workflow's compensations run them: the copy first, then the source.
      expect(await call('discard-target', live.b, c)).toMatchObject({ removed: true });
      expect(await call('resume-source', live.a, { ...c, wasRunning: true })).toEqual({ action: 'restored', running: true });
      expect(await lxcState(hostA.lxcPath, name)).toBe('RUNNING');
      // The shell's counter lives in its memory: restored, it counts on from the dump; started
      // cold it would count from 1 again.
      await waitFor(async () => (await state(hostA.lxcPath)) >= dumped + 5, 10_000, 'the counter to go on');
      const seen = await state(hostA.lxcPath);
      expect(seen).toBeGreaterThan(dumped);
    });

    /** A pre-copy, then what a worker killed in the dump leaves: the container frozen, the dump's marker. */
    const cutInDump = async (c: { migrationId: string; container: string; epoch: number }): Promise<string> => {
      await call('rsync-transfer', live.a, { ...c, peer: peerOf(hostB), wasRunning: true, precopy: { maxPasses: 1, stopBelowBytes: 0, minShrink: 0.8 } });
      // Frozen by the killed worker's runtime, not by the one the re-run gets.
      await new LxcRuntime({ lxcPath: hostA.lxcPath, criu, live: true }).freeze(name);
      await waitFor(async () => (await lxcState(hostA.lxcPath, name)) === 'FROZEN', 10_000, 'LXC to know of the freeze');
      const { dir, marker } = localDump(live.a, c.migrationId);
      await mkdir(dir, { recursive: true });
      await writeFile(`${marker}.started`, JSON.stringify({ at: Date.now() }));
      return dir;
    };

    it('the worker killed in the dump: the re-run waits for the dump it began and takes it, never a cold stop', async (t) => {
      if (skipWhy) return t.skip();
      const c = { migrationId: `m-${rand()}`, container: name, epoch: 8 };
      // What a worker killed with SIGKILL in the dump leaves, and lxc-checkpoint going on by itself
      // (its own process group) under the lock.
      const dir = await cutInDump(c);
      const out = await open(`${dir}.out`, 'w');
      const orphan = spawn('flock', ['--exclusive', '--close', `${dir}.lock`, 'lxc-checkpoint', '-P', hostA.lxcPath, '-n', name, '-D', dir, '-s'], {
        detached: true,
        stdio: ['ignore', out.fd, out.fd],
        env: { ...process.env, PATH: `${dirname(criu)}:${process.env.PATH}` },
      });
      const orphanExit = new Promise<number | null>((r) => orphan.on('exit', (code) => r(code)));
      await waitFor(async () => (await readdir(dir)).length > 0, 10_000, 'the orphan dump to begin');
      const cp = await call('checkpoint', live.a, { ...c, peer: peerOf(hostB), mode: 'live', wasRunning: true, verify: 'changed' });
      await out.close();
      expect(await orphanExit, `the orphan dump: ${await readFile(`${dir}.out`, 'utf8')}`).toBe(0);
      expect(cp.method).toBe('dump');
      expect(await lxcState(hostA.lxcPath, name)).toBe('STOPPED');
      const dumped = await state(hostA.lxcPath);
      // The orphan's dump, sent and restored: the counter goes on from its memory.
      const r = await call('restore', live.b, { ...c, source: peerOf(hostA), method: 'dump', start: true, expectManifestDigest: cp.manifestDigest, verify: cp.verify });
      expect(r.running).toBe(true);
      await waitFor(async () => (await state(hostB.lxcPath)) >= dumped + 5, 10_000, 'the counter to go on on the target');
      // Back to the source for the next tests (started cold there: its rootfs is as the dump left it).
      await run('lxc-stop', ['-P', hostB.lxcPath, '-n', name, '-k']);
      await rm(join(hostB.lxcPath, name), { recursive: true, force: true });
      await run('lxc-start', ['-P', hostA.lxcPath, '-n', name, '-d']);
      await run('lxc-wait', ['-P', hostA.lxcPath, '-n', name, '-s', 'RUNNING', '-t', '10']);
    });

    it('stopped with a dump begun and none finished: the process state is lost, said so (CHECKPOINT_LOST), no cold start', async (t) => {
      if (skipWhy) return t.skip();
      const c = { migrationId: `m-${rand()}`, container: name, epoch: 9 };
      const dir = await cutInDump(c);
      await writeFile(join(dir, 'inventory.img'), ''); // a dump cut off: no stats-dump
      await run('lxc-stop', ['-P', hostA.lxcPath, '-n', name, '-k']);
      await run('lxc-wait', ['-P', hostA.lxcPath, '-n', name, '-s', 'STOPPED', '-t', '10']);
      expect(await err(call('checkpoint', live.a, { ...c, peer: peerOf(hostB), mode: 'live', wasRunning: true, verify: 'changed' }))).toMatchObject({
        code: 'CHECKPOINT_LOST',
        retryable: false,
      });
      await rm(join(hostB.lxcPath, name), { recursive: true, force: true });
      await run('lxc-start', ['-P', hostA.lxcPath, '-n', name, '-d']);
      await run('lxc-wait', ['-P', hostA.lxcPath, '-n', name, '-s', 'RUNNING', '-t', '10']);
      await waitFor(async () => (await state(hostA.lxcPath)) >= 10, 10_000, 'the counter');
    });

    it('forward: the dump is restored on the target and runs there, thawed', async (t) => {
      if (skipWhy) return t.skip();
      const c = { migrationId: `m-${rand()}`, container: name, epoch: 7 };
      await call('rsync-transfer', live.a, { ...c, peer: peerOf(hostB), wasRunning: true, precopy: { maxPasses: 1, stopBelowBytes: 0, minShrink: 0.8 } });
      const cp = await call('checkpoint', live.a, { ...c, peer: peerOf(hostB), mode: 'live', wasRunning: true, verify: 'changed' });
      const dumped = await state(hostA.lxcPath);
      const r = await call('restore', live.b, { ...c, source: peerOf(hostA), method: 'dump', start: true, expectManifestDigest: cp.manifestDigest, verify: cp.verify });
      expect(r.running).toBe(true);
      await waitFor(async () => (await state(hostB.lxcPath)) >= dumped + 5, 10_000, 'the counter to go on on the target');
      expect(await lxcState(hostA.lxcPath, name)).toBe('STOPPED');
      await run('lxc-stop', ['-P', hostB.lxcPath, '-n', name, '-k']);
    });
  });

  describe('a stopped container: one pass, method none, not started', () => {
    const name = `test-${rand()}`;
    const mid = `m-${rand()}`;
    const common = () => ({ migrationId: mid, container: name, epoch: 1 });

    beforeAll(async () => {
      await makeContainer(hostA.lxcPath, name);
    });

    it('moves it and leaves it stopped; keepSource keeps the source', async () => {
      const pf = await call('preflight', ctxA, { ...common(), role: 'source', peer: peerOf(hostB) });
      expect(pf.wasRunning).toBe(false);
      const tr = await call('rsync-transfer', ctxA, { ...common(), peer: peerOf(hostB), wasRunning: false, precopy: { maxPasses: 5 } });
      expect((tr.passes as unknown[]).length).toBe(1);
      const cp = await call('checkpoint', ctxA, { ...common(), peer: peerOf(hostB), mode: 'restart', wasRunning: false, verify: 'full' });
      expect(cp.method).toBe('none');
      expect(cp.frozenAt).toBeUndefined();
      const r = await call('restore', ctxB, { ...common(), source: peerOf(hostA), method: 'none', start: false, expectManifestDigest: cp.manifestDigest });
      expect(r.running).toBe(false);
      expect(await lxcState(hostB.lxcPath, name)).toBe('STOPPED');
      expect(await call('cleanup', ctxA, { ...common(), keepSource: true })).toEqual({ removed: false, kept: true });
      expect(await lxcState(hostA.lxcPath, name)).toBe('STOPPED');
      expect(await call('resume-source', ctxA, { ...common(), wasRunning: false })).toEqual({ action: 'none', running: false });
    });
  });

  it('pre-copy refuses a target dir that appeared after preflight without its marker: nothing there is mirrored away', async () => {
    const name = `test-${rand()}`;
    const common = { migrationId: `m-${rand()}`, container: name, epoch: 1 };
    await makeContainer(hostA.lxcPath, name);
    await mkdir(join(hostB.lxcPath, name));
    await writeFile(join(hostB.lxcPath, name, 'someone-elses'), 'keep me');
    const e = await rejection(call('rsync-transfer', ctxA, { ...common, peer: peerOf(hostB), wasRunning: false, precopy: {} }));
    expect(e).toMatchObject({ code: 'CONTAINER_EXISTS_ON_TARGET' });
    expect(await readdir(join(hostB.lxcPath, name))).toEqual(['someone-elses']);
  });

  it('a transfer aborted by worker shutdown is retryable, and the retry completes it', async () => {
    const name = `test-${rand()}`;
    const common = { migrationId: `m-${rand()}`, container: name, epoch: 1 };
    await makeContainer(hostA.lxcPath, name);
    const ctx = stepContext(hostA, ctxA.runtime);
    const input = { ...common, peer: peerOf(hostB), wasRunning: false, bwlimitKBps: 100, precopy: {} };
    setTimeout(() => ctx.abort.abort(), 1000);
    const e = await err(call('rsync-transfer', ctx, input));
    expect(e).toMatchObject({ retryable: true });
    expect(['ABORTED', 'TRANSFER_INTERRUPTED']).toContain(e?.code);
    const out = await call('rsync-transfer', ctxA, { ...input, bwlimitKBps: undefined });
    expect((out.passes as unknown[]).length).toBe(1);
    expect(await call('checkpoint', ctxA, { ...common, peer: peerOf(hostB), mode: 'restart', wasRunning: false, verify: 'full' })).toMatchObject({ method: 'none' });
    expect(await call('discard-target', ctxB, common)).toEqual({ stopped: false, removed: true });
  });

  it('without a usable freezer, checkpoint (restart) stops the container first and still verifies', async () => {
    const name = `test-${rand()}`;
    const common = { migrationId: `m-${rand()}`, container: name, epoch: 1 };
    await makeContainer(hostA.lxcPath, name, { init: BUSY });
    class NoFreezer extends LxcRuntime {
      override async capabilities() {
        return { ...(await super.capabilities()), freeze: false };
      }
      override async freeze(): Promise<void> {
        throw new Error('freeze must not be called');
      }
    }
    const ctx = stepContext(hostA, new NoFreezer({ lxcPath: hostA.lxcPath }));
    await ctx.runtime.start(name);
    await call('rsync-transfer', ctx, { ...common, peer: peerOf(hostB), wasRunning: true, precopy: { maxPasses: 1 } });
    const cp = await call('checkpoint', ctx, { ...common, peer: peerOf(hostB), mode: 'restart', wasRunning: true, verify: 'full' });
    expect(cp.method).toBe('stop');
    expect(cp.frozenAt).toBeUndefined();
    expect(await lxcState(hostA.lxcPath, name)).toBe('STOPPED');
    const r = await call('restore', ctxB, { ...common, source: peerOf(hostA), method: 'stop', start: true, expectManifestDigest: cp.manifestDigest });
    expect(r.running).toBe(true);
    expect(await call('discard-target', ctxB, common)).toEqual({ stopped: true, removed: true });
    expect(await call('resume-source', ctx, { ...common, wasRunning: true })).toEqual({ action: 'started', running: true });
    await ctx.runtime.stop(name);
  });
});
