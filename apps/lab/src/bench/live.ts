#!/usr/bin/env node
/**
 * `npm run bench:live -- [--memory-mb 64,256,1024] [--runs N] [--json]`: live against restart mode in
 * one run, in a lab with --live. Per memory size, containers running ferry-memsvc holding that much
 * (and dirtying it) move h1 → h2, live and restart alternating, while the client probes HTTP every
 * 20 ms. Prints per mode and size: client-seen downtime, frozen window, total time, files and
 * process state moved, and the live/restart downtime ratio. Needs a working CRIU (scripts/setup.sh).
 */
import { fmtBytes, fmtMs } from '@ferry/cli';
import { parseArgsOrExit, usageError } from '../args.js';
import { clientExec, labContainerCreate, labContainerRemove, labDown, labInfo, labUp } from '../lab/index.js';
import { measureMigration } from '../demo/measure.js';

const USAGE = 'npm run bench:live -- [--memory-mb 64,256,1024] [--runs N] [--json]';
const values = parseArgsOrExit('bench:live', USAGE, { 'memory-mb': { type: 'string', default: '64,256,1024' }, runs: { type: 'string', default: '1' }, json: { type: 'boolean' } });
const sizes = values['memory-mb'].split(',').map(Number);
if (!sizes.length || sizes.some((n) => !Number.isInteger(n) || n < 1 || n > 16384)) usageError('bench:live', USAGE, `--memory-mb takes MiB from 1 to 16384, comma-separated (got '${values['memory-mb']}')`);
const runs = Number(values.runs);
if (!Number.isInteger(runs) || runs < 1 || runs > 10) usageError('bench:live', USAGE, `--runs takes 1 to 10 (got '${values.runs}')`);
const say = (s: string) => process.stderr.write(`${s}\n`);

interface Row {
  memoryMb: number;
  mode: 'live' | 'restart';
  downtimeMs: number;
  frozenMs: number | undefined;
  totalMs: number;
  fileBytes: number;
  memoryBytes: number;
}

/** ferry-memsvc fills its memory before it listens: wait for :8080, so all of it is there to move. */
async function memsvcReady(ip: string): Promise<void> {
  for (let i = 0; i < 300; i++) {
    if (await clientExec(['busybox', 'wget', '-q', '-O', '/dev/null', `http://${ip}:8080/`], { timeoutMs: 2000 }).then(() => true, () => false)) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`ferry-memsvc on ${ip} did not answer within 30 s`);
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor((xs.length - 1) / 2)]!;

async function bench(): Promise<Row[]> {
  if (await labInfo()) throw new Error('a lab is already up; remove it first with: ferry lab down');
  say('bench:live: bringing up a lab with live migration…');
  const lab = await labUp({ hosts: 2, live: true });
  const rows: Row[] = [];
  let n = 0;
  for (let run = 1; run <= runs; run++) {
    for (const memoryMb of sizes) {
      for (const mode of ['live', 'restart'] as const) {
        const name = `bl${++n}`;
        const ct = await labContainerCreate({ name, host: 'h1', memoryMb });
        await memsvcReady(ct.ip);
        const m = await measureMigration(lab, { container: name, ip: ct.ip, from: 'h1', to: 'h2', mode });
        if (m.state !== 'done') throw new Error(`${mode} migration of ${name} (${memoryMb} MiB) ended ${m.state}: ${JSON.stringify(m.error)}`);
        const row = { memoryMb, mode, downtimeMs: m.downtimeMs, frozenMs: m.frozenMs, totalMs: m.totalMs, fileBytes: m.bytesTransferred, memoryBytes: m.memoryBytes ?? 0 };
        rows.push(row);
        say(`  run ${run}: ${memoryMb} MiB ${mode}: downtime ${fmtMs(row.downtimeMs)}, frozen ${fmtMs(row.frozenMs)}, total ${fmtMs(row.totalMs)}`);
        await labContainerRemove(name); // its memory back before the next one
      }
    }
  }
  return rows;
}

let rows: Row[] | undefined;
let code = 0;
try {
  rows = await bench();
} catch (e) {
  say(`bench:live: ${(e as Error).message}`);
  code = 1;
} finally {
  await labDown().catch((e: unknown) => say(`bench:live: lab down: ${(e as Error).message}`));
}
if (rows) {
  const lines = ['memory    mode      downtime   frozen     total      files      process state  live/restart downtime'];
  for (const mb of sizes) {
    const of = (mode: string) => rows!.filter((r) => r.memoryMb === mb && r.mode === mode);
    const restartDown = median(of('restart').map((r) => r.downtimeMs));
    for (const mode of ['live', 'restart']) {
      const rs = of(mode);
      const med = (k: keyof Row) => median(rs.map((r) => Number(r[k] ?? 0)));
      lines.push(
        [
          `${mb} MiB`.padEnd(9),
          mode.padEnd(9),
          fmtMs(med('downtimeMs')).padEnd(10),
          fmtMs(med('frozenMs')).padEnd(10),
          fmtMs(med('totalMs')).padEnd(10),
          fmtBytes(med('fileBytes')).padEnd(10),
          (mode === 'live' ? fmtBytes(med('memoryBytes')) : '-').padEnd(14),
          mode === 'live' ? (med('downtimeMs') / restartDown).toFixed(2) : '',
        ].join(' '),
      );
    }
  }
  process.stdout.write(`${lines.join('\n')}\n(median of ${runs} run(s) each, alternating; downtime: the longest gap between the client's HTTP answers)\n`);
  if (values.json) process.stdout.write(`${JSON.stringify({ runs, rows })}\n`);
}
process.exit(code);
