import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
/**
 * The real `ferry` CLI (apps/cli/dist: `npm run build` first) for rebalancing, drain and `--to
 * auto`, against the fast tier's cluster in this process: the real scheduler (its Rebalancer) and
 * real host workers on FAKE hosts (test/support/fake; loads from the fake meter), real Redis under
 * a fresh prefix. No root needed; the lab tier moves real containers.
 */
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { PlacementStore, run, RoundStore, type RunOptions, type RedisClient } from '@ferry/infra';
import { connect, quit, testRedis } from '../../../test/support/redis.js';
import { FakeCluster, FakeWorld } from '../../../test/support/fake/index.js';

vi.setConfig({ testTimeout: 60_000, hookTimeout: 60_000 });

const CLI = fileURLToPath(new URL('../dist/main.js', import.meta.url));
const ALL = Array.from({ length: 256 }, (_, i) => i);
const GiB = 2 ** 30;

describe('ferry rebalance, drain, --to auto (built CLI; fake hosts, real scheduler and workers)', () => {
  let srv: Awaited<ReturnType<typeof testRedis>>;
  let c: FakeCluster;
  let redis: RedisClient;

  /** The cluster's control-plane key, for the CLI to sign with (as on the scheduler's machine). */
  let controlKeyFile: string;
  const ferry = async (args: string[], opts: RunOptions = {}) => {
    const env = { ...process.env, REDIS_URL: srv.url, FERRY_PREFIX: c.prefix, FERRY_CONTROL_KEY: controlKeyFile };
    const r = await run(process.execPath, [CLI, ...args], { timeoutMs: 60_000, okExitCodes: ALL, env, ...opts });
    return { code: r.exitCode, stdout: r.stdout, stderr: r.stderr };
  };
  const placement = () => new PlacementStore(redis, c.prefix);

  beforeAll(async () => {
    srv = await testRedis();
    const world = new FakeWorld();
    for (const h of ['h1', 'h2', 'h3']) world.addHost(h, { checkpoint: true });
    for (const [i, n] of ['a', 'b', 'c'].entries()) {
      world.create('h1', n, { state: 'RUNNING', ip: `10.0.3.1${i}`, mac: `02:00:00:00:00:1${i}`, files: { 'etc/hostname': `${n}\n` } });
      world.loads.set(n, { cpu: 1.2, memBytes: 3 * GiB, diskBytes: (i + 1) * 64 * 2 ** 20 });
    }
    c = await FakeCluster.start({ url: srv.url, world, hosts: ['h1', 'h2', 'h3'] });
    controlKeyFile = join(await mkdtemp(join(tmpdir(), 'ferry-cli-keys-')), 'control.key');
    await writeFile(controlKeyFile, c.keys.controlKey.export({ type: 'pkcs8', format: 'pem' }), { mode: 0o600 });
    redis = connect(srv.url);
    const end = Date.now() + 15_000;
    while ((await c.scheduler.registry.list()).filter((h) => h.capacity && h.containers.every((x) => x.load?.diskBytes !== undefined)).length < 3) {
      if (Date.now() > end) throw new Error('hosts did not publish their load');
      await new Promise((r) => setTimeout(r, 50));
    }
  });
  afterAll(async () => {
    await quit(redis);
    await c?.stop();
    await srv?.stop();
    expect(c.world.violations).toEqual([]);
  });

  it('ferry hosts shows each host\'s load: cpu %, memory, free disk, containers', async () => {
    const r = await ferry(['hosts']);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^h1 .*cpu 90% of 4 {2}mem 56% \(9\.0 GiB of 16\.0 GiB\) {2}disk free .* {2}containers 3 \(3 running\)/m);
    expect(r.stdout).toMatch(/^ {2}a {2}RUNNING {2}cpu 1\.20 {2}mem 3\.0 GiB {2}disk 64\.0 MiB/m);
    expect(r.stdout).toMatch(/^h2 .*cpu 0% of 4/m);
  });

  it('--dry-run prints hosts before → after and each move with reason and cost; enqueues nothing', async () => {
    const r = await ferry(['rebalance', '--dry-run']);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^dry run \(nothing enqueued\)/);
    expect(r.stdout).toMatch(/^ {2}h1 +\d+\.\d % → \d+\.\d %$/m);
    expect(r.stdout).toMatch(/^ {2}1\. [abc] {2}h1 → h[23] {2}live {2}cost .* gain /m);
    expect(r.stdout).toMatch(/above the mean/);
    const j = JSON.parse((await ferry(['rebalance', '--dry-run', '--json'])).stdout) as { dryRun: boolean; plan: { moves: unknown[]; before: Record<string, number> } };
    expect(j.dryRun).toBe(true);
    expect(j.plan.moves.length).toBeGreaterThan(0);
    expect(Object.keys(j.plan.before).sort()).toEqual(['h1', 'h2', 'h3']);
    expect(await c.store.list()).toEqual([]);
    expect(await new RoundStore(redis, c.prefix).list()).toEqual([]);
  });

  it('ferry rebalance runs one round (by the scheduler) and waits; history shows it', async () => {
    const r = await ferry(['rebalance']);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^round r-\w+ {2}manual .* done in .* 1 move\(s\)/);
    expect(r.stdout).toMatch(/^ {2}[abc] {2}h1 → h[23] {2}live .* done {2}m-\w+$/m);
    const moved = /^ {2}([abc]) {2}h1 → (h[23])/m.exec(r.stdout)!;
    expect(c.world.runningOn(moved[1]!)).toEqual([moved[2]]);
    const h = await ferry(['rebalance', 'history']);
    expect(h.stdout.split('\n')[0]).toBe(r.stdout.split('\n')[0]);
    const hj = JSON.parse((await ferry(['rebalance', 'history', '--json'])).stdout) as { moves: { outcome: string }[] }[];
    expect(hj).toHaveLength(1);
    expect(hj[0]!.moves[0]!.outcome).toBe('done');
  });

  it('rebalance auto on|off: a job scheduler; --threshold into the policy; bad input names the field (exit 2)', async () => {
    let r = await ferry(['rebalance', 'auto', 'on', '--every', '1h', '--threshold', '15%']);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^automatic rebalancing on: a round every 60 min, acting above an imbalance of 15\.0 %/);
    expect((await placement().policy()).threshold).toBe(0.15);
    expect((await ferry(['rebalance', 'auto'])).stdout).toMatch(/^automatic rebalancing on/);
    r = await ferry(['rebalance', 'auto', 'off']);
    expect(r.stdout).toMatch(/^automatic rebalancing off/);
    for (const [args, field] of [
      [['rebalance', 'auto', 'on', '--every', '5x'], '--every'],
      [['rebalance', 'auto', 'on', '--every', '100ms'], '--every'],
      [['rebalance', 'auto', 'on', '--threshold', '2'], '--threshold'],
      [['rebalance', 'auto', 'maybe'], 'auto'],
      [['rebalance', 'auto', 'off', '--every', '5m'], '--every'],
    ] as const) {
      const b = await ferry([...args]);
      expect(b.code, args.join(' ')).toBe(2);
      expect(b.stderr).toContain(`ferry: ${field}`);
    }
    expect((await ferry(['rebalance', 'auto'])).stdout).toMatch(/^automatic rebalancing off/);
    await placement().setPolicy({ threshold: 0.1 });
  });

  it('drain: unknown host exit 2; what fits nowhere exit 1, named, nothing moved, no cordon left; then it empties the host', async () => {
    const unknown = await ferry(['drain', 'h9']);
    expect(unknown.code).toBe(2);
    expect(unknown.stderr).toContain("host: unknown host 'h9'");
    const where = (n: string) => c.world.runningOn(n)[0];
    const onH1 = ['a', 'b', 'c'].filter((n) => where(n) === 'h1');
    await placement().pin(onH1[0]!);
    const before = (await c.store.list()).length;
    const no = await ferry(['drain', 'h1']);
    expect(no.code).toBe(1);
    expect(no.stderr).toContain(`drain h1: nothing moved: 1 container(s) fit nowhere: ${onH1[0]}: pinned to h1`);
    expect((await c.store.list()).length).toBe(before);
    expect((await placement().cordoned()).has('h1')).toBe(false);
    await placement().unpin(onH1[0]!);

    const yes = await ferry(['drain', 'h1', '--wait']);
    expect(yes.stderr).toBe('');
    expect(yes.code).toBe(0);
    expect(yes.stdout).toMatch(/^h1 cordoned; \d move\(s\):/);
    for (const n of onH1) expect(yes.stdout).toMatch(new RegExp(`^  ${n}  h1 → h[23]  live  m-\\w+  done$`, 'm'));
    for (const n of ['a', 'b', 'c']) expect(where(n)).not.toBe('h1');
    expect((await placement().cordoned()).has('h1')).toBe(true);
    expect((await ferry(['drain', 'h1'])).stdout).toBe('h1 cordoned; it has no containers\n');
  });

  it('migrate --to auto goes where placeOne says (never a cordoned host); clone --to auto places the copy', async () => {
    const on = (h: string) => ['a', 'b', 'c'].filter((n) => c.world.runningOn(n)[0] === h);
    const from = on('h2').length ? 'h2' : 'h3';
    const other = from === 'h2' ? 'h3' : 'h2';
    const name = on(from)[0]!;
    const m = await ferry(['migrate', name, '--from', from, '--to', 'auto', '--wait']);
    expect(m.stderr).toContain(`ferry: --to auto: ${name} goes to ${other}`);
    expect(m.code).toBe(0);
    expect(c.world.runningOn(name)).toEqual([other]);
    // Under a 20 % high-water mark no host but the cordoned h1 has room: nowhere, and nothing submitted.
    expect((await ferry(['rebalance', 'policy', '--set', 'highWater=0.2'])).code).toBe(0);
    const before = (await c.store.list()).length;
    const full = await ferry(['migrate', name, '--from', other, '--to', 'auto']);
    expect(full.code).toBe(1);
    expect(full.stderr).toContain(`--to auto: no host fits ${name}`);
    expect((await c.store.list()).length).toBe(before);
    await placement().setPolicy({ highWater: 0.85 });
    const bad = await ferry(['migrate', 'nope', '--from', other, '--to', 'auto']);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain("--to auto: container 'nope' is not on host");

    const cl = await ferry(['clone', name, `${name}2`, '--to', 'auto', '--ip', '10.0.3.99', '--freeze']);
    expect(cl.stderr).toMatch(/ferry: --to auto: the copy goes to h[23]/);
    expect(cl.code).toBe(0);
    const to = /goes to (h\d)/.exec(cl.stderr)![1]!;
    expect(c.world.presentOn(`${name}2`)).toEqual([to]);
  });
});
