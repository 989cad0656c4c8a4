#!/usr/bin/env node
/**
 * Peers benchmark: ferry against what an operator would pick instead, in one run on this machine.
 * The same content (a Debian 12 minbase rootfs plus N MiB of random data, a hard-linked pair, a
 * file with a POSIX ACL, one with a user xattr, and a writer) is moved `--runs` times per method,
 * alternating: ferry (restart mode, in ferry's lab), LXD's stopped `lxc move`, `lxc move
 * --stateless` of the running container, a plain live `lxc move` (CRIU), and one plain cold
 * `rsync -aHAX` of the tree as the floor. Prints a table with ratios to the floor and to ferry;
 * `--json` adds one JSON object on the last line. Opt-in: installs LXD and debootstrap when
 * missing and needs root. See docs/bench-peers.md.
 */
import { parseArgs } from 'node:util';
import { run } from '@ferry/infra';
import { FerryPeer } from './ferry.js';
import { LxdPeers, METHODS as LXD_METHODS, type Method as LxdMethod } from './lxd.js';
import type { MoveResult } from './result.js';

const METHODS = ['ferry', 'rsync', ...LXD_METHODS] as const;
type Method = (typeof METHODS)[number];
const isLxd = (m: Method): m is LxdMethod => (LXD_METHODS as readonly string[]).includes(m);

function usage(message: string): never {
  process.stderr.write(`bench:peers: ${message}\nusage: npm run bench:peers -- [--size-mb N] [--runs N] [--json] [--work DIR] [--methods ${METHODS.join(',')}]\n`);
  process.exit(2);
}

function whole(flag: string, text: string | undefined, dflt: number, min: number, max: number): number {
  if (text === undefined) return dflt;
  const n = Number(text);
  if (!/^\d+$/.test(text) || !Number.isInteger(n) || n < min || n > max) usage(`--${flag} takes a whole number from ${min} to ${max} (got '${text}')`);
  return n;
}

let values: { json?: boolean; 'size-mb'?: string; runs?: string; work?: string; methods?: string; help?: boolean };
try {
  values = parseArgs({
    options: { json: { type: 'boolean' }, 'size-mb': { type: 'string' }, runs: { type: 'string' }, work: { type: 'string' }, methods: { type: 'string' }, help: { type: 'boolean', short: 'h' } },
    allowPositionals: false,
  }).values;
} catch (e) {
  usage((e as Error).message);
}
if (values.help) usage('help');
const sizeMiB = whole('size-mb', values['size-mb'], 64, 0, 65536);
const runs = whole('runs', values.runs, 3, 1, 100);
const work = values.work ?? '/var/tmp/bench-peers';
if (!work.startsWith('/')) usage(`--work takes an absolute path (got '${work}')`);
const methods = (values.methods ?? METHODS.join(',')).split(',') as Method[];
if (methods.length === 0 || methods.some((m) => !METHODS.includes(m)) || new Set(methods).size !== methods.length) {
  usage(`--methods takes distinct names from ${METHODS.join(',')}, comma-separated (got '${values.methods}')`);
}
if (process.getuid?.() !== 0) usage('needs root (it starts LXD daemons, ferry\'s lab and bridges)');

const log = (line: string) => process.stderr.write(`[peers] ${line}\n`);

function median(xs: number[]): number | null {
  if (xs.length === 0) return null;
  const s = [...xs].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? s[m]! : Math.round((s[m - 1]! + s[m]!) / 2);
}

function ms(n: number | null | undefined): string {
  return n === null || n === undefined ? '-' : n >= 10_000 ? `${(n / 1000).toFixed(1)} s` : `${n} ms`;
}

function mib(n: number | null): string {
  return n === null ? 'n/a' : `${(n / 1048576).toFixed(1)} MiB`;
}

interface Summary {
  method: Method;
  runs: number;
  ok: number;
  medianMs: number | null;
  minMs: number | null;
  maxMs: number | null;
  medianDowntimeMs: number | null;
  medianFrozenMs: number | null;
  medianBothRunningMs: number | null;
  medianBytes: number | null;
  identical: boolean | null;
  differences: string[];
  failures: string[];
  after: string[];
  /** Median total over the floor's (rsync) median total. */
  totalVsFloor: number | null;
  /** Median total over ferry's. */
  totalVsFerry: number | null;
  /** Median downtime over ferry's. */
  downtimeVsFerry: number | null;
}

