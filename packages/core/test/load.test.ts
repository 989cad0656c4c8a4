import { describe, expect, it } from 'vitest';
import {
  cgroupDirs,
  ewma,
  LoadTracker,
  parseCgroupMounts,
  parseCpuNs,
  parseMemoryBytes,
  parseProcCgroup,
  planRebalance,
  RebalancePolicy,
  snapshotDigest,
  snapshotOf,
  type HostInfo,
} from '../src/index.js';

const GiB = 2 ** 30;

describe('ewma', () => {
  it('takes the first sample as is, then forgets with time, not with the number of samples', () => {
    expect(ewma(undefined, 5, 1000, 60_000)).toBe(5);
    // One 60 s step or sixty 1 s steps towards the same sample land at the same place.
    let many = 0;
    for (let i = 0; i < 60; i++) many = ewma(many, 1, 1000, 60_000);
    expect(many).toBeCloseTo(ewma(0, 1, 60_000, 60_000), 10);
    expect(many).toBeCloseTo(1 - Math.exp(-1), 10);
    expect(ewma(3, 10, 0, 60_000)).toBe(3);
  });
});

// Layouts as the kernel writes them: this machine (v1 + a unified mount: hybrid), pure v2.
const HYBRID_MOUNTS = [
  'tmpfs /sys/fs/cgroup tmpfs rw,relatime,mode=755 0 0',
  'cgroup /sys/fs/cgroup/cpu cgroup rw,relatime,cpu 0 0',
  'cgroup /sys/fs/cgroup/cpuacct cgroup rw,relatime,cpuacct 0 0',
  'cgroup /sys/fs/cgroup/memory cgroup rw,relatime,memory 0 0',
  'cgroup /sys/fs/cgroup/freezer cgroup rw,relatime,freezer 0 0',
  'cgroup2 /sys/fs/cgroup/unified cgroup2 rw,relatime 0 0',
].join('\n');
const HYBRID_PROC = ['9:name=systemd:/lxc.payload.web', '4:memory:/lxc.payload.web', '2:cpuacct:/lxc.payload.web', '1:cpu:/lxc.payload.web', '0::/lxc.payload.web'].join('\n');
const V2_MOUNTS = 'cgroup2 /sys/fs/cgroup cgroup2 rw,nosuid,nodev,noexec,relatime,nsdelegate 0 0\n';
const V2_PROC = '0::/lxc.payload.web\n';

describe('cgroup files', () => {
  it('hybrid (v1 controllers and a unified mount): CPU and memory from the v1 controllers', () => {
    const m = parseCgroupMounts(HYBRID_MOUNTS);
    expect(m).toEqual({ cpuacct: '/sys/fs/cgroup/cpuacct', memory: '/sys/fs/cgroup/memory', unified: '/sys/fs/cgroup/unified' });
    expect(cgroupDirs(m, parseProcCgroup(HYBRID_PROC))).toEqual({
      cpu: { kind: 'v1', dir: '/sys/fs/cgroup/cpuacct/lxc.payload.web' },
      memory: { kind: 'v1', dir: '/sys/fs/cgroup/memory/lxc.payload.web' },
    });
  });

  it('v1 with cpu,cpuacct co-mounted', () => {
    const m = parseCgroupMounts('cgroup /sys/fs/cgroup/cpu,cpuacct cgroup rw,cpu,cpuacct 0 0\ncgroup /sys/fs/cgroup/memory cgroup rw,memory 0 0\n');
    const d = cgroupDirs(m, parseProcCgroup('3:cpu,cpuacct:/lxc/web\n2:memory:/lxc/web\n'));
    expect(d.cpu).toEqual({ kind: 'v1', dir: '/sys/fs/cgroup/cpu,cpuacct/lxc/web' });
    expect(d.memory).toEqual({ kind: 'v1', dir: '/sys/fs/cgroup/memory/lxc/web' });
  });

  it('pure v2: both from the unified cgroup', () => {
    const d = cgroupDirs(parseCgroupMounts(V2_MOUNTS), parseProcCgroup(V2_PROC));
    expect(d).toEqual({ cpu: { kind: 'v2', dir: '/sys/fs/cgroup/lxc.payload.web' }, memory: { kind: 'v2', dir: '/sys/fs/cgroup/lxc.payload.web' } });
  });

  it('never the root of a hierarchy (the whole host) nor a path with ..', () => {
    expect(cgroupDirs(parseCgroupMounts(V2_MOUNTS), parseProcCgroup('0::/\n'))).toEqual({});
    expect(cgroupDirs(parseCgroupMounts(V2_MOUNTS), parseProcCgroup('0::/a/../..\n'))).toEqual({});
  });

  it('CPU time: v1 cpuacct.usage in ns, v2 usage_usec', () => {
    expect(parseCpuNs('v1', '2458851130\n')).toBe(2458851130);
    expect(parseCpuNs('v2', 'usage_usec 3511702\nuser_usec 3503712\nsystem_usec 7990\n')).toBe(3511702000);
    expect(parseCpuNs('v1', 'garbage')).toBeUndefined();
    expect(parseCpuNs('v2', 'user_usec 1\n')).toBeUndefined();
  });

  it('memory in use: usage less inactive file cache (v1: total_inactive_file; v2: inactive_file)', () => {
    expect(parseMemoryBytes('v1', '1000000\n', 'cache 4096\ninactive_file 100\ntotal_inactive_file 200000\n')).toBe(800000);
    expect(parseMemoryBytes('v2', '1000000\n', 'anon 500\ninactive_file 300000\n')).toBe(700000);
    expect(parseMemoryBytes('v2', '1000\n', '')).toBe(1000);
    expect(parseMemoryBytes('v2', 'max\n', '')).toBeUndefined();
  });
});

