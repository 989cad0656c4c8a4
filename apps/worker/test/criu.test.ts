import { readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CommandError } from '@ferry/core';
import { run } from '@ferry/infra';
import { findCriu } from '../src/runtime/criu.js';
import { freezeCgroup, freezerDirOf, probeFreezer } from '../src/runtime/freezer.js';
import { LIVE_OFF_REASON, LxcRuntime, criuReason } from '../src/runtime/lxc.js';
import { lxcState, makeContainer, rand, removeLxcPath, tempDir, waitFor } from './helpers.js';

/**
 * Checkpoint/restore of a real busybox container through LxcRuntime with the CRIU the worker
 * would use (findCriu: FERRY_CRIU, else ferry's private build, else `criu` on PATH). Host tier:
 * root and LXC, no lab. Skipped, with the reason printed, where no working CRIU is found.
 */
const criu = findCriu();

async function whyNoCriu(): Promise<string | undefined> {
  if (process.getuid?.() !== 0) return 'needs root';
  const lxc = await run('lxc-checkpoint', ['--version']).then(() => true, () => false);
  if (!lxc) return 'lxc-checkpoint not found';
  return run(criu, ['check'], { timeoutMs: 30_000 }).then(
    () => undefined,
    (e: unknown) => `${criu} check fails: ${e instanceof CommandError ? criuReason(e.failure.stderrTail) : String(e)} (scripts/setup.sh builds one with FERRY_CRIU_SRC)`,
  );
}
const skipWhy = await whyNoCriu();
if (skipWhy) console.warn(`criu.test.ts skipped: ${skipWhy}`);

/** Keeps a counter in the shell's memory; writes "<its pid in the container> <count>" every 100 ms. */
const COUNTER = 'i=0\nwhile true; do\n  i=$((i+1))\n  echo "$$ $i" > /count.tmp\n  mv /count.tmp /count\n  sleep 0.1\ndone\n';

describe.skipIf(skipWhy !== undefined)(`CRIU through LxcRuntime (${criu})`, () => {
  let lxcPath: string;
  let dumpDir: string;
  let rt: LxcRuntime;
  const name = `test-${rand()}`;

  const count = async (): Promise<{ pid: number; n: number } | undefined> => {
    const m = /^(\d+) (\d+)$/.exec((await readFile(join(lxcPath, name, 'rootfs', 'count'), 'utf8').catch(() => '')).trim());
    return m ? { pid: Number(m[1]), n: Number(m[2]) } : undefined;
  };

  beforeAll(async () => {
    lxcPath = await tempDir('ferry-criu-');
    dumpDir = await tempDir('ferry-criu-dump-');
    const dir = await makeContainer(lxcPath, name, { init: '/bin/sh /counter.sh &\nwait\n' });
    await writeFile(join(dir, 'rootfs', 'counter.sh'), COUNTER);
    // What CRIU needs of the config (see LAB-NOTES): no console or ttys to find a master for, and
    // no AppArmor line (this kernel has none: restore fails on it). makeContainer has no bind mounts.
    const config = (await readFile(join(dir, 'config'), 'utf8'))
      .split('\n')
      .filter((l) => l && !/^lxc\.apparmor\.profile\b/.test(l) && !/^lxc\.(tty\.max|console\.path)\b/.test(l));
    await writeFile(join(dir, 'config'), [...config, 'lxc.tty.max = 0', 'lxc.console.path = none', ''].join('\n'));
    rt = new LxcRuntime({ lxcPath, criu, live: true });
  });

  afterAll(async () => {
    await removeLxcPath(lxcPath);
    await rm(dumpDir, { recursive: true, force: true });
  });

  it('reports checkpoint with live mode on; off (the default of a worker) it says how to turn it on', async () => {
    expect(await rt.capabilities()).toMatchObject({ checkpoint: true });
    expect((await rt.capabilities()).checkpointReason).toBeUndefined();
    expect(await new LxcRuntime({ lxcPath, criu, live: false }).capabilities()).toMatchObject({ checkpoint: false, checkpointReason: LIVE_OFF_REASON });
  });

  it('checkpoint stops the container; restore resumes the same process with its counter where the dump left it', async () => {
    await rt.start(name);
    await waitFor(async () => ((await count())?.n ?? 0) >= 10, 15_000, 'the counter to reach 10');

    await rt.checkpoint(name, dumpDir);
    expect(await lxcState(lxcPath, name)).toBe('STOPPED');
    const dumped = await count();
    expect(dumped?.n).toBeGreaterThanOrEqual(10);
    await sleep(500);
    expect(await count()).toEqual(dumped); // nothing of it runs while it is dumped

    await rt.restore(name, dumpDir);
    expect(await lxcState(lxcPath, name)).toBe('RUNNING');
    const seen: number[] = [];
    await waitFor(
      async () => {
        const c = await count();
        if (!c) return false;
        expect(c.pid).toBe(dumped!.pid); // the same process, not a fresh one
        seen.push(c.n);
        return c.n >= dumped!.n + 5;
      },
      10_000,
      'the counter to go on after the restore',
    );
    // Counted on from the dumped value: a restarted container would count from 1 again.
    expect(Math.min(...seen)).toBeGreaterThanOrEqual(dumped!.n);
    expect(seen).toEqual([...seen].sort((a, b) => a - b));

  });

  it('a container dumped while frozen (as a migration dumps it) comes back running, not frozen', async () => {
    if ((await lxcState(lxcPath, name)) !== 'RUNNING') await rt.start(name);
    await rt.freeze(name);
    const frozen = await count();
    const dir = join(dumpDir, 'frozen'); // lxc-checkpoint wants a fresh directory
    await rt.checkpoint(name, dir);
    await rt.restore(name, dir);
    // CRIU restores the freezer state it found; restore must thaw it, or nothing in it ever runs.
    await waitFor(async () => ((await count())?.n ?? 0) >= frozen!.n + 5, 10_000, 'the counter to go on after a frozen dump');
    expect((await count())?.pid).toBe(frozen!.pid);

    // A restore re-delivered after a crash between the restore and its thaw finds the copy
    // "RUNNING" but frozen: unfreeze (what the steps call then) thaws it.
    const i = (await rt.info(name))!;
    const probe = await probeFreezer();
    await freezeCgroup((await freezerDirOf(i.pid!, probe))!, probe.kind as 'v1' | 'v2', 5000);
    const stalled = (await count())!.n;
    await sleep(400);
    expect((await count())!.n).toBeLessThanOrEqual(stalled + 1);
    await rt.unfreeze(name);
    await waitFor(async () => ((await count())?.n ?? 0) >= stalled + 5, 10_000, 'the counter to go on after unfreeze');
    await rt.stop(name);
    expect(await lxcState(lxcPath, name)).toBe('STOPPED');
  });
});
