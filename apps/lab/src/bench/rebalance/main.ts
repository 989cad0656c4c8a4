#!/usr/bin/env node
/**
 * `npm run bench:rebalance`: ferry's rebalancing policy against other strategies on synthetic
 * clusters (pure: no hosts, no Redis). Per cluster, every strategy starts from the same placement
 * and sees the same load noise for 100 rounds; moves take effect at once. Printed per strategy:
 * imbalance (hottest host above the mean) before and after, moves, bytes moved, ping-pong moves
 * (a container moved back to a host it had left), planning time per round; on small clusters also
 * the optimum found by exhaustive search.
 */
import { cluster, imbalance, rng, withNoise, type Shape } from './cluster.js';
import { deschedulerLike, ferry, greedy, incusLike, optimum, type Strategy } from './strategies.js';
import type { Snapshot } from '@ferry/core';

const args = process.argv.slice(2);
const asJson = args.includes('--json');
const ROUNDS = Number(args[args.indexOf('--rounds') + 1]) || 100;
const NOISE = 0.15;
const sizes: { hosts: number; perHost: number }[] = [
  { hosts: 3, perHost: 3 },
  { hosts: 10, perHost: 20 },
  { hosts: 100, perHost: 20 },
  { hosts: 500, perHost: 20 },
];
const strategies: [string, Strategy][] = [
  ['ferry', ferry],
  ['greedy', greedy],
  ['incus-like', incusLike],
  ['descheduler-like', deschedulerLike()],
];

interface Row {
  cluster: string;
  strategy: string;
  before: number;
  after: number;
  optimum?: number;
  moves: number;
  bytesMoved: number;
  pingPong: number;
  planMsPerRound: number;
}

function simulate(start: Snapshot, strategy: Strategy, seed: number): Omit<Row, 'cluster' | 'strategy'> {
  const base = start.containers;
  const byName = new Map(base.map((c) => [c.name, c]));
  const where = new Map(base.map((c) => [c.name, c.host]));
  const visited = new Map(base.map((c) => [c.name, new Set([c.host])]));
  const cooldown = new Map<string, number>();
  const r = rng(seed);
  let moves = 0;
  let bytes = 0;
  let pingPong = 0;
  let planMs = 0;
  for (let round = 0; round < ROUNDS; round++) {
    const noise = withNoise(base, r, NOISE);
    const snap: Snapshot = {
      at: round,
      hosts: start.hosts,
      containers: base.map((c) => ({ ...c, host: where.get(c.name)!, ...noise.get(c.name)!, ...(cooldown.has(c.name) ? { cooldownUntil: cooldown.get(c.name)! } : {}) })),
    };
    const t = performance.now();
    const planned = strategy(snap);
    planMs += performance.now() - t;
    for (const m of planned) {
      const c = byName.get(m.container)!;
      if (visited.get(c.name)!.has(m.to)) pingPong += 1;
      visited.get(c.name)!.add(m.to);
      where.set(c.name, m.to);
      cooldown.set(c.name, round + 5);
      moves += 1;
      bytes += c.diskBytes + c.memBytes;
    }
  }
  const end: Snapshot = { ...start, containers: base.map((c) => ({ ...c, host: where.get(c.name)! })) };
  return { before: imbalance(start), after: imbalance(end), moves, bytesMoved: bytes, pingPong, planMsPerRound: planMs / ROUNDS };
}

const rows: Row[] = [];
for (const { hosts, perHost } of sizes) {
  for (const shape of ['skewed', 'uniform'] as Shape[]) {
    const start = cluster(hosts, perHost, shape, 1000 + hosts);
    const name = `${hosts} hosts x ${perHost}, ${shape}`;
    const opt = hosts * perHost <= 9 ? optimum(start) : undefined;
    for (const [sname, s] of strategies) {
      process.stderr.write(`${name}: ${sname}…\n`);
      rows.push({ cluster: name, strategy: sname, ...simulate(start, s, 7), ...(opt !== undefined ? { optimum: opt } : {}) });
    }
  }
}

if (asJson) {
  process.stdout.write(`${JSON.stringify({ rounds: ROUNDS, noise: NOISE, rows })}\n`);
} else {
  const pct = (x: number) => `${(x * 100).toFixed(1)} %`;
  const head = ['cluster', 'strategy', 'imbalance before', 'after', 'optimum', 'moves', 'GiB moved', 'ping-pong', 'plan ms/round'];
  const body = rows.map((r) => [r.cluster, r.strategy, pct(r.before), pct(r.after), r.optimum !== undefined ? pct(r.optimum) : '', String(r.moves), (r.bytesMoved / 2 ** 30).toFixed(1), String(r.pingPong), r.planMsPerRound.toFixed(2)]);
  const widths = head.map((h, i) => Math.max(h.length, ...body.map((b) => b[i]!.length)));
  const line = (cells: string[]) => cells.map((c, i) => (i < 2 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join('  ');
  process.stdout.write(`${ROUNDS} rounds, load noise ±${NOISE * 100} % per round; imbalance = hottest host's utilization above the mean\n`);
  process.stdout.write(`${[line(head), line(widths.map((w) => '-'.repeat(w))), ...body.map(line)].join('\n')}\n`);
}