function summarize(method: Method, rs: MoveResult[]): Summary {
  const ok = rs.filter((r) => r.ok);
  const times = ok.map((r) => r.totalMs);
  const num = (xs: (number | null)[]) => xs.filter((x): x is number => x !== null);
  const compared = ok.filter((r) => r.identical !== null);
  return {
    method,
    runs: rs.length,
    ok: ok.length,
    medianMs: median(times),
    minMs: times.length ? Math.min(...times) : null,
    maxMs: times.length ? Math.max(...times) : null,
    medianDowntimeMs: median(num(ok.map((r) => r.downtimeMs))),
    medianFrozenMs: median(num(rs.map((r) => r.frozenMs))),
    medianBothRunningMs: median(num(ok.map((r) => r.bothRunningMs))),
    medianBytes: median(num(ok.map((r) => r.bytesMoved))),
    identical: compared.length ? compared.every((r) => r.identical) : null,
    differences: [...new Set(ok.map((r) => r.differences).filter((d): d is string => d !== null))],
    failures: rs
      .filter((r) => !r.ok)
      .map((r) => `${r.error ?? '?'} (after ${ms(r.totalMs)}${r.frozenMs !== null ? `; source frozen ${ms(r.frozenMs)}` : ''}${r.downtimeMs !== null ? `; longest probe gap ${ms(r.downtimeMs)}` : ''})`),
    after: [...new Set(rs.filter((r) => !r.ok).map((r) => r.after))],
    totalVsFloor: null,
    totalVsFerry: null,
    downtimeVsFerry: null,
  };
}

const ratio = (a: number | null, b: number | null) => (a === null || b === null || b === 0 ? null : Math.round((a / b) * 100) / 100);

const lxd = methods.some(isLxd) ? new LxdPeers({ work, sizeMiB, log }) : null;
const ferry = methods.some((m) => !isLxd(m)) ? new FerryPeer({ work, sizeMiB, log }) : null;
let closing = false;
const close = async () => {
  if (closing) return;
  closing = true;
  if (lxd) for (const n of await lxd.close()) log(n);
  await ferry?.close().catch((e) => log(`ferry lab down: ${(e as Error).message}`));
};
for (const sig of ['SIGINT', 'SIGTERM'] as const) {
  process.once(sig, () => {
    log(`${sig}: stopping the daemons and the lab`);
    void close().finally(() => process.exit(130));
  });
}

async function once(m: Method): Promise<MoveResult> {
  if (m === 'ferry') return ferry!.measure();
  if (m === 'rsync') return ferry!.floor();
  return lxd!.measure(m);
}

const results: MoveResult[] = [];
let fatal: string | null = null;
const rsyncVersion = (await run('rsync', ['--version'], { timeoutMs: 5000 }).catch(() => ({ stdout: '?' }))).stdout.split('\n')[0]!.replace(/\s+protocol.*/, '').replace(/\s+/g, ' ');
try {
  // LXD first: it installs what is missing and builds the shared minbase tree once.
  await lxd?.open();
  await ferry?.open();
  log(`LXD ${lxd?.version ?? '-'}, ferry ${ferry?.version ?? '-'}; ${sizeMiB} MiB of data; ${runs} run(s) per method`);
  for (let i = 0; i < runs; i++) {
    // Alternate the order so no method always runs first (cold caches) or last.
    const order = i % 2 === 0 ? methods : [...methods].reverse();
    for (const m of order) {
      log(`run ${i + 1}/${runs}: ${m}`);
      const r = await once(m);
      log(
        `  ${r.ok ? 'ok' : 'FAILED'} in ${ms(r.totalMs)}` +
          (r.downtimeMs !== null ? `, downtime ${ms(r.downtimeMs)}` : '') +
          (r.frozenMs !== null ? `, frozen ${ms(r.frozenMs)}` : '') +
          (r.bothRunningMs !== null ? `, both running ${ms(r.bothRunningMs)}` : '') +
          (r.bytesMoved !== null ? `, ${mib(r.bytesMoved)}` : '') +
          (r.identical !== null ? `, ${r.identical ? 'identical' : `differs: ${r.differences}`}` : '') +
          (r.steps ? `\n  steps: ${r.steps.map((x) => `${x.name}@${x.host} ${ms(x.ms)}`).join(', ')}` : '') +
          (r.error ? `\n  error: ${r.error}\n  after: ${r.after}` : ''),
      );
      results.push(r);
    }
  }
} catch (e) {
  fatal = (e as Error).message;
  log(`fatal: ${fatal}`);
} finally {
  await close();
}

