import {
  HostName,
  newRoundId,
  parseOrThrow,
  placeCopy,
  placeOne,
  planDrain,
  planRebalance,
  REBALANCE_AUTO,
  roundJobId,
  snapshotDigest,
  type DrainPlan,
  type RebalancePlan,
  type RebalancePolicy,
  type RebalanceRound,
  type SnapshotNote,
} from '@ferry/core';
import { PlacementStore, readCluster, RoundStore, type ClusterView } from '@ferry/infra';
import type { Client } from '../client.js';
import type { Ferry } from '../service/ferry.js';
import { EXIT, ExitError } from '../exit-error.js';
import { fmtBytes } from '../render.js';
import { checkRequest } from './migrate.js';
import { enqueueRequest } from '../client.js';

const placement = (c: Client) => new PlacementStore(c.redis, c.store.prefix);
const view = (c: Client) => readCluster({ registry: c.registry, placement: placement(c), store: c.store });
const pct = (x: number) => `${(x * 100).toFixed(1)} %`;

/** What a dry run shows: the plan a round would make now, from the same reads and the same policy. */
export interface DryRun {
  dryRun: true;
  digest: string;
  policy: RebalancePolicy;
  notes: SnapshotNote[];
  plan: RebalancePlan;
}

export async function dryRun(c: Client, o: { allowRestart?: boolean } = {}): Promise<DryRun> {
  const v = await view(c);
  const policy = o.allowRestart ? { ...v.policy, allowRestart: true } : v.policy;
  return { dryRun: true, digest: snapshotDigest(v.snapshot), policy, notes: v.notes, plan: planRebalance(v.snapshot, policy) };
}

function hostsTable(plan: Omit<RebalancePlan, 'moves'>): string[] {
  const names = Object.keys(plan.before).sort();
  const w = Math.max(4, ...names.map((n) => n.length));
  return [`  ${'host'.padEnd(w)}  before   → after`, ...names.map((n) => `  ${n.padEnd(w)}  ${pct(plan.before[n]!).padStart(7)} → ${pct(plan.after[n] ?? plan.before[n]!)}`)];
}

const notesLines = (notes: SnapshotNote[]) => (notes.length ? ['left where they are, or out:', ...notes.map((n) => `  ${[n.container, n.host].filter(Boolean).join(' on ')}: ${n.why}`)] : []);

export function renderDryRun(d: DryRun): string {
  const p = d.plan;
  const lines = [
    `dry run (nothing enqueued); snapshot ${d.digest}; utilization = ${d.policy.cpuWeight} × cpu + ${1 - d.policy.cpuWeight} × memory`,
    ...hostsTable(p),
    `imbalance ${pct(p.imbalanceBefore)} → ${pct(p.imbalanceAfter)} (threshold ${pct(d.policy.threshold)})`,
  ];
  if (p.moves.length) {
    lines.push('moves:');
    p.moves.forEach((m, i) => lines.push(`  ${i + 1}. ${m.container}  ${m.from} → ${m.to}  ${m.mode}  cost ${fmtBytes(m.costBytes)}  gain ${pct(m.gain)}`, `     ${m.reason}`));
  } else lines.push('no moves');
  lines.push(`why it stops: ${p.note}`, ...notesLines(d.notes));
  return lines.join('\n');
}

/** `ferry rebalance`: asks for one round now, run by a scheduler (one round at a time); its id. */
export async function startRound(c: Client, o: { allowRestart?: boolean } = {}): Promise<string> {
  const id = newRoundId(Date.now());
  await c.queues.rebalance.add('round', { trigger: 'manual', roundId: id, ...(o.allowRestart ? { allowRestart: true } : {}) }, { jobId: roundJobId(id), attempts: 3, backoff: { type: 'exponential', delay: 1000 } });
  return id;
}

/** Waits for a round to end (through `round`, which long-polls), saying so once when it has not started. */
export async function awaitRound(f: Pick<Ferry, 'round'>, id: string, o: { timeoutMs?: number } = {}): Promise<RebalanceRound> {
  const start = Date.now();
  let warned = false;
  for (;;) {
    const r = await f.round({ id, waitMs: 5000 });
    if (r?.state === 'done') return r;
    if (!r && !warned && Date.now() - start > 15_000) {
      warned = true;
      process.stderr.write(`ferry: round ${id} has not started yet: another round may be running, or no scheduler runs (ferry scheduler)\n`);
    }
    if (Date.now() - start > (o.timeoutMs ?? 3_600_000)) throw new ExitError(EXIT.failed, `round ${id} did not end in time (it goes on; see ferry rebalance history)`);
  }
}

