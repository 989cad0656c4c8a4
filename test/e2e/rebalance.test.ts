import { existsSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { beforeAll, describe, expect, it, vi } from 'vitest';
import { keys, type HostInfo, type OperationSummary, type RebalanceRound } from '@ferry/core';
import { labContainerCreate, schedulerPid, startScheduler, stopScheduler } from '@ferry/lab';
import { run } from '@ferry/infra';
import { findCriu } from '../../apps/worker/src/runtime/criu.js';
import { containerState, ferry, httpFrom, useLab } from '../support/lab.js';
import { connect, quit } from '../support/redis.js';

/**
 * Rebalancing in the lab, for real: three hosts whose workers measure load from the cgroups,
 * three containers burning CPU on h1 (each held to 0.3 of a core by its quota), automatic rounds
 * every 10 s moving them live. Then a drain that cannot fit (anti-affinity) and one that can, and
 * the scheduler killed with a round's move in flight.
 */
const criu = findCriu();
const skipWhy =
  process.getuid?.() !== 0
    ? 'needs root'
    : !existsSync('/sys/fs/cgroup/cpu') && !existsSync('/sys/fs/cgroup/cgroup.controllers')
      ? 'no CPU cgroup controller here'
      : await run(criu, ['check'], { timeoutMs: 30_000 }).then(
          () => undefined,
          () => `${criu} check fails here: rounds move live only (scripts/setup.sh builds a working CRIU with FERRY_CRIU_SRC)`,
        );
if (skipWhy) console.warn(`rebalance.test.ts skipped: ${skipWhy}`);

vi.setConfig({ testTimeout: 300_000, hookTimeout: 300_000 });

const NAMES = ['hot1', 'hot2', 'hot3'];
const THRESHOLD = 0.05;

async function json<T>(args: string[]): Promise<T> {
  const r = await ferry([...args, '--json']);
  if (r.code !== 0) throw new Error(`ferry ${args.join(' ')}: exit ${r.code}: ${r.stderr}`);
  return JSON.parse(r.stdout) as T;
}

async function until<T>(what: string, f: () => Promise<T | undefined | null | false>, timeoutMs: number, everyMs = 1000): Promise<T> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const v = await f();
    if (v) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await sleep(everyMs);
  }
}

/** Where each container runs, as the hosts' own LXC sees it (not ferry's registry). */
async function placement(lab: ReturnType<ReturnType<typeof useLab>['lab']>): Promise<Record<string, string[]>> {
  const out: Record<string, string[]> = {};
  for (const c of NAMES) {
    out[c] = [];
    for (const h of lab.hosts) if ((await containerState(h.name, h.lxcPath, c)) === 'RUNNING') out[c]!.push(h.name);
  }
  return out;
}

const rounds = () => json<RebalanceRound[]>(['rebalance', 'history', '--limit', '100']);
const dryRun = () => json<{ plan: { imbalanceBefore: number; moves: unknown[] } }>(['rebalance', '--dry-run']);

