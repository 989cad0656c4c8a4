import { describe, expect, it } from 'vitest';
import { DEFAULT_RETENTION, type RetentionPolicy } from '@ferry/core';
import { collectGarbage, connect, usedMemory } from '@ferry/infra';
import { quit } from '../support/redis.js';
import { useFakeClusters, FakeWorld } from '../support/fake/index.js';

/**
 * FAST TIER, FAKE HOSTS: Redis stays bounded. Migrations run through the real scheduler and host
 * workers (fake runtime and steps) in rounds — every container to the other host and back — and
 * after every checkpoint a gc runs (the function the scheduler's Collector and `ferry gc` run) and
 * Redis's used_memory is read. Past the retention (the newest `keep` finished operations; an
 * ended operation's jobs are removed by the scheduler) memory must stay flat however many more
 * operations run.
 *
 * FERRY_GC_OPS sets how many: by default 60 (about 6 s here), which shows the records bounded;
 * memory's flatness is asserted from 1,000 on (the README's figure is FERRY_GC_OPS=10000, about 5
 * minutes on this machine). FERRY_GC_KEYS=1 prints the key families left at the end, most first.
 */
const OPS = Number(process.env.FERRY_GC_OPS ?? 60);
const CONTAINERS = 20;
const CHECKPOINTS = 8;

describe('Redis stays bounded (fast tier: fake hosts, real scheduler and workers)', () => {
  const clusters = useFakeClusters();

  it(`${OPS} finished migrations: records kept as the retention says; used_memory after gc flat past it (asserted from 1,000)`, { timeout: Math.max(180_000, OPS * 100) }, async () => {
    const world = new FakeWorld();
    world.addHost('h1');
    world.addHost('h2');
    const names = Array.from({ length: CONTAINERS }, (_, i) => `ct${i}`);
    for (const [i, n] of names.entries()) world.create('h1', n, { state: 'RUNNING', ip: `10.0.3.${10 + i}`, mac: `02:00:00:00:00:${(16 + i).toString(16)}`, files: { 'etc/hostname': `${n}\n` } });
    const c = await clusters.start({ world });
    const redis = connect(clusters.url());
    const policy: RetentionPolicy = { ...DEFAULT_RETENTION, keep: OPS >= 1000 ? 100 : 20, minAgeMs: 0 };
    const where = new Map(names.map((n) => [n, 'h1']));
    const rows: { ops: number; before: number; after: number; records: number; keys: number; ms: number }[] = [];
    const every = Math.max(CONTAINERS, Math.round(OPS / CHECKPOINTS / CONTAINERS) * CONTAINERS);
    const t0 = Date.now();
    try {
      for (let done = 0; done < OPS; ) {
        const ids = await Promise.all(
          names.map((n) => {
            const from = where.get(n)!;
            const to = from === 'h1' ? 'h2' : 'h1';
            where.set(n, to);
            return c!.migrate({ container: n, from, to });
          }),
        );
        for (const id of ids) await c.waitFor(id, 'done', 60_000);
        done += ids.length;
        if (done % every === 0 || done >= OPS) {
          const g = await collectGarbage(redis, c.prefix, { policy });
          rows.push({ ops: done, before: g.memory.before, after: g.memory.after, records: await redis.zcard(c.store.k.migrations), keys: (await redis.dbsize()) as number, ms: Date.now() - t0 });
        }
      }
    } finally {
      if (process.env.FERRY_GC_KEYS) {
        const fam = new Map<string, number>();
        for (const k of (await redis.keys(`${c.prefix}*`)) as string[]) {
          const f = k.slice(c.prefix.length).replace(/m-[0-9a-z]+/g, '<id>').replace(/:\d+$/, ':<n>');
          fam.set(f, (fam.get(f) ?? 0) + 1);
        }
        process.stdout.write(`${[...fam].sort((a, b) => b[1] - a[1]).slice(0, 15).map(([f, n]) => `${n} ${f}`).join('\n')}\n`);
      }
      const end = await usedMemory(redis);
      await quit(redis);
      const kib = (b: number) => `${(b / 1024).toFixed(0)} KiB`.padStart(10);
      process.stdout.write(
        `\nops      used_memory before gc  after gc   records  keys   elapsed\n${rows
          .map((r) => `${String(r.ops).padEnd(8)} ${kib(r.before)}             ${kib(r.after)}  ${String(r.records).padStart(7)}  ${String(r.keys).padStart(5)}  ${(r.ms / 1000).toFixed(1)} s`)
          .join('\n')}\n(used_memory at the end ${kib(end)})\n`,
      );
    }
    // Every finished operation past the newest `keep` is gone; memory after gc no longer grows:
    // the last checkpoint within 10 % of the middle one (past the jobs' count retention by then).
    expect(rows.at(-1)!.records).toBe(policy.keep);
    expect(await c.store.list(1000)).toHaveLength(policy.keep);
    if (OPS >= 1000) {
      const mid = rows[Math.floor(rows.length / 2)]!;
      expect(rows.at(-1)!.after).toBeLessThan(mid.after * 1.1);
    }
  });
});
