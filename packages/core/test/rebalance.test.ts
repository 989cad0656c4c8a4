import { describe, expect, it } from 'vitest';
import { planDrain, placeCopy, placeOne, planRebalance, RebalancePolicy, type ContainerLoad, type HostLoad, type Snapshot } from '../src/index.js';

const GiB = 2 ** 30;
const host = (name: string, extra: Partial<HostLoad> = {}): HostLoad => ({ name, cpus: 4, memBytes: 16 * GiB, freeDiskBytes: 100 * GiB, cordoned: false, live: true, ...extra });
const ct = (name: string, on: string, cpu: number, memGiB: number, extra: Partial<ContainerLoad> = {}): ContainerLoad => ({
  name,
  host: on,
  running: true,
  cpu,
  memBytes: memGiB * GiB,
  diskBytes: GiB,
  ...extra,
});
const policy = (p: Partial<RebalancePolicy> = {}) => RebalancePolicy.parse(p);

/** A deterministic generator (mulberry32) for noise. */
function rng(seed: number) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function skewed(): Snapshot {
  return {
    at: 1_000_000,
    hosts: [host('h1'), host('h2'), host('h3')],
    containers: [ct('a', 'h1', 1.5, 4), ct('b', 'h1', 1.2, 3), ct('c', 'h1', 1.0, 3), ct('d', 'h2', 0.2, 1)],
  };
}

describe('planRebalance', () => {
  it('moves load off the hot host until it is within the threshold, each move explained', () => {
    const p = planRebalance(skewed(), policy({ maxMovesPerHost: 3 }));
    expect(p.imbalanceBefore).toBeGreaterThan(0.1);
    expect(p.moves.length).toBeGreaterThan(0);
    expect(p.imbalanceAfter).toBeLessThan(0.1);
    for (const m of p.moves) {
      expect(m.from).toBe('h1');
      expect(m.mode).toBe('live');
      expect(m.gain).toBeGreaterThanOrEqual(0.01);
      expect(m.reason).toContain('above the mean');
    }
    // No host over the high-water mark after the plan.
    expect(Math.max(...Object.values(p.after))).toBeLessThanOrEqual(0.85);
  });

  it('a balanced cluster under small load noise plans no move, round after round', () => {
    const r = rng(7);
    const hosts = ['h1', 'h2', 'h3', 'h4'].map((n) => host(n));
    let moves = 0;
    for (let round = 0; round < 100; round++) {
      const containers = hosts.flatMap((h, i) => [0, 1, 2].map((k) => ct(`c${i}${k}`, h.name, 0.8 * (1 + 0.15 * (r() - 0.5)), 3 * (1 + 0.1 * (r() - 0.5)))));
      moves += planRebalance({ at: round, hosts, containers }, policy()).moves.length;
    }
    expect(moves).toBe(0);
  });

  it('never moves a container back and forth over rounds with noise (cooldown, hysteresis)', () => {
    const r = rng(42);
    const snap = skewed();
    const where = new Map(snap.containers.map((c) => [c.name, [c.host]]));
    const cooldown = new Map<string, number>();
    const pol = policy({ cooldownMs: 5 });
    for (let round = 0; round < 100; round++) {
      const containers = snap.containers.map((c) => ({
        ...c,
        host: where.get(c.name)!.at(-1)!,
        cpu: c.cpu * (1 + 0.2 * (r() - 0.5)),
        ...(cooldown.has(c.name) ? { cooldownUntil: cooldown.get(c.name)! } : {}),
      }));
      const p = planRebalance({ at: round, hosts: snap.hosts, containers }, pol);
      for (const m of p.moves) {
        where.get(m.container)!.push(m.to);
        cooldown.set(m.container, round + pol.cooldownMs);
      }
    }
    for (const [name, path] of where) {
      // A container that came back to a host it left has ping-ponged.
      expect(new Set(path).size, `${name}: ${path.join(' → ')}`).toBe(path.length);
    }
  });

  it('keeps pinned containers, avoids cordoned hosts, anti-affinity groups and full disks', () => {
    const snap = skewed();
    snap.containers = snap.containers.map((c) => (c.name === 'a' ? { ...c, pinned: true } : c.name === 'b' ? { ...c, group: 'db' } : c));
    snap.containers.push(ct('e', 'h2', 0.1, 0.5, { group: 'db' }));
    snap.hosts = [host('h1'), host('h2'), host('h3', { freeDiskBytes: 0 }), host('h4', { cordoned: true })];
    const p = planRebalance(snap, policy());
    for (const m of p.moves) {
      expect(m.container).not.toBe('a');
      expect(m.to).not.toBe('h3');
      expect(m.to).not.toBe('h4');
      if (m.container === 'b') expect(m.to).not.toBe('h2');
    }
  });

  it('moves that would restart a container need allowRestart; cooldown holds a container back', () => {
    const snap = skewed();
    snap.hosts = snap.hosts.map((h) => ({ ...h, live: false }));
    expect(planRebalance(snap, policy()).moves).toEqual([]);
    expect(planRebalance(snap, policy()).note).toMatch(/no move gains/);
    const p = planRebalance(snap, policy({ allowRestart: true }));
    expect(p.moves.length).toBeGreaterThan(0);
    expect(p.moves.every((m) => m.mode === 'restart')).toBe(true);
    snap.containers = snap.containers.map((c) => ({ ...c, cooldownUntil: snap.at + 1 }));
    expect(planRebalance(snap, policy({ allowRestart: true })).moves).toEqual([]);
  });

  it('respects the caps per round and per host', () => {
    const snap = skewed();
    const p = planRebalance(snap, policy({ maxMoves: 1 }));
    expect(p.moves).toHaveLength(1);
    expect(p.note).toMatch(/cap of 1/);
    // Three hosts, one move per host at once: h1 can give only one container in this round.
    expect(planRebalance(snap, policy({ maxMovesPerHost: 1, maxMoves: 5 })).moves.length).toBe(1);
  });
});