describe.skipIf(skipWhy)('rebalancing in the lab: automatic rounds, drain, anti-affinity, a scheduler killed mid-round', () => {
  const { lab } = useLab(3, { live: true });
  const ips: Record<string, string> = {};

  beforeAll(async () => {
    for (const name of NAMES) ips[name] = (await labContainerCreate({ name, host: 'h1', cpuMilli: 300 })).ip;
    // A few seconds between rounds' moves is what the policy is for; here every move is one.
    expect((await ferry(['rebalance', 'policy', '--set', `threshold=${THRESHOLD}`, 'maxMovesPerHost=1'])).code).toBe(0);
  });

  it('measures the load: the three containers burn CPU on h1, and their root filesystems are sized', async () => {
    await until(
      'the load of every container on h1',
      async () => {
        const h1 = (await json<HostInfo[]>(['hosts'])).find((h) => h.name === 'h1')!;
        return NAMES.every((n) => {
          const c = h1.containers.find((x) => x.name === n);
          return c?.load && c.load.cpu > 0.1 && c.load.diskBytes !== undefined;
        });
      },
      120_000,
      2000,
    );
    expect((await dryRun()).plan.imbalanceBefore).toBeGreaterThan(THRESHOLD);
  });

  it('automatic rounds every 10 s: within three rounds no host is above the threshold, then six rounds move nothing', async () => {
    expect((await ferry(['rebalance', 'auto', 'on', '--every', '10s'])).code).toBe(0);
    // Balanced: one container per host, every move done, the plan finds nothing to do.
    const balanced = await until(
      'one container on each host',
      async () => {
        const p = await placement(lab());
        const hosts = NAMES.map((n) => p[n]!);
        return hosts.every((h) => h.length === 1) && new Set(hosts.flat()).size === 3 && p;
      },
      180_000,
      2000,
    );
    // A round records its moves' outcomes as it sees them end: wait for the last one to be done.
    await until('the round in progress to end', async () => (await rounds()).every((r) => r.state === 'done'), 60_000);
    const moved = (await rounds()).filter((r) => r.moves.length > 0);
    expect(moved.length).toBeLessThanOrEqual(3);
    expect(moved.flatMap((r) => r.moves).map((m) => `${m.container} ${m.mode} ${m.outcome}`)).toEqual(moved.flatMap((r) => r.moves).map((m) => `${m.container} live done`));
    const seen = (await rounds()).length;
    await until('six more rounds', async () => (await rounds()).length >= seen + 6, 120_000, 2000);
    const quiet = (await rounds()).slice(0, (await rounds()).length - seen);
    expect(quiet.flatMap((r) => r.moves)).toEqual([]);
    expect(await placement(lab())).toEqual(balanced);
    expect((await dryRun()).plan.imbalanceBefore).toBeLessThanOrEqual(THRESHOLD);
    expect((await ferry(['rebalance', 'auto', 'off'])).code).toBe(0);
  });

  it('a drain that cannot fit (all three in one anti-affinity group, two hosts left) exits 1 and moves nothing', async () => {
    const before = await placement(lab());
    const from = Object.entries(before).find(([, h]) => h[0] === 'h2')![0];
    expect((await ferry(['anti-affinity', 'add', 'spread', ...NAMES])).code).toBe(0);
    expect((await json<Record<string, string[]>>(['anti-affinity', 'list'])).spread).toEqual(NAMES);
    const r = await ferry(['drain', 'h2']);
    expect(r.code).toBe(1);
    expect(r.stderr + r.stdout).toContain(from);
    expect(await placement(lab())).toEqual(before);
    // The cordon the drain made is taken back.
    expect((await ferry(['cordon', 'h2'])).stdout).toContain('cordoned');
    expect((await ferry(['uncordon', 'h2'])).code).toBe(0);
    expect((await ferry(['anti-affinity', 'remove', ...NAMES])).code).toBe(0);
  });

  it('a drain that fits empties h2: every container runs elsewhere, its page intact', async () => {
    const r = await ferry(['drain', 'h2', '--wait', '--json']);
    expect(r.code).toBe(0);
    const p = await placement(lab());
    for (const n of NAMES) {
      expect(p[n]).toHaveLength(1);
      expect(p[n]![0]).not.toBe('h2');
      expect(await httpFrom(lab().client.netns, `http://${ips[n]}/`, 5)).toContain(`ferry lab container ${n}`);
    }
    expect((await ferry(['uncordon', 'h2'])).code).toBe(0);
  });

  it('the scheduler killed while a round moves a container: the round resumes, the container moved once and runs on one host', async () => {
    // h2 is empty again: a round moves one container there. The earlier rounds' moves left their
    // containers cooling down for 30 min: this test's second moves need none.
    expect((await ferry(['rebalance', 'policy', '--set', 'cooldownMs=0'])).code).toBe(0);
    const redis = connect(lab().redisUrl);
    await redis.del(keys(lab().prefix).cooldowns);
    await quit(redis);
    const roundCli = ferry(['rebalance', '--json'], 280_000);
    const moving = await until(
      "a round's move under way",
      async () => {
        const ops = await json<OperationSummary[]>(['list', '--limit', '20']);
        return ops.find((o) => o.kind === 'migrate' && o.state === 'running' && o.id.startsWith('m-'))!;
      },
      120_000,
      200,
    );
    await stopScheduler('SIGKILL');
    expect(await schedulerPid()).toBeNull();
    await sleep(2000);
    await startScheduler();
    const out = await roundCli;
    expect(out.code).toBe(0);
    const round = JSON.parse(out.stdout) as RebalanceRound;
    expect(round.state).toBe('done');
    expect(round.moves.map((m) => m.outcome)).toEqual(round.moves.map(() => 'done'));
    expect(new Set(round.moves.map((m) => m.container)).size).toBe(round.moves.length);
    const mine = round.moves.find((m) => m.migrationId === moving.id);
    expect(mine).toBeDefined();
    // Once: one migration of that container since the round began; it runs on exactly one host.
    const ops = await json<OperationSummary[]>(['list', '--limit', '50']);
    expect(ops.filter((o) => o.kind === 'migrate' && o.container === mine!.container && o.createdAt >= round.startedAt)).toHaveLength(1);
    const p = await placement(lab());
    for (const n of NAMES) expect(p[n]).toHaveLength(1);
    expect(p[mine!.container]).toEqual([mine!.to]);
  });
});