export function renderRound(r: RebalanceRound, o: { notes?: boolean } = {}): string {
  const when = new Date(r.startedAt).toISOString();
  const took = r.endedAt !== undefined ? ` in ${((r.endedAt - r.startedAt) / 1000).toFixed(1)} s` : '';
  const lines = [
    `round ${r.id}  ${r.trigger}  ${when}  ${r.state}${took}  snapshot ${r.digest}  imbalance ${pct(r.plan.imbalanceBefore)} → ${pct(r.plan.imbalanceAfter)}  ${r.moves.length} move(s)`,
  ];
  for (const m of r.moves) {
    lines.push(`  ${m.container}  ${m.from} → ${m.to}  ${m.mode}  cost ${fmtBytes(m.costBytes)}  gain ${pct(m.gain)}  ${m.outcome}  ${m.migrationId}`, `     ${m.reason}`);
    if (m.error) lines.push(`     ${m.error}`);
  }
  if (!r.moves.length) lines.push(`  ${r.plan.note}`);
  if (o.notes) lines.push(...hostsTable(r.plan), ...notesLines(r.notes));
  return lines.join('\n');
}

/** Exit 0 when every move of the round ended done (or there was none), else 1. */
export const roundExit = (r: RebalanceRound) => (r.moves.every((m) => m.outcome === 'done') ? EXIT.ok : EXIT.failed);

export async function history(c: Client, limit: number): Promise<RebalanceRound[]> {
  return new RoundStore(c.redis, c.store.prefix).list(limit);
}

/** `--every`: 30s, 5m, 1h, 500ms or plain seconds; at least one second. */
export function parseEvery(v: string): number {
  const m = /^(\d+(?:\.\d+)?)(ms|s|m|h)?$/.exec(v.trim());
  const ms = m ? Number(m[1]) * { ms: 1, s: 1000, m: 60_000, h: 3_600_000 }[(m[2] ?? 's') as 'ms' | 's' | 'm' | 'h'] : Number.NaN;
  if (!Number.isFinite(ms)) throw new ExitError(EXIT.badInput, `--every: '${v}' is not a duration (like 30s, 5m, 1h)`);
  if (ms < 1000) throw new ExitError(EXIT.badInput, `--every: '${v}' is shorter than a second`);
  return Math.round(ms);
}

/** `--threshold`: a fraction (0.15) or a percentage (15%). */
export function parseThreshold(v: string): number {
  const t = v.trim();
  const n = t.endsWith('%') ? Number(t.slice(0, -1)) / 100 : Number(t);
  if (t === '' || !Number.isFinite(n) || n < 0 || n > 1) throw new ExitError(EXIT.badInput, `--threshold: '${v}' is not a fraction from 0 to 1 or a percentage (0.15 or 15%)`);
  return n;
}

export interface AutoState {
  on: boolean;
  everyMs?: number;
  next?: number;
  threshold: number;
}

/** `ferry rebalance auto [on|off] [--every] [--threshold]`: bad input said before anything is asked; `what`, checked. */
export function checkAutoArgs(what: string | undefined, o: { every?: string; threshold?: string }): 'on' | 'off' | undefined {
  if (what !== undefined && what !== 'on' && what !== 'off') throw new ExitError(EXIT.badInput, `auto: '${what}' is neither on nor off`);
  if (what !== 'on' && (o.every !== undefined || o.threshold !== undefined)) throw new ExitError(EXIT.badInput, `--every and --threshold go with 'auto on'`);
  return what;
}

/** `ferry rebalance auto [on|off]`: the job scheduler of automatic rounds, and the threshold they act on. */
export async function auto(c: Client, what: string | undefined, o: { every?: string; threshold?: string }): Promise<AutoState> {
  checkAutoArgs(what, o);
  const everyMs = o.every !== undefined ? parseEvery(o.every) : undefined;
  const threshold = o.threshold !== undefined ? parseThreshold(o.threshold) : undefined;
  const q = c.queues.rebalance;
  if (what === 'on') {
    if (threshold !== undefined) await placement(c).setPolicy({ threshold });
    const current = await q.getJobScheduler(REBALANCE_AUTO);
    await q.upsertJobScheduler(
      REBALANCE_AUTO,
      { every: everyMs ?? current?.every ?? 5 * 60_000 },
      { name: 'round', data: { trigger: 'auto' }, opts: { attempts: 3, backoff: { type: 'exponential', delay: 1000 }, removeOnComplete: { count: 100 }, removeOnFail: { count: 100 } } },
    );
  } else if (what === 'off') {
    await q.removeJobScheduler(REBALANCE_AUTO);
  }
  const s = await q.getJobScheduler(REBALANCE_AUTO);
  const policy = await placement(c).policy();
  return { on: s !== undefined, ...(s?.every ? { everyMs: Number(s.every) } : {}), ...(s?.next ? { next: s.next } : {}), threshold: policy.threshold };
}

export function renderAuto(a: AutoState): string {
  if (!a.on) return `automatic rebalancing off (threshold ${pct(a.threshold)})`;
  const every = a.everyMs! % 60_000 === 0 ? `${a.everyMs! / 60_000} min` : `${a.everyMs! / 1000} s`;
  return `automatic rebalancing on: a round every ${every}, acting above an imbalance of ${pct(a.threshold)}${a.next ? `; next at ${new Date(a.next).toISOString()}` : ''}`;
}