const summaries = methods.map((m) => summarize(m, results.filter((r) => r.method === m)));
const floor = summaries.find((s) => s.method === 'rsync');
const ours = summaries.find((s) => s.method === 'ferry');
for (const s of summaries) {
  s.totalVsFloor = ratio(s.medianMs, floor?.medianMs ?? null);
  s.totalVsFerry = ratio(s.medianMs, ours?.medianMs ?? null);
  s.downtimeVsFerry = ratio(s.medianDowntimeMs, ours?.medianDowntimeMs ?? null);
}
const x = (n: number | null) => (n === null ? '-' : `${n.toFixed(2)}×`);
const label: Record<Method, string> = { ferry: 'ferry', rsync: 'rsync (floor)', stopped: 'lxd stopped', stateless: 'lxd stateless', live: 'lxd live' };
const rows = [
  ['method', 'runs', 'ok', 'total', '×floor', '×ferry', 'downtime', '×ferry', 'frozen', 'both up', 'moved', 'identical'],
  ...summaries.map((s) => [
    label[s.method],
    String(s.runs),
    String(s.ok),
    ms(s.medianMs),
    x(s.totalVsFloor),
    x(s.totalVsFerry),
    ms(s.medianDowntimeMs),
    x(s.downtimeVsFerry),
    ms(s.medianFrozenMs),
    ms(s.medianBothRunningMs),
    mib(s.medianBytes),
    s.identical === null ? '-' : s.identical ? 'yes' : 'no',
  ]),
];
const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
const lines = rows.map((r) => r.map((c, i) => c.padEnd(widths[i]!)).join('  ').trimEnd());
process.stdout.write(
  `peers bench: ferry ${ferry?.version ?? '-'}, LXD ${lxd?.version || '-'}, ${rsyncVersion}; ${sizeMiB} MiB data; ${runs} run(s) per method, alternating (medians; downtime = longest gap between answered 20 ms probes)\n`,
);
process.stdout.write(`${lines.join('\n')}\n`);
for (const s of summaries) {
  for (const d of s.differences) process.stdout.write(`${label[s.method]}: differs: ${d}\n`);
  for (const f of [...new Set(s.failures)]) process.stdout.write(`${label[s.method]}: FAILED: ${f}\n`);
  for (const a of s.after) process.stdout.write(`${label[s.method]}: state after the failure: ${a}\n`);
}
if (ferry) process.stdout.write('ferry live (CRIU): not measured: ferry migrates in restart mode here; it has no live mode yet\n');
const stateless = summaries.find((s) => s.method === 'stateless');
const stopped = summaries.find((s) => s.method === 'stopped');
const goals = {
  downtimeVsLxdStateless: ratio(ours?.medianDowntimeMs ?? null, stateless?.medianDowntimeMs ?? null),
  totalVsLxdStopped: ratio(ours?.medianMs ?? null, stopped?.medianMs ?? null),
};
if (goals.downtimeVsLxdStateless !== null) process.stdout.write(`ferry downtime / lxd stateless downtime: ${goals.downtimeVsLxdStateless.toFixed(2)} (goal ≤ 0.10)\n`);
if (goals.totalVsLxdStopped !== null) process.stdout.write(`ferry total / lxd stopped total: ${goals.totalVsLxdStopped.toFixed(2)} (goal ≤ 1.00)\n`);
const rsyncs = [...new Set(results.flatMap((r) => (r.rsyncArgs ?? '').split('\n')).map((a) => a.replace(/\S*\/(lxd-[ab])\/\S*/g, '<$1 path>').replace(/@lxd\/[0-9a-f-]+ [^\s"]+/, '@lxd/<uuid> <name>')).filter(Boolean))];
for (const r of rsyncs) process.stdout.write(`rsync run by LXD: ${r}\n`);
if (lxd) process.stdout.write('lxd moved: n/a (LXD exposes no byte count for a migration)\n');
if (fatal) process.stdout.write(`aborted: ${fatal}\n`);
if (values.json) {
  process.stdout.write(
    `${JSON.stringify({ versions: { ferry: ferry?.version ?? null, lxd: lxd?.version ?? null, rsync: rsyncVersion }, sizeMiB, runs, methods: summaries, goals, results, fatal })}\n`,
  );
}
process.exitCode = fatal ? 1 : 0;
