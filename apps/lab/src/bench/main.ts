#!/usr/bin/env node
/**
 * Migration benchmark in the lab: containers of several sizes, each with a writer, migrated there
 * and back while a client probes every 20 ms. Prints total time, client downtime, frozen window,
 * bytes moved and pre-copy passes. `--files N,...`: a 64 MiB container (or `--sizes`) with N more
 * small files, migrated once, and in the same run one plain cold `rsync -aHAX` of the same tree
 * over the same link as the baseline. `--verify` sets the migration's verification (default: ferry's). `--json` prints the rows as one JSON array on the last line.
 */
import { fmtBytes, fmtMs } from '@ferry/cli';
import { parseArgsOrExit, usageError } from '../args.js';
import { labContainerCreate, labDown, labInfo, labUp } from '../lab/index.js';
import { coldRsync } from './cold-rsync.js';
import { measureMigration, type Measured } from '../demo/measure.js';

const USAGE = 'npm run bench -- [--sizes MiB,...] [--files N,...] [--verify off|changed|full] [--json]';
function usage(message: string): never {
  return usageError('bench', USAGE, message);
}

function list(flag: string, text: string, max: number): number[] {
  const out = text.split(',').map(Number);
  if (out.some((n) => !Number.isInteger(n) || n < 0 || n > max)) usage(`--${flag} takes whole numbers from 0 to ${max}, comma-separated (got '${text}')`);
  return out;
}

const values = parseArgsOrExit('bench', USAGE, {
  json: { type: 'boolean' },
  sizes: { type: 'string' },
  files: { type: 'string' },
  verify: { type: 'string' },
});
const fileCounts = values.files !== undefined ? list('files', values.files, 10_000_000) : undefined;
const verify = values.verify;
if (verify !== undefined && verify !== 'off' && verify !== 'changed' && verify !== 'full') usage(`--verify is one of off, changed, full (got '${verify}')`);
const sizes = list('sizes', values.sizes ?? (fileCounts ? '64' : '16,64,256'), 4096);

interface Row {
  sizeMiB: number;
  files: number;
  route: string;
  state: string;
  totalMs: number;
  downtimeMs: number;
  frozenMs: number | null;
  bytes: number;
  passes: number;
  /** One plain cold rsync of the same tree over the same link, this run (with --files). */
  coldRsyncMs?: number;
  /** Each step's duration, for where the time went. */
  steps: { name: string; host: string; ms: number | null }[];
}

const rows: Row[] = [];
let code = 0;
try {
  if (await labInfo()) throw new Error('a lab is already up; remove it first with: ferry lab down');
  const lab = await labUp({ hosts: 2 });
  for (const size of sizes) {
    for (const files of fileCounts ?? [0]) {
      const name = files ? `bench${size}f${files}` : `bench${size}`;
      process.stderr.write(`bench: creating ${name} (${size} MiB${files ? `, ${files} small files` : ''}, a writer)…\n`);
      const ct = await labContainerCreate({ name, host: 'h1', sizeMb: size, writer: true, files });
      const cold = fileCounts ? (await coldRsync(lab, `${lab.hosts[0]!.lxcPath}/${name}`, name)).ms : undefined;
      const routes = fileCounts ? ([['h1', 'h2']] as const) : ([['h1', 'h2'], ['h2', 'h1']] as const);
      for (const [from, to] of routes) {
        const m: Measured = await measureMigration(lab, { container: name, ip: ct.ip, from, to, ...(verify ? { verify } : {}) });
        rows.push({
          sizeMiB: size,
          files,
          route: `${from}→${to}`,
          state: m.state,
          totalMs: m.totalMs,
          downtimeMs: m.downtimeMs,
          frozenMs: m.frozenMs ?? null,
          bytes: m.bytesTransferred,
          passes: m.precopyPasses,
          ...(cold !== undefined ? { coldRsyncMs: cold } : {}),
          steps: m.steps.map((s) => ({ name: s.name, host: s.host, ms: s.ms })),
        });
        process.stderr.write(`bench:   ${m.steps.map((s) => `${s.name}@${s.host} ${fmtMs(s.ms ?? undefined)}`).join(', ')}\n`);
        if (m.state !== 'done') code = 1;
        process.stderr.write(`bench: ${name} ${from}→${to}: ${m.state} in ${fmtMs(m.totalMs)}, downtime ${fmtMs(m.downtimeMs)}${cold !== undefined ? `, cold rsync ${fmtMs(cold)}` : ''}\n`);
      }
    }
  }
} catch (e) {
  process.stderr.write(`bench: ${(e as Error).message}\n`);
  code = 1;
} finally {
  await labDown().catch(() => undefined);
}
if (values.json) process.stdout.write(`${JSON.stringify(rows)}\n`);
else {
  const head = ['size', 'files', 'route', 'state', 'total', 'downtime', 'frozen', 'moved', 'passes', ...(fileCounts ? ['cold rsync', 'total/rsync'] : [])];
  const body = rows.map((r) => [
    `${r.sizeMiB} MiB`,
    String(r.files),
    r.route,
    r.state,
    fmtMs(r.totalMs),
    fmtMs(r.downtimeMs),
    fmtMs(r.frozenMs ?? undefined),
    fmtBytes(r.bytes),
    String(r.passes),
    ...(r.coldRsyncMs !== undefined ? [fmtMs(r.coldRsyncMs), `${(r.totalMs / r.coldRsyncMs).toFixed(2)}×`] : []),
  ]);
  const w = head.map((h, i) => Math.max(h.length, ...body.map((b) => b[i]?.length ?? 0)));
  for (const line of [head, ...body]) process.stdout.write(`${line.map((c, i) => c.padEnd(w[i]!)).join('  ')}\n`);
}
process.exit(code);