describe('placement', () => {
  it('placeOne: the host that fits and is least utilized afterwards, live-capable first', () => {
    const snap = skewed();
    expect(placeOne(snap, ct('new', 'h1', 0.5, 1), policy())).toBe('h3');
    snap.hosts = snap.hosts.map((h) => (h.name === 'h3' ? { ...h, live: false } : h));
    expect(placeOne(snap, ct('new', 'h1', 0.5, 1), policy())).toBe('h2');
    expect(placeOne(snap, ct('huge', 'h1', 100, 1), policy())).toBeUndefined();
  });

  it('planDrain: every container off the host, largest first, the host itself taking none', () => {
    const p = planDrain(skewed(), 'h1', policy());
    expect(p.unplaceable).toEqual([]);
    expect(p.moves.map((m) => m.container).sort()).toEqual(['a', 'b', 'c']);
    expect(p.moves.every((m) => m.to !== 'h1' && m.mode === 'live')).toBe(true);
  });

  it('planDrain is all or nothing: what fits nowhere is named and nothing moves', () => {
    const snap = skewed();
    snap.containers = snap.containers.map((c) => (c.name === 'b' ? { ...c, pinned: true } : c.name === 'c' ? { ...c, diskBytes: 10_000 * GiB } : c));
    const p = planDrain(snap, 'h1', policy());
    expect(p.moves).toEqual([]);
    expect(p.unplaceable).toEqual([
      { container: 'b', why: 'pinned to h1' },
      { container: 'c', why: 'no host has 10240000 MiB free' },
    ]);
    const cordoned = planDrain({ ...skewed(), hosts: skewed().hosts.map((h) => ({ ...h, cordoned: h.name !== 'h1' })) }, 'h1', policy());
    expect(cordoned.unplaceable[0]?.why).toBe('every other host is cordoned');
  });
});

describe('placeCopy', () => {
  it('a copy may go to its source host; it goes where it leaves the least utilization, within the high-water mark', () => {
    const snap: Snapshot = { at: 0, hosts: [host('h1'), host('h2', { cordoned: true }), host('h3')], containers: [ct('a', 'h1', 0.2, 1), ct('b', 'h3', 3, 12)] };
    expect(placeCopy(snap, snap.containers[0]!, 'a2', policy())).toBe('h1');
    // Fits under the high-water mark only on h2, which is cordoned: nowhere.
    expect(placeCopy(snap, ct('big', 'h1', 3.8, 15), 'big2', policy())).toBeUndefined();
  });
});