/** What a drain decided: the moves submitted (migration ids), or why nothing moved. */
export interface DrainResult {
  host: string;
  moves: (DrainPlan['moves'][number] & { migrationId: string })[];
}

/**
 * `ferry drain <host>`: cordons the host, plans every container off it (planDrain: the same
 * placement as rounds and --to auto) and submits each move as an ordinary migration. All or
 * nothing: when any container fits nowhere, nothing is submitted, the cordon is taken back if the
 * drain put it there, and the error (exit 1) names each container and why.
 */
export async function drain(c: Client, host: string, o: { allowRestart?: boolean } = {}): Promise<DrainResult> {
  parseOrThrow(HostName, host, 'host');
  const known = await c.registry.list();
  if (!known.some((h) => h.name === host)) throw new ExitError(EXIT.badInput, `host: unknown host '${host}' (known hosts: ${known.map((h) => h.name).join(', ') || 'none'})`);
  const p = placement(c);
  const wasCordoned = (await p.cordoned()).has(host);
  await p.cordon(host);
  const giveUp = async (why: string) => {
    if (!wasCordoned) await p.uncordon(host);
    return new ExitError(EXIT.failed, `drain ${host}: nothing moved: ${why}`);
  };
  const v: ClusterView = await view(c);
  const self = v.notes.find((n) => n.host === host && n.container === undefined);
  if (self) throw await giveUp(`${host} ${self.why}`);
  const policy = o.allowRestart ? { ...v.policy, allowRestart: true } : v.policy;
  const plan = planDrain(v.snapshot, host, policy);
  if (plan.unplaceable.length) {
    const pins = await p.pins();
    const why = plan.unplaceable.map((u) => {
      // A container kept in place by the snapshot (held, not measured yet) says so, not "pinned".
      const held = !pins.has(u.container) ? v.notes.find((n) => n.container === u.container && n.host === host) : undefined;
      const restart = /restart moves are not allowed/.test(u.why) ? ' (--allow-restart allows them)' : '';
      return `${u.container}: ${held?.why ?? u.why}${restart}`;
    });
    throw await giveUp(`${plan.unplaceable.length} container(s) fit nowhere: ${why.join('; ')}`);
  }
  // Every move checked as migrate checks it before any is submitted.
  const requests = [];
  for (const m of plan.moves) requests.push(await checkRequest(c, { container: m.container, from: m.from, to: m.to, mode: m.mode }));
  const moves: DrainResult['moves'] = [];
  for (const [i, request] of requests.entries()) {
    const id = `m-${newRoundId(Date.now()).slice(2)}d${i.toString(36)}`;
    await enqueueRequest(c, 'submit', { kind: 'submit', migrationId: id, request }, `submit.${id}`);
    moves.push({ ...plan.moves[i]!, migrationId: id });
  }
  return { host, moves };
}

/** `--to auto` for migrate: the host placeOne chooses for the container on `from`, or exit 1 saying none fits. */
export async function autoTarget(c: Client, container: string, from: string, mode: string): Promise<string> {
  const v = await view(c);
  const ct = v.snapshot.containers.find((x) => x.name === container && x.host === from);
  if (!ct) {
    const why = v.notes.find((n) => n.host === from && n.container === undefined)?.why;
    throw new ExitError(EXIT.badInput, `--to auto: ${why ? `host ${from}: ${why}` : `container '${container}' is not on host ${from} (ferry hosts lists where containers are)`}`);
  }
  // An explicit migrate may restart the container unless --mode live says otherwise.
  const to = placeOne(v.snapshot, { ...ct, pinned: undefined }, { ...v.policy, allowRestart: mode !== 'live' });
  if (!to) throw new ExitError(EXIT.failed, `--to auto: no host fits ${container} (cordons, free disk, the ${pct(v.policy.highWater)} high-water mark${mode === 'live' ? ', a live path' : ''})`);
  return to;
}

/** `--to auto` for clone: the host placeCopy chooses for a copy of the container (found on `from`, or wherever it is). */
export async function autoCopyTarget(c: Client, container: string, name: string, from?: string): Promise<string> {
  const v = await view(c);
  const found = v.snapshot.containers.filter((x) => x.name === container && (from === undefined || x.host === from));
  if (found.length !== 1) throw new ExitError(EXIT.badInput, `--to auto: ${found.length ? `'${container}' is on several hosts; say which with --from` : `container '${container}' is not on ${from ? `host ${from}` : 'any host that reports load'}`}`);
  const to = placeCopy(v.snapshot, found[0]!, name, v.policy);
  if (!to) throw new ExitError(EXIT.failed, `--to auto: no host fits a copy of ${container} (cordons, free disk, the ${pct(v.policy.highWater)} high-water mark)`);
  return to;
}