describe('LoadTracker', () => {
  it('CPU from counter deltas over wall time, smoothed: a 5 s spike barely moves a minute average', () => {
    const t = new LoadTracker(60_000);
    let ns = 0;
    let at = 0;
    let last = 0;
    const step = (cpus: number, ms: number) => {
      ns += cpus * ms * 1e6;
      at += ms;
      last = t.observe(at, [{ name: 'web', running: true, cpuNs: ns, memBytes: GiB }]).get('web')!.cpu;
    };
    step(0.5, 2000); // the first sample has no rate yet
    expect(last).toBe(0);
    for (let i = 0; i < 150; i++) step(0.5, 2000); // five minutes at half a CPU
    expect(last).toBeCloseTo(0.5, 3);
    for (let i = 0; i < 3; i++) step(2, 2000); // a 6 s spike at 2 CPUs
    expect(last).toBeLessThan(0.75);
    for (let i = 0; i < 150; i++) step(2, 2000); // held for five minutes: followed
    expect(last).toBeGreaterThan(1.95);
  });

  it('a counter that went back (a restart in a new cgroup) starts over; stopped counts 0; unlisted is forgotten', () => {
    const t = new LoadTracker(60_000);
    t.observe(0, [{ name: 'a', running: true, cpuNs: 0 }]);
    expect(t.observe(1000, [{ name: 'a', running: true, cpuNs: 1e9 }]).get('a')!.cpu).toBeCloseTo(1);
    expect(t.observe(2000, [{ name: 'a', running: true, cpuNs: 5 }]).get('a')!.cpu).toBeCloseTo(1);
    expect(t.observe(3000, [{ name: 'a', running: false }]).get('a')).toEqual({ cpu: 0, memBytes: 0 });
    expect(t.observe(4000, [{ name: 'a', running: true, cpuNs: 7 }]).get('a')!.cpu).toBe(0);
    expect(t.observe(5000, []).size).toBe(0);
  });
});

const caps = { runtime: 'lxc', freeze: true, checkpoint: false };
function info(name: string, containers: HostInfo['containers'], extra: Partial<HostInfo> = {}): HostInfo {
  return { name, address: '10.0.0.1', sshPort: 22, sshUser: 'root', lxcPath: '/var/lib/lxc', capabilities: caps, containers, freeBytes: 100 * GiB, capacity: { cpus: 4, memBytes: 16 * GiB }, lastSeen: 1_000_000, workerPid: 1, ...extra };
}
const load = (cpu: number, memGiB: number, diskGiB?: number) => ({ cpu, memBytes: memGiB * GiB, ...(diskGiB !== undefined ? { diskBytes: diskGiB * GiB } : {}) });
const empty = { pins: new Map(), cordons: new Set<string>(), cooldowns: new Map() };

