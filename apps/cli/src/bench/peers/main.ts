#!/usr/bin/env node
/**
 * Peers benchmark, LXD half: moves a Debian 12 minbase container (plus N MiB of random data,
 * a hard-linked pair, a file with a POSIX ACL and one with a user xattr) between two LXD
 * daemons on this host, `--runs` times per method, alternating methods: stopped `lxc move`,
 * `lxc move --stateless` of a running container and a plain live `lxc move` (CRIU). Prints a
 * table per method; `--json` adds one JSON object on the last line. Opt-in: installs LXD and
 * debootstrap when missing and needs root. See docs/bench-peers.md.
 */
import { parseArgs } from 'node:util';
import { LxdPeers, METHODS, type Method, type MoveResult } from './lxd.js';

function usage(message: string): never {
  process.stderr.write(`bench:peers: ${message}\nusage: npm run bench:peers -- [--size-mb N] [--runs N] [--json] [--work DIR] [--methods stopped,stateless,live]\n`);
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
if (process.getuid?.() !== 0) usage('needs root (it starts LXD daemons and creates a bridge)');

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
  bytesMoved: null;
  identical: boolean | null;
  differences: string[];
  failures: string[];
  after: string[];
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
    bytesMoved: null,
    identical: compared.length ? compared.every((r) => r.identical) : null,
    differences: [...new Set(ok.map((r) => r.differences).filter((d): d is string => d !== null))],
    failures: rs
      .filter((r) => !r.ok)
      .map((r) => `${r.error ?? '?'} (after ${ms(r.totalMs)}${r.frozenMs !== null ? `; source frozen ${ms(r.frozenMs)}` : ''}${r.downtimeMs !== null ? `; longest probe gap ${ms(r.downtimeMs)}` : ''})`),
    after: [...new Set(rs.filter((r) => !r.ok).map((r) => r.after))],
  };
}

const peers = new LxdPeers({ work, sizeMiB, log });
let closing = false;
const close = async () => {
  if (closing) return;
  closing = true;
  const notes = await peers.close();
  for (const n of notes) log(n);
};
for (const sig of ['SIGINT', 'SIGTERM'] as const) {
  process.once(sig, () => {
    log(`${sig}: stopping the daemons`);
    void close().finally(() => process.exit(130));
  });
}

const results: MoveResult[] = [];
let fatal: string | null = null;
try {
  await peers.open();
  log(`LXD ${peers.version}; ${sizeMiB} MiB of data; ${runs} run(s) per method`);
  for (let i = 0; i < runs; i++) {
    // Alternate the order so no method always runs first (cold caches) or last.
    const order = i % 2 === 0 ? methods : [...methods].reverse();
    for (const m of order) {
      log(`run ${i + 1}/${runs}: ${m}`);
      const r = await peers.measure(m);
      log(
        `  ${r.ok ? 'ok' : 'FAILED'} in ${ms(r.totalMs)}` +
          (r.downtimeMs !== null ? `, downtime ${ms(r.downtimeMs)}` : '') +
          (r.frozenMs !== null ? `, frozen ${ms(r.frozenMs)}` : '') +
          (r.bothRunningMs !== null ? `, both running ${ms(r.bothRunningMs)}` : '') +
          (r.identical !== null ? `, ${r.identical ? 'identical' : `differs: ${r.differences}`}` : '') +
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
const rows = [
  ['method', 'runs', 'ok', 'median', 'min', 'max', 'downtime', 'frozen', 'both up', 'bytes', 'identical'],
  ...summaries.map((s) => [
    s.method,
    String(s.runs),
    String(s.ok),
    ms(s.medianMs),
    ms(s.minMs),
    ms(s.maxMs),
    ms(s.medianDowntimeMs),
    ms(s.medianFrozenMs),
    ms(s.medianBothRunningMs),
    'n/a',
    s.identical === null ? '-' : s.identical ? 'yes' : 'no',
  ]),
];
const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
const lines = rows.map((r) => r.map((c, i) => c.padEnd(widths[i]!)).join('  ').trimEnd());
process.stdout.write(`LXD ${peers.version || '?'} peers bench: ${sizeMiB} MiB data, ${runs} run(s) per method (medians; downtime = longest gap between answered 20 ms probes)\n`);
process.stdout.write(`${lines.join('\n')}\n`);
for (const s of summaries) {
  for (const d of s.differences) process.stdout.write(`${s.method}: differs: ${d}\n`);
  for (const f of [...new Set(s.failures)]) process.stdout.write(`${s.method}: FAILED: ${f}\n`);
  for (const a of s.after) process.stdout.write(`${s.method}: state after the failure: ${a}\n`);
}
const rsyncs = [...new Set(results.flatMap((r) => (r.rsyncArgs ?? '').split('\n')).map((a) => a.replace(/\S*\/(lxd-[ab])\/\S*/g, '<$1 path>').replace(/@lxd\/[0-9a-f-]+ [^\s"]+/, '@lxd/<uuid> <name>')).filter(Boolean))];
for (const r of rsyncs) process.stdout.write(`rsync run by LXD: ${r}\n`);
process.stdout.write('bytes: n/a (LXD exposes no byte count for a migration)\n');
if (fatal) process.stdout.write(`aborted: ${fatal}\n`);
if (values.json) {
  process.stdout.write(`${JSON.stringify({ lxdVersion: peers.version, sizeMiB, runs, methods: summaries, results, fatal })}\n`);
}
process.exitCode = fatal ? 1 : 0;