describe('snapshotOf', () => {
  it('hosts with capacity and load; silent or unmeasured hosts left out with a note', () => {
    const { snapshot, notes } = snapshotOf(
      [
        info('h1', [{ name: 'a', state: 'RUNNING', load: load(1.5, 4, 1) }, { name: 'b', state: 'STOPPED', load: load(0, 0, 2) }]),
        info('h2', [], { capabilities: { ...caps, checkpoint: true } }),
        info('h3', [{ name: 'c', state: 'RUNNING' }], { lastSeen: 900_000 }),
        info('h4', [], { capacity: undefined } as Partial<HostInfo>),
      ],
      { ...empty, cordons: new Set(['h2']) },
      1_000_000,
    );
    expect(snapshot.hosts.map((h) => [h.name, h.cordoned, h.live, h.cpus])).toEqual([
      ['h1', false, false, 4],
      ['h2', true, true, 4],
    ]);
    expect(snapshot.containers).toEqual([
      { name: 'a', host: 'h1', running: true, cpu: 1.5, memBytes: 4 * GiB, diskBytes: GiB },
      { name: 'b', host: 'h1', running: false, cpu: 0, memBytes: 0, diskBytes: 2 * GiB },
    ]);
    expect(notes.map((n) => n.host)).toEqual(['h3', 'h4']);
  });

  it('pins, cooldowns; busy, unmeasured and doubled containers stay where they are', () => {
    const { snapshot, notes } = snapshotOf(
      [
        info('h1', [{ name: 'a', state: 'RUNNING', load: load(1, 1, 1) }, { name: 'b', state: 'RUNNING', load: load(1, 1, 1) }, { name: 'c', state: 'RUNNING', load: load(1, 1) }, { name: 'd', state: 'RUNNING', load: load(1, 1, 1) }]),
        info('h2', [{ name: 'd', state: 'STOPPED', load: load(0, 0, 1) }, { name: 'e', state: 'RUNNING', load: load(1, 1, 1) }]),
      ],
      { pins: new Map([['e', 'h2']]), cordons: new Set(), cooldowns: new Map([['a', 2_000_000], ['e', 10]]), busy: new Set(['b']) },
      1_000_000,
    );
    const by = new Map(snapshot.containers.map((c) => [c.name, c]));
    expect(by.get('a')!.cooldownUntil).toBe(2_000_000);
    expect(by.get('a')!.pinned).toBeUndefined();
    expect(by.get('b')!.pinned).toBe(true);
    expect(by.get('c')!.pinned).toBe(true);
    expect(by.get('d')).toMatchObject({ host: 'h1', pinned: true });
    expect(snapshot.containers.filter((c) => c.name === 'd')).toHaveLength(1);
    expect(by.get('e')).toMatchObject({ pinned: 'h2' });
    expect(by.get('e')!.cooldownUntil).toBeUndefined();
    expect(notes.map((n) => `${n.container}: ${n.why}`)).toEqual([
      'b: an operation holds it',
      'c: its root filesystem is not measured yet',
      'd: it exists on more than one host',
    ]);
  });

  it('anti-affinity groups reach the snapshot, and keep a plan from putting two of a group on one host', () => {
    const hosts = [
      info('h1', [{ name: 'a', state: 'RUNNING', load: load(3, 4, 1) }, { name: 'b', state: 'RUNNING', load: load(3, 4, 1) }], { capabilities: { ...caps, checkpoint: true } }),
      info('h2', [{ name: 'c', state: 'RUNNING', load: load(0.1, 1, 1) }], { capabilities: { ...caps, checkpoint: true } }),
    ];
    const grouped = snapshotOf(hosts, { ...empty, groups: new Map([['a', 'g'], ['c', 'g']]) }, 1_000_000).snapshot;
    expect(grouped.containers.map((c) => c.group)).toEqual(['g', undefined, 'g']);
    const plain = planRebalance(snapshotOf(hosts, empty, 1_000_000).snapshot, RebalancePolicy.parse({}));
    const apart = planRebalance(grouped, RebalancePolicy.parse({}));
    expect(plain.moves.length).toBeGreaterThan(0);
    expect(apart.moves.map((m) => m.container)).not.toContain('a'); // a would join c, its group, on h2
  });

  it('feeds planRebalance; the digest changes with what the plan depends on, not with noise below its rounding', () => {
    const hosts = [info('h1', [{ name: 'a', state: 'RUNNING', load: load(3, 8, 1) }, { name: 'b', state: 'RUNNING', load: load(0.5, 1, 1) }], { capabilities: { ...caps, checkpoint: true } }), info('h2', [], { capabilities: { ...caps, checkpoint: true } })];
    const { snapshot } = snapshotOf(hosts, empty, 1_000_000);
    const plan = planRebalance(snapshot, RebalancePolicy.parse({}));
    expect(plan.moves.length).toBeGreaterThan(0);
    expect(plan.moves[0]).toMatchObject({ from: 'h1', to: 'h2', mode: 'live' });
    const d = snapshotDigest(snapshot);
    expect(d).toMatch(/^[0-9a-f]{16}$/);
    expect(snapshotDigest({ ...snapshot, containers: snapshot.containers.map((c) => ({ ...c, cpu: c.cpu + 0.001 })) })).toBe(d);
    expect(snapshotDigest({ ...snapshot, containers: snapshot.containers.map((c) => ({ ...c, cpu: c.cpu + 0.1 })) })).not.toBe(d);
  });
});
